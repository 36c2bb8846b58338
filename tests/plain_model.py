"""An oracle independent of bsattack.attacks: the checkpoint in a graph of its own, fed flat
images in the attack units [-0.5, 0.5], one image or a batch at a time."""
import numpy as np
import tensorflow as tf

from bsattack import models

tf1 = tf.compat.v1


class PlainModel:
    """Logits, predictions and per-image objectives with their input gradients:
    'xent' (cross-entropy), 'cw' (−relu(margin + 50), Madry's CW loss), 'margin'
    (z_y − max_{j≠y} z_j) and 'dlr' (−margin / (z_π1 − z_π3 + 1e-12))."""

    def __init__(self, dataset, checkpoint, dim=784, classes=10):
        self.graph = tf1.Graph()
        with self.graph.as_default():
            self.x = tf1.placeholder(tf.float32, [None, dim])
            self.y = tf1.placeholder(tf.int64, [None])
            self.sess = models.new_session(self.graph)
            self.model = models.load(self.sess, dataset, checkpoint, self.x + 0.5)
            logits = self.model.logits
            onehot = tf.one_hot(self.y, classes)
            correct = tf.reduce_sum(onehot * logits, 1)
            wrong = tf.reduce_max((1 - onehot) * logits - 1e4 * onehot, 1)
            top3 = tf.nn.top_k(logits, 3).values
            margin = correct - wrong
            objectives = {
                "xent": tf.nn.sparse_softmax_cross_entropy_with_logits(labels=self.y,
                                                                       logits=logits),
                "cw": -tf.nn.relu(margin + 50),
                "margin": margin,
                "dlr": -margin / (top3[:, 0] - top3[:, 2] + 1e-12)}
            self.ops = {name: (value, tf.gradients(tf.reduce_sum(value), self.x)[0], logits)
                        for name, value in objectives.items()}

    def logits(self, x):
        return self.sess.run(self.model.logits, {self.x: np.reshape(x, (-1, self.x.shape[1]))})

    def predict(self, x):
        return self.logits(x).argmax(axis=1)

    def evaluate(self, x, y, objective):
        """(value, gradient, logits) of one image ``x`` [d] with label ``y``."""
        value, grad, logits = self.sess.run(self.ops[objective], {self.x: x[None],
                                                                  self.y: [y]})
        return value[0], grad[0], logits[0]

    def gradient(self, x, y, objective):
        """Gradients of a batch."""
        return self.sess.run(self.ops[objective][1], {self.x: x, self.y: y})


def correctly_classified(plain, split, n):
    """The first ``n`` test images in [-0.5, 0.5] that ``plain`` classifies correctly:
    (images, int64 labels, their test indices)."""
    x = split.test_x[:n].reshape(n, -1) - np.float32(0.5)
    keep = np.flatnonzero(plain.predict(x) == split.test_y[:n])
    return x[keep], split.test_y[keep].astype(np.int64), keep
