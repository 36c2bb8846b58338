"""The attacked network as the attacks see it: a box of inputs, and a gradient oracle.

:class:`LogitsModel` wraps any tf.compat.v1 logits function ``x -> logits`` of flat inputs
[N, dim] that lie in ``bounds`` (your model, your units); :class:`Model` is one of the data
sets' networks restored from a checkpoint, in the paper's units [-0.5, 0.5] (the network
itself reads (x + 0.5) · pixel_scale, which the adapter applies).  Both answer:
- ``value_and_grad(x, labels, loss, targets=None)``: per image the loss, its gradient w.r.t.
  x and the logits, one forward+backward pass per row (one "gradient evaluation"), where loss
  is 'xent' (cross-entropy), 'margin' (z_y − max_{j≠y} z_j, the true logit masked by −1e4 as
  in li_attack.py), 'dlr' (Croce & Hein's −(z_y − max_{j≠y} z_j) / (z_π1 − z_π3 + 1e-12)), or
  an attack's own loss: an object with a ``name`` and ``tensor(tf, logits, labels, targets)``
  (its ops are built on first use; ``targets`` is one int64 per row);
- ``logits(x)`` / ``predict(x)``: forward passes only;
- ``image_shape``: (height, width, channels) of a flat row (channels last), for attacks that
  work on pixel windows (Square).
Attacks that run as one TF graph (the reference C&W) add their ops with :meth:`Model.add_ops`.
"""
import time

import numpy as np
import tensorflow as tf

from bsattack.attacks.base import batches
from bsattack.errors import BsattackError

tf1 = tf.compat.v1
LOSSES = ("xent", "margin", "dlr")
LOGIT_MASK = 1e4
DLR_EPSILON = 1e-12
SHIFT = 0.5          # the paper's units [-0.5, 0.5] -> the networks' [0, 1] placeholder


def loss_tensor(logits, labels, loss):
    """The per-image ``loss`` (see the module docstring) of ``logits`` for true ``labels``."""
    onehot = tf.one_hot(labels, tf.shape(logits)[1], dtype=logits.dtype)
    true = tf.reduce_sum(onehot * logits, axis=1)
    other = tf.reduce_max((1 - onehot) * logits - LOGIT_MASK * onehot, axis=1)
    if loss == "xent":
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    if loss == "margin":
        return true - other
    ranked = tf.sort(logits, axis=1, direction="DESCENDING")
    return -(true - other) / (ranked[:, 0] - ranked[:, 2] + DLR_EPSILON)


