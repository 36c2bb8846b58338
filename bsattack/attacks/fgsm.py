"""Goodfellow et al.'s fast gradient sign method, L∞: x_adv = Π(x + ε·sign ∇L(x)), one
gradient evaluation per image and threshold (Π: clip to the box; L: the cross-entropy).
The registry's smallest attack: the contract's example of a new attack in one file.
"""
from dataclasses import dataclass

import numpy as np

from bsattack.attacks.base import FixedBudgetAttack, Settings, batches, project


@dataclass
class FGSMSettings(Settings):
    name = "fgsm"
    batch_size: int = 500
    seed: int = 0

    def describe(self):
        return "FGSM (one step of ε·sign ∇ cross-entropy)"


class FGSM(FixedBudgetAttack):
    """FGSM on a :class:`~bsattack.attacks.model.Model`."""

    def attack_at(self, x, labels, eps, ids, restart):
        adversarial = np.empty_like(x)
        for rows in batches(len(x), self.settings.batch_size):
            _, grad, _ = self.model.value_and_grad(x[rows], labels[rows], "xent")
            adversarial[rows] = project(x[rows] + eps * np.sign(grad), x[rows], eps,
                                        self.model.bounds)
        fooled = self.model.predict(adversarial) != labels
        return adversarial, fooled, np.ones(len(x), np.int64)
