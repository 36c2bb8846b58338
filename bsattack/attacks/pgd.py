"""Madry et al.'s L∞ PGD adversary (``mnist_challenge/pgd_attack.py``), batched over a
:class:`~bsattack.attacks.model.Model`'s gradient oracle.

Per image, at budget ε: x⁰ = x + U(−ε, ε)ᵈ clipped to the box (random start) or x; then up
to ``steps`` times xᵏ⁺¹ = Π(xᵏ + a·sign ∇L(xᵏ)), Π = clip to [x − ε, x + ε] then to the box.
L is the cross-entropy ('xent') or −relu(z_y − max_{j≠y} z_j + 50) ('cw', the reference's
CW loss).  Unlike the reference, which looks only at the last iterate, an image stops at the
first iterate the network misclassifies (that iterate is its example): the same path, never
less success, fewer gradient evaluations.  The random start of an image is drawn from its own
generator (seed, test index, restart), so it does not depend on the batch or chunk.
"""
from dataclasses import dataclass, field

import numpy as np

from bsattack.attacks.base import (STREAMS, FixedBudgetAttack, Settings, keyed_rng, pool_loop,
                                   project)
from bsattack.errors import BsattackError

LOSSES = ("xent", "cw")
CW_CONFIDENCE = 50.0


@dataclass
class PGDSettings(Settings):
    """Madry's adversary: k steps of size a, random start, loss, restarts."""
    name = "pgd"
    steps: int = field(default=100, metadata={"help": "PGD steps k (Madry's MNIST: 100)."})
    step_size: float = field(default=0.01, metadata={"help": "PGD step a, attack units."})
    loss: str = field(default="xent", metadata={"choices": LOSSES,
                                                "help": "cross-entropy or the CW margin loss"})
    restarts: int = field(default=1, metadata={"help": "Random restarts per image."})
    random_start: bool = field(default=True, metadata={"cli": False})
    batch_size: int = 500
    seed: int = 0

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise BsattackError(f"unknown PGD loss '{self.loss}' (known: {', '.join(LOSSES)})")
        if not (self.steps >= 1 and self.restarts >= 1 and self.batch_size >= 1
                and np.isfinite(self.step_size) and self.step_size > 0):
            raise BsattackError("PGD needs steps >= 1, restarts >= 1, a finite step size > 0 "
                                "and batch size >= 1")

    def key(self):
        return {**super().key(), "early_stop": True, "rng": "per-image"}

    def describe(self):
        return (f"PGD-{self.steps} (step {self.step_size:g}, {self.loss} loss, "
                f"{self.restarts} random start(s), first misclassified iterate kept, "
                f"seed {self.seed})")


def random_start(x, eps, ids, seed, restart, bounds):
    """x + U(−ε, ε) per image from its own generator, clipped to the box."""
    noise = np.stack([keyed_rng(seed, i, STREAMS["pgd"], restart).uniform(-1, 1, x.shape[1])
                      for i in ids]) if len(x) else np.zeros_like(x)
    return np.clip(x + eps * noise.astype(np.float32), *bounds).astype(np.float32)


def ascent_direction(loss, value, grad):
    """∇ of the objective PGD maximises, from the oracle's loss ('xent' or 'margin')."""
    if loss == "xent":
        return grad
    active = (value + CW_CONFIDENCE > 0).astype(grad.dtype)    # −relu(margin + 50)
    return -active[:, None] * grad


class LinfPGD(FixedBudgetAttack):
    """PGD on a :class:`~bsattack.attacks.model.Model` (settings: :class:`PGDSettings`)."""

    def attack_at(self, x, labels, eps, ids, restart):
        s, bounds = self.settings, self.model.bounds
        start = (random_start(x, eps, ids, s.seed, restart, bounds) if s.random_start
                 else x.copy())
        adversarial, fooled = start.copy(), np.zeros(len(x), bool)
        oracle_loss = "xent" if s.loss == "xent" else "margin"

        def begin(jobs):
            return {"job": jobs, "x": start[jobs], "k": np.zeros(len(jobs), np.int64)}

        def step(state, value, grad, logits):
            jobs = state["job"]
            hit = logits.argmax(axis=1) != labels[jobs]
            fooled[jobs] = hit
            moved = project(state["x"] + s.step_size * np.sign(
                ascent_direction(oracle_loss, value, grad)), x[jobs], eps, bounds)
            state["x"] = np.where(hit[:, None], state["x"], moved).astype(np.float32)
            state["k"] += 1
            return hit | (state["k"] >= s.steps)

        def finish(jobs, rows):
            adversarial[jobs] = rows["x"]

        evals = pool_loop(self.model, range(len(x)), len(x), s.batch_size, oracle_loss, begin,
                          step, finish, lambda jobs: labels[jobs])
        last = ~fooled
        if last.any():                        # the last iterate, after the final step
            fooled[last] = self.model.predict(adversarial[last]) != labels[last]
        return adversarial, fooled, evals
