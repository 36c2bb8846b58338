"""The attacked network as a function ``x01 -> logits`` that can be applied to any tensor
(inside a ``tf.while_loop``, on an attack variable, ...) while sharing one set of weights.

``shared_logits_fn(spec, model)`` re-applies ``model``'s architecture to a new input tensor
with ``model``'s own tf.Variables (the same weights, also during training), by intercepting
variable creation.  ``AttackSession`` owns a graph and a session holding one network restored
from a checkpoint, for the attack runners.
"""

import numpy as np
import tensorflow as tf

from bsattack import models
from madry_models import checkpoint as ckpt

tf1 = tf.compat.v1


def shared_logits_fn(spec, model):
    """A function ``x01 -> logits``: ``model``'s network (same variables; the data set
    ``spec``'s architecture) on another input."""
    by_name = dict(model.variables)
    shapes = {name: var.shape.as_list() for name, var in by_name.items()}
    build = spec.build

    def reuse(next_creator, **kwargs):
        return by_name[kwargs["name"]]

    def logits_fn(x01):
        with tf1.variable_creator_scope(reuse):
            return build(x01, None, shapes).logits
    return logits_fn


def flatten(images):
    """[N, ...] -> [N, d]: the layout the attack graphs work in."""
    images = np.asarray(images)
    return images.reshape(len(images), -1)


class AttackSession:
    """A graph and session with the network of the data set ``spec`` restored from
    ``checkpoint``.

    ``x01``/``logits``/``predictions``: the network on a [0,1] placeholder;
    ``logits_fn``: the same weights on any other tensor (see :func:`shared_logits_fn`);
    ``raw_gradient``: d(summed cross-entropy)/d``x01`` given labels ``y`` (the plain
    forward + backward pass that bounds any gradient attack's speed; bench/gpu_check.py
    traces it).
    Build the attack ops inside ``with self.graph.as_default():`` and call :meth:`start`.
    """

    def __init__(self, spec, checkpoint, precision="fp32"):
        self.spec = spec
        self.checkpoint = checkpoint
        self.precision = precision
        self.graph = tf1.Graph()
        with self.graph.as_default():
            # attacks work on flat rows [N, d]; every builder reshapes its input itself
            flat = tf1.placeholder(tf.float32, [None, spec.dim], name="x01")
            self.model = models.build(spec, flat, checkpoint=checkpoint)
            self.x01 = self.model.x01
            self.logits_fn = shared_logits_fn(spec, self.model)
            self.y = tf1.placeholder(tf.int64, [None], name="labels")
            xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=self.y,
                                                                  logits=self.model.logits)
            self.raw_gradient = tf.gradients(tf.reduce_sum(xent), self.x01)[0]
        self.sess = None

    def start(self):
        """Create the session, restore the network, initialise every other variable."""
        with self.graph.as_default():
            self.sess = models.new_session(self.graph, self.precision)
            ckpt.restore(self.sess, self.checkpoint, self.model.variables)
            model_vars = set(id(v) for v in self.model.variables.values())
            others = [v for v in tf1.global_variables() if id(v) not in model_vars]
            self.sess.run(tf1.variables_initializer(others))
        return self.sess

    def close(self):
        if self.sess is not None:
            self.sess.close()
