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

    def __init__(self, spec, checkpoint, dim=784, classes=10):
        self.graph = tf1.Graph()
        with self.graph.as_default():
            self.x = tf1.placeholder(tf.float32, [None, dim])
            self.y = tf1.placeholder(tf.int64, [None])
            self.sess = models.new_session(self.graph)
            self.model = models.load(self.sess, spec, checkpoint, self.x + 0.5)
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


def _box(v, x, eps):
    """Onto the ε-ball around x, then onto [-0.5, 0.5]."""
    return np.clip(np.clip(v, x - eps, x + eps), -0.5, 0.5)


def apgd_loop(evaluate, f_of, x, y, eps, iterations, start):
    """Croce & Hein's APGD for one image (N = ``iterations``) on ``evaluate(x) -> (gradient of
    the objective, logits)`` and the objective ``f_of(logits)``, stopping at the first
    misclassified iterate: (example, fooled, gradient evaluations, η halvings)."""
    first = max(int(0.22 * iterations), 1)
    decrease = max(int(0.03 * iterations), 1)
    shortest = max(int(0.06 * iterations), 1)
    checkpoints, w, period = [], 0, first
    while w + period <= iterations:
        w += period
        checkpoints.append(w)
        period = max(period - decrease, shortest)
    eps32 = np.float32(eps)
    eta = np.float32(2 * eps)
    x_k = x_prev = start.copy()
    f_values, f_max, x_max, g_max = [], -np.inf, None, None
    last_check, reduced_last, f_max_last, halvings = 0, False, None, 0
    for k in range(iterations + 1):
        grad, logits = evaluate(x_k)
        if logits.argmax() != y:
            return x_k, True, k + 1, halvings
        f = f_of(logits)
        f_values.append(f)
        if f > f_max:
            f_max, x_max, g_max = f, x_k, grad
        if k == iterations:
            break
        if k in checkpoints:
            increases = sum(f_values[i + 1] > f_values[i] for i in range(last_check, k))
            condition1 = increases <= 0.75 * (k - last_check)
            condition2 = not reduced_last and f_max_last is not None and f_max == f_max_last
            reduce = condition1 or condition2
            if reduce:                              # halve η, restart from x_max
                eta, halvings = np.float32(eta / 2), halvings + 1
                x_k, grad = x_max, g_max
            reduced_last, f_max_last, last_check = reduce, f_max, k
        a = np.float32(1.0 if k == 0 else 0.75)
        z = _box(x_k + eta * np.sign(grad), x, eps32)
        x_k, x_prev = _box(x_k + a * (z - x_k) + (1 - a) * (x_k - x_prev), x, eps32), x_k
    return x_k, False, iterations + 1, halvings


def recording_build(seen):
    """The registry's build function, with every member run recorded in ``seen`` as
    (attack name, ids attacked)."""
    from bsattack.attacks import registry

    def build(model, settings):
        attack = registry.build(model, settings)
        real = attack.run

        def run(x, y, thresholds, ids):
            seen.append((settings.name, list(ids)))
            return real(x, y, thresholds, ids)
        attack.run = run
        return attack
    return build
