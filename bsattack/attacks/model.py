"""The attacked network as the attacks see it: a box, and a gradient oracle.

``Model(dataset, checkpoint)`` restores the network once and answers, for flat images in the
attack units ``bounds`` = [-0.5, 0.5] (the paper's units; the network itself reads
(x + 0.5) · pixel_scale, which the adapter applies):
- ``value_and_grad(x, labels, loss)``: per image the loss, its gradient w.r.t. x and the
  logits, one forward+backward pass per row (one "gradient evaluation"), where loss is
  'xent' (cross-entropy), 'margin' (z_y − max_{j≠y} z_j, the true logit masked by −1e4 as in
  li_attack.py) or 'dlr' (Croce & Hein's −(z_y − max_{j≠y} z_j) / (z_π1 − z_π3 + 1e-12));
- ``logits(x)`` / ``predict(x)``: forward passes only.
Attacks that run as one TF graph (the reference C&W) add their ops with :meth:`add_ops`.
"""
import numpy as np
import tensorflow as tf

from bsattack.attacks.base import batches
from bsattack.attacks.network import AttackSession

tf1 = tf.compat.v1
LOSSES = ("xent", "margin", "dlr")
LOGIT_MASK = 1e4
DLR_EPSILON = 1e-12
SHIFT = 0.5          # attack units [-0.5, 0.5] -> the network's [0, 1] placeholder


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


class Model:
    """``dataset``'s network restored from ``checkpoint``, in the attack units."""
    bounds = (-0.5, 0.5)

    def __init__(self, dataset, checkpoint):
        self.dataset = dataset
        self.net = AttackSession(dataset, checkpoint)
        net = self.net
        with net.graph.as_default():
            self.labels = tf1.placeholder(tf.int64, [None], name="attack_labels")
            self._ops = {}
            for loss in LOSSES:
                value = loss_tensor(net.model.logits, self.labels, loss)
                grad = tf.gradients(tf.reduce_sum(value), net.x01)[0]
                self._ops[loss] = (value, grad, net.model.logits)
        net.start()
        self.dim = int(net.x01.shape[1])

    def _feed(self, x, labels=None):
        feed = {self.net.x01: np.asarray(x, np.float32).reshape(len(x), self.dim) + SHIFT}
        if labels is not None:
            feed[self.labels] = labels
        return feed

    def value_and_grad(self, x, labels, loss="xent"):
        """(loss [N], d loss / d x [N, d], logits [N, K]) of flat images ``x``."""
        return self.net.sess.run(self._ops[loss], self._feed(x, labels))

    def logits(self, x, batch_size=500):
        parts = [self.net.sess.run(self.net.model.logits, self._feed(x[rows]))
                 for rows in batches(len(x), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    def predict(self, x, batch_size=500):
        """int64 predicted labels of flat images ``x`` in the attack units."""
        return (self.logits(x, batch_size).argmax(axis=1).astype(np.int64) if len(x)
                else np.zeros(0, np.int64))

    def add_ops(self, build):
        """``build(net)`` inside this model's graph (``net``: the
        :class:`~bsattack.attacks.network.AttackSession`); its new variables are initialised.
        Returns what ``build`` returns."""
        with self.net.graph.as_default():
            before = set(id(v) for v in tf1.global_variables())
            ops = build(self.net)
            new = [v for v in tf1.global_variables() if id(v) not in before]
            self.net.sess.run(tf1.variables_initializer(new))
        return ops

    def gradient_rate(self, x, labels, repeats=2):
        """Image-gradients per second of the plain forward+backward pass on this batch."""
        return self.net.gradient_rate(np.asarray(x).reshape(len(x), self.dim) + SHIFT, labels,
                                      repeats)

    def close(self):
        self.net.close()
