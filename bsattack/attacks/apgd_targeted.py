"""Targeted Auto-PGD (APGD-T; Croce & Hein, ICML 2020), AutoAttack's targeted member, L∞.

For each image, the target classes are the ``targets`` highest logits other than the true
class at the clean image, in that order.  For each target t in turn, on the images not yet
fooled, APGD (:func:`bsattack.attacks.apgd.apgd`: the same step-size checkpoints, momentum and
restarts from the best point) maximises the targeted DLR loss

    DLR_t(z) = −(z_y − z_t) / (z_π1 − (z_π3 + z_π4) / 2 + 1e-12),

π sorting the logits in decreasing order, from a random start of its own.  An image counts as
fooled at its first misclassified iterate (any wrong class).  At most targets × (N + 1)
gradient evaluations per image and threshold.
"""
from dataclasses import dataclass, field

import numpy as np

from bsattack.attacks.apgd import apgd, random_start
from bsattack.attacks.base import STREAMS, FixedBudgetAttack, Settings
from bsattack.errors import BsattackError

DLR_EPSILON = 1e-12


class TargetedDLR:
    """The targeted DLR loss as an oracle loss (see the module docstring)."""
    name = "dlr-targeted"

    @staticmethod
    def tensor(tf, logits, labels, targets):
        classes = tf.shape(logits)[1]
        true = tf.reduce_sum(tf.one_hot(labels, classes, dtype=logits.dtype) * logits, axis=1)
        target = tf.reduce_sum(tf.one_hot(targets, classes, dtype=logits.dtype) * logits, axis=1)
        ranked = tf.sort(logits, axis=1, direction="DESCENDING")
        scale = ranked[:, 0] - (ranked[:, 2] + ranked[:, 3]) / 2 + DLR_EPSILON
        return -(true - target) / scale


def target_classes(logits, labels, count):
    """[N, count]: per image the ``count`` classes of highest logit other than its label."""
    masked = np.array(logits, np.float64, copy=True)
    masked[np.arange(len(labels)), labels] = -np.inf
    return np.argsort(-masked, axis=1, kind="stable")[:, :count]


@dataclass
class APGDTSettings(Settings):
    """APGD-T's choices: iterations per target, number of target classes, restarts."""
    name = "apgd-t"
    iterations: int = field(default=100, metadata={
        "help": "APGD-T iterations N per target class (AutoAttack: 100)."})
    targets: int = field(default=9, metadata={
        "help": "Target classes per image, highest logits first (AutoAttack: 9)."})
    restarts: int = field(default=1, metadata={"help": "Random restarts per image and target."})
    batch_size: int = 500
    seed: int = 0

    def __post_init__(self):
        if not (self.iterations >= 1 and self.targets >= 1 and self.restarts >= 1
                and self.batch_size >= 1):
            raise BsattackError("APGD-T needs iterations, targets, restarts and batch size >= 1")

    def describe(self):
        return (f"APGD-T ({self.targets} target classes × {self.iterations} iterations, "
                f"{self.restarts} random start(s), seed {self.seed})")


class APGDTargeted(FixedBudgetAttack):
    """APGD-T on a :class:`~bsattack.attacks.model.Model` (settings: :class:`APGDTSettings`)."""

    def attack_at(self, x, labels, eps, ids, restart):
        s, model = self.settings, self.model
        count = min(s.targets, model.logits(x[:1]).shape[1] - 1) if len(x) else 0
        targets = target_classes(model.logits(x, s.batch_size), labels, count)
        adversarial, fooled = x.copy(), np.zeros(len(x), bool)
        evals = np.zeros(len(x), np.int64)
        for rank in range(count):
            todo = np.flatnonzero(~fooled)
            if not len(todo):
                break
            start = random_start(x[todo], eps, ids[todo], s.seed,
                                 (STREAMS["apgd-t"], restart, rank), model.bounds)
            found, hit, spent = apgd(model, x[todo], labels[todo], eps, start, s.iterations,
                                     s.batch_size, TargetedDLR, targets[todo, rank])
            evals[todo] += spent
            adversarial[todo[hit]] = found[hit]
            fooled[todo[hit]] = True
        return adversarial, fooled, evals
