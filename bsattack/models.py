"""Build a dataset's network on an input tensor in [0, 1] and restore a checkpoint into it.

Every model object exposes ``logits``, ``predictions``, ``embedding`` (the paper's h(x)) and
``variables`` (official checkpoint name -> tf.Variable).  Inputs are always [0, 1] in the data
set's native layout; the CIFAR builder rescales to [0, 255] itself.
"""
import numpy as np
import tensorflow as tf

from bsattack.datasets import get_spec
from madry_models import checkpoint as ckpt
from madry_models import cifar10
from madry_models.mnist import build_mnist, widths_from_shapes

tf1 = tf.compat.v1


def _mnist_builder(x01, scope, shapes=None, source=None):
    """MNIST-challenge network; widths read off the checkpoint's shapes when given."""
    if shapes is None:
        return build_mnist(x01, scope=scope)
    ckpt.check_ranks(source, shapes, {"Variable": 4, "Variable_2": 4, "Variable_5": 1})
    return build_mnist(x01, scope=scope, widths=widths_from_shapes(shapes))


def _cifar10_builder(x01, scope, shapes=None, source=None):
    """CIFAR10-challenge ResNet; widths read off the checkpoint's shapes when given."""
    if shapes is None:
        return cifar10.build_cifar10(x01, scope=scope)
    ckpt.check_ranks(source, shapes, dict.fromkeys(
        ("input/init_conv/DW", "unit_1_0/sub1/conv1/DW", "unit_2_0/sub1/conv1/DW",
         "unit_3_0/sub1/conv1/DW"), 4))
    return cifar10.build_cifar10(x01, scope=scope, widths=cifar10.widths_from_shapes(shapes))


BUILDERS = {"mnist": _mnist_builder, "fashion": _mnist_builder, "cifar10": _cifar10_builder}


def input_placeholder(dataset):
    spec = get_spec(dataset)
    shape = [None, spec.dim] if spec.name in ("mnist", "fashion") else [None, *spec.image_shape]
    return tf1.placeholder(tf.float32, shape, name="x01")


def build(dataset, x01=None, scope=None, checkpoint=None):
    """The network of ``dataset`` on ``x01`` (a placeholder when None); when ``checkpoint`` is
    given its stored shapes decide the widths (so narrow test networks load too)."""
    spec = get_spec(dataset)
    if x01 is None:
        x01 = input_placeholder(dataset)
    if checkpoint is None:
        return BUILDERS[spec.name](x01, scope)
    prefix = ckpt.resolve_prefix(checkpoint)
    return BUILDERS[spec.name](x01, scope, ckpt.variable_shapes(prefix), prefix)


def new_session(graph=None):
    """A session that uses a GPU when TF sees one and grows its memory as needed."""
    config = tf1.ConfigProto(allow_soft_placement=True)
    config.gpu_options.allow_growth = True
    return tf1.Session(graph=graph, config=config)


def load(sess, dataset, checkpoint, x01=None, scope=None):
    """Build the network on ``x01`` and restore ``checkpoint`` into ``sess``."""
    model = build(dataset, x01, scope=scope, checkpoint=checkpoint)
    ckpt.restore(sess, checkpoint, model.variables)
    return model


def run_batched(sess, tensors, x01_placeholder, images, batch_size=500, progress=None):
    """Evaluate ``tensors`` (one tensor or a list) on ``images`` in batches; numpy results."""
    single = not isinstance(tensors, (list, tuple))
    fetches = [tensors] if single else list(tensors)
    outputs = [[] for _ in fetches]
    for start in range(0, len(images), batch_size):
        values = sess.run(fetches, {x01_placeholder: images[start:start + batch_size]})
        for out, value in zip(outputs, values):
            out.append(value)
        if progress is not None:
            progress.update(min(batch_size, len(images) - start))
    results = [np.concatenate(out) if out else np.zeros((0,)) for out in outputs]
    return results[0] if single else results


def predict(dataset, checkpoint, images, batch_size=500):
    """int64 predicted labels of ``checkpoint`` on ``images`` ([0,1]), in a graph of its own."""
    graph = tf1.Graph()
    with graph.as_default(), new_session(graph) as sess:
        model = load(sess, dataset, checkpoint)
        return run_batched(sess, model.predictions, model.x01, images, batch_size).astype(np.int64)


def accuracy(dataset, checkpoint, images, labels, batch_size=500):
    """Natural accuracy of ``checkpoint`` on ``images`` ([0,1])."""
    return float(np.mean(predict(dataset, checkpoint, images, batch_size) == labels))