class LogitsModel:
    """``logits_fn`` (a function of a [N, dim] float32 tensor, building ops in ``session``'s
    graph, e.g. your model's call) on inputs within ``bounds`` = (low, high), each row an
    image of ``image_shape`` (height, width, channels; default one row of ``dim`` pixels)."""

    def __init__(self, logits_fn, dim, bounds, session=None, image_shape=None):
        if session is None:
            from bsattack.models import new_session
            session = new_session(tf1.Graph())
        with session.graph.as_default():
            x = tf1.placeholder(tf.float32, [None, int(dim)], name="attack_x")
            self._setup(session, x, logits_fn(x), bounds, image_shape=image_shape)

    def _setup(self, session, x, logits, bounds, offset=0.0, image_shape=None):
        """Oracle ops on input placeholder ``x`` (fed with attack-unit images + ``offset``)."""
        self.sess, self.x, self.logits_tensor, self.offset = session, x, logits, offset
        self.dim, self.bounds = int(x.shape[1]), (float(bounds[0]), float(bounds[1]))
        self.image_shape = tuple(int(d) for d in image_shape or (1, self.dim, 1))
        if int(np.prod(self.image_shape)) != self.dim:
            raise BsattackError(f"image shape {self.image_shape} does not hold {self.dim} "
                                f"inputs")
        self.labels = tf1.placeholder(tf.int64, [None], name="attack_labels")
        self.targets = tf1.placeholder(tf.int64, [None], name="attack_targets")
        self._ops = {}
        for loss in LOSSES:
            value = loss_tensor(logits, self.labels, loss)
            grad = tf.gradients(tf.reduce_sum(value), x)[0]
            self._ops[loss] = (value, grad, logits)

    def _feed(self, x, labels=None, targets=None):
        x = np.asarray(x, np.float32).reshape(len(x), self.dim)
        feed = {self.x: x + np.float32(self.offset) if self.offset else x}
        if labels is not None:
            feed[self.labels] = labels
        if targets is not None:
            feed[self.targets] = targets
        return feed

    def _loss_ops(self, loss):
        """(value, gradient, logits) ops of a built-in loss name or an attack's loss object."""
        name = loss if isinstance(loss, str) else loss.name
        if name not in self._ops:
            with self.x.graph.as_default():
                value = loss.tensor(tf, self.logits_tensor, self.labels, self.targets)
                grad = tf.gradients(tf.reduce_sum(value), self.x)[0]
            self._ops[name] = (value, grad, self.logits_tensor)
        return self._ops[name]

    def value_and_grad(self, x, labels, loss="xent", targets=None):
        """(loss [N], d loss / d x [N, d], logits [N, K]) of flat images ``x``."""
        return self.sess.run(self._loss_ops(loss), self._feed(x, labels, targets))

    def logits(self, x, batch_size=500):
        parts = [self.sess.run(self.logits_tensor, self._feed(x[rows]))
                 for rows in batches(len(x), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    def predict(self, x, batch_size=500):
        """int64 predicted labels of flat images ``x``."""
        return (self.logits(x, batch_size).argmax(axis=1).astype(np.int64) if len(x)
                else np.zeros(0, np.int64))

    def gradient_rate(self, x, labels, repeats=2):
        """Image-gradients per second of the plain forward+backward pass on this batch."""
        feed = self._feed(x, labels)
        self.sess.run(self._ops["xent"][1], feed)
        start = time.perf_counter()
        for _ in range(repeats):
            self.sess.run(self._ops["xent"][1], feed)
        return repeats * len(x) / (time.perf_counter() - start)

    def close(self):
        self.sess.close()


class Model(LogitsModel):
    """The network of the data set ``spec`` (a :class:`bsattack.datasets.DatasetSpec`)
    restored from ``checkpoint``, in the paper's units; the gradient
    oracle in ``precision`` ('fp32' or 'bf16', :mod:`bsattack.precision`), forward passes and
    every "fooled" the oracle reports checked by a float32 copy of the network."""

    def __init__(self, spec, checkpoint, precision="fp32"):
        from bsattack.attacks.network import AttackSession
        self.spec, self.precision = spec, precision
        self.net = AttackSession(spec, checkpoint, precision)
        with self.net.graph.as_default():
            self._setup(None, self.net.x01, self.net.model.logits, (-SHIFT, SHIFT), SHIFT,
                        spec.image_shape)
        self.sess = self.net.start()
        self._float32 = None if precision == "fp32" else Model(spec, checkpoint, "fp32")

    def value_and_grad(self, x, labels, loss="xent", targets=None):
        """The oracle in this model's precision; at bf16, the rows whose logits say
        misclassified get float32's logits instead, so that an attack stops on an image only
        when the float32 network is fooled."""
        value, grad, logits = super().value_and_grad(x, labels, loss, targets)
        if self._float32 is not None:
            flagged = np.flatnonzero(logits.argmax(axis=1) != np.asarray(labels))
            if len(flagged):
                logits = np.array(logits, copy=True)
                logits[flagged] = self._float32.logits(np.asarray(x)[flagged])
        return value, grad, logits

    def logits(self, x, batch_size=500):
        """Forward passes: always float32's (they decide what is counted)."""
        if self._float32 is not None:
            return self._float32.logits(x, batch_size)
        return super().logits(x, batch_size)

    def verified_predict(self, x, batch_size=500):
        """Predicted labels from the float32 network, whatever the oracle's precision: the
        predictions every record states."""
        return (self._float32 or self).predict(x, batch_size)

    def close(self):
        super().close()
        if self._float32 is not None:
            self._float32.close()

    def add_ops(self, build):
        """``build(net)`` inside this model's graph (``net``: the
        :class:`~bsattack.attacks.network.AttackSession`); its new variables are initialised.
        Returns what ``build`` returns."""
        with self.net.graph.as_default():
            before = set(id(v) for v in tf1.global_variables())
            ops = build(self.net)
            new = [v for v in tf1.global_variables() if id(v) not in before]
            if new:
                self.net.sess.run(tf1.variables_initializer(new))
        return ops
