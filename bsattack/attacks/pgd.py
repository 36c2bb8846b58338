"""Madry et al.'s L∞ PGD adversary (``mnist_challenge/pgd_attack.py``) as one in-graph loop.

Units: everything here is in the network's input units, [0, 1] for MNIST / Fashion-MNIST
(the paper's [-0.5, 0.5] plus 0.5; ε is the same in both because the range width is 1).

From x_nat: optional uniform random start in [-ε, ε] (clipped to the box), then ``steps``
times x += a·sign(∇loss), clipped to [x_nat − ε, x_nat + ε] and then to the box.  Loss 'xent'
is the summed cross-entropy; 'cw' is −relu(z_true − max_{j≠true} z_j + 50) with the true logit
masked by −1e4, as in the reference.  The whole loop is one ``tf.while_loop`` (one
``session.run`` per batch).

Public API:
- ``pgd_graph(logits_fn, x_nat, y, eps, step_size, steps, loss, random_start)`` -> the
  adversarial-example tensor; ``logits_fn`` maps an input tensor to logits (e.g.
  :func:`bsattack.attacks.network.shared_logits_fn`, which shares a training model's
  variables, so adversarial training can call this on its own placeholders).
- ``LinfPGD(dataset, checkpoint, PGDSettings(...)).attack(x01, labels, eps)`` -> ``PGDResult`` with
  restarts (per image the first successful restart, else the one of highest loss).
"""
from dataclasses import asdict, dataclass

import numpy as np
import tensorflow as tf

from bsattack.attacks.network import AttackSession, flatten
from bsattack.errors import BsattackError

tf1 = tf.compat.v1
LOSSES = ("xent", "cw")
CW_MARGIN = 50.0          # confidence of the reference's 'cw' loss
MASK = 1e4                # the reference masks the true logit with -1e4 before the max


def per_image_loss(logits, y, loss="xent"):
    """The attacker's objective per image (to be maximised): cross-entropy or C&W margin."""
    if loss == "xent":
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    if loss == "cw":
        mask = tf.one_hot(y, tf.shape(logits)[1], dtype=logits.dtype)
        correct = tf.reduce_sum(mask * logits, axis=1)
        wrong = tf.reduce_max((1 - mask) * logits - MASK * mask, axis=1)
        return -tf.nn.relu(correct - wrong + CW_MARGIN)
    raise BsattackError(f"unknown PGD loss '{loss}' (known: {', '.join(LOSSES)})")


def pgd_graph(logits_fn, x_nat, y, eps, step_size, steps, loss="xent", random_start=True,
              box=(0.0, 1.0), seed=None):
    """Tensor of PGD adversarial examples for ``x_nat`` (same units as ``logits_fn`` takes).

    ``eps``/``step_size`` may be floats or scalar tensors; ``steps`` an int or scalar tensor.
    """
    lower, upper = box
    x_nat = tf.convert_to_tensor(x_nat)
    lo = tf.maximum(x_nat - eps, lower)
    hi = tf.minimum(x_nat + eps, upper)
    if random_start:
        noise = tf1.random_uniform(tf.shape(x_nat), -1.0, 1.0, seed=seed) * eps
        x_start = tf.clip_by_value(x_nat + noise, lower, upper)
    else:
        x_start = x_nat

    def body(i, x):
        objective = tf.reduce_sum(per_image_loss(logits_fn(x), y, loss))
        grad = tf.gradients(objective, x)[0]
        x = x + step_size * tf.sign(grad)
        return i + 1, tf.clip_by_value(x, lo, hi)   # ε-ball ∩ box (ball clip, then box clip)

    _, x_adv = tf.while_loop(lambda i, x: i < steps, body, [tf.constant(0), x_start])
    return tf.stop_gradient(x_adv)


@dataclass
class PGDResult:
    adversarial: np.ndarray    # [N, d] in [0, 1]
    linf: np.ndarray           # [N] L∞ distance to the input
    misclassified: np.ndarray  # [N] bool: the example fools the model
    grad_evals: np.ndarray     # [N] gradient evaluations spent per image


@dataclass
class PGDSettings:
    """Madry's adversary: k steps of size a, random start, loss, restarts (cache key too)."""
    steps: int = 100
    step_size: float = 0.01
    loss: str = "xent"
    restarts: int = 1
    random_start: bool = True
    batch_size: int = 500
    seed: int = 0

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise BsattackError(f"unknown PGD loss '{self.loss}' (known: {', '.join(LOSSES)})")
        if self.steps < 1 or self.restarts < 1 or self.step_size <= 0 or self.batch_size < 1:
            raise BsattackError("PGD needs steps >= 1, restarts >= 1, step size > 0, batch >= 1")

    def key(self):
        key = asdict(self)
        key.pop("batch_size")
        key["attack"] = "pgd"
        return key


class LinfPGD:
    """PGD runner on a checkpoint (settings: :class:`PGDSettings`)."""

    def __init__(self, dataset, checkpoint, settings=None):
        self.settings = s = settings or PGDSettings()
        self.net = AttackSession(dataset, checkpoint)
        with self.net.graph.as_default():
            tf1.set_random_seed(s.seed)
            self.y = tf1.placeholder(tf.int64, [None], name="y")
            self.eps = tf1.placeholder(tf.float32, [], name="eps")
            self.x_adv = pgd_graph(self.net.logits_fn, self.net.x01, self.y, self.eps,
                                   s.step_size, s.steps, s.loss, s.random_start)
            logits = self.net.logits_fn(self.x_adv)
            self.adv_loss = per_image_loss(logits, self.y, s.loss)
            self.adv_pred = tf.argmax(logits, 1)
        self.net.start()

    def attack(self, x01, labels, eps, progress=None):
        """Attack ``x01`` ([N, ...] in [0,1]) with true ``labels`` at L∞ budget ``eps``; the
        examples come back in the input's layout."""
        shape = np.shape(x01)
        x01 = flatten(x01)
        n = len(x01)
        best = np.array(x01, dtype=np.float32, copy=True)
        best_loss = np.full(n, -np.inf)
        fooled = np.zeros(n, bool)
        grad_evals = np.zeros(n, np.int64)
        for _ in range(self.settings.restarts):
            for start in range(0, n, self.settings.batch_size):
                rows = slice(start, start + self.settings.batch_size)
                todo = ~fooled[rows]
                if not todo.any():
                    continue
                idx = np.arange(n)[rows][todo]
                adv, loss, pred = self.net.sess.run(
                    [self.x_adv, self.adv_loss, self.adv_pred],
                    {self.net.x01: x01[idx], self.y: labels[idx], self.eps: eps})
                fool = pred != labels[idx]
                better = fool | (loss > best_loss[idx])
                best[idx[better]] = adv[better]
                best_loss[idx[better]] = loss[better]
                fooled[idx[fool]] = True
                grad_evals[idx] += self.settings.steps
                if progress is not None:
                    progress(len(idx))
        linf = np.abs(best - x01).max(axis=1) if n else np.zeros(0)
        return PGDResult(best.reshape(shape), linf, fooled, grad_evals)

    def close(self):
        self.net.close()
