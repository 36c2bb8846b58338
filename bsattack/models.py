"""Build a dataset's network on an input tensor in [0, 1] and restore a checkpoint into it.

Every model object exposes ``logits``, ``predictions``, ``embedding`` (the paper's h(x)) and
``variables`` (official checkpoint name -> tf.Variable).  Inputs are always [0, 1] in the data
set's native layout; the CIFAR builder rescales to [0, 255] itself.
"""
import numpy as np
import tensorflow as tf

from madry_models import checkpoint as ckpt

tf1 = tf.compat.v1


def input_placeholder(spec):
    return tf1.placeholder(tf.float32, [None, *spec.input_shape], name="x01")


def build(spec, x01=None, scope=None, checkpoint=None):
    """The network of the data set ``spec`` (a :class:`bsattack.datasets.DatasetSpec`) on
    ``x01`` (a placeholder when None); when ``checkpoint`` is given its stored shapes decide
    the widths (so narrow test networks load too)."""
    if x01 is None:
        x01 = input_placeholder(spec)
    if checkpoint is None:
        return spec.build(x01, scope)
    prefix = ckpt.resolve_prefix(checkpoint)
    return spec.build(x01, scope, ckpt.variable_shapes(prefix), prefix)


def new_session(graph=None, precision="fp32"):
    """A session that uses a GPU when TF sees one and grows its memory as needed, in
    ``precision`` (``fp32`` or ``bf16``: :func:`bsattack.precision.configure`)."""
    from bsattack.precision import configure
    config = tf1.ConfigProto(allow_soft_placement=True)
    config.gpu_options.allow_growth = True
    return tf1.Session(graph=graph, config=configure(config, precision))


def load(sess, spec, checkpoint, x01=None, scope=None):
    """Build the network of ``spec`` on ``x01`` and restore ``checkpoint`` into ``sess``."""
    model = build(spec, x01, scope=scope, checkpoint=checkpoint)
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


def predict(spec, checkpoint, images, batch_size=500):
    """int64 predicted labels of ``checkpoint`` on ``images`` ([0,1]), in a graph of its own."""
    graph = tf1.Graph()
    with graph.as_default(), new_session(graph) as sess:
        model = load(sess, spec, checkpoint)
        return run_batched(sess, model.predictions, model.x01, images, batch_size).astype(np.int64)


def accuracy(spec, checkpoint, images, labels, batch_size=500):
    """Natural accuracy of ``checkpoint`` on ``images`` ([0,1])."""
    return float(np.mean(predict(spec, checkpoint, images, batch_size) == labels))
