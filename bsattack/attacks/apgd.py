"""Auto-PGD (Croce & Hein, ICML 2020, "Reliable evaluation of adversarial robustness with an
ensemble of diverse parameter-free attacks"), L∞, untargeted, with the cross-entropy ('ce')
or the DLR loss ('dlr'), batched over a :class:`~bsattack.attacks.model.Model`'s oracle.

Per image, N iterations at budget ε, Π = projection onto the ε-ball ∩ box:
  x⁰ = x + ε·t/‖t‖∞, t ~ U(−1, 1)ᵈ (clipped to the box); η = 2ε;
  z = Π(xᵏ + η·sign ∇f(xᵏ));  xᵏ⁺¹ = Π(xᵏ + a(z − xᵏ) + (1 − a)(xᵏ − xᵏ⁻¹)), a = 0.75
  (a = 1 for the first step); the best point x_max (largest f) and its gradient are kept.
  Checkpoints: the first after ⌊0.22N⌋ iterations, each following period ⌊0.03N⌋ shorter,
  at least ⌊0.06N⌋.  At a checkpoint η halves and the iterate restarts from x_max when
  (1) f increased in at most ρ = 0.75 of the period's steps, or (2) η was not halved at the
  previous checkpoint and f_max has not grown since.
An image stops at the first iterate the network misclassifies (its example).  N + 1 gradient
evaluations at most (one at x⁰).  The start is drawn from the image's own generator.
"""
from dataclasses import dataclass, field

import numpy as np

from bsattack.attacks.base import (STREAMS, FixedBudgetAttack, Settings, keyed_rng, pool_loop,
                                   project)
from bsattack.errors import BsattackError

LOSSES = ("ce", "dlr")
ORACLE_LOSS = {"ce": "xent", "dlr": "dlr"}
MOMENTUM = 0.75
RHO = 0.75
FIRST_CHECK, PERIOD_DECREASE, MIN_PERIOD = 0.22, 0.03, 0.06


@dataclass
class APGDSettings(Settings):
    """APGD's only choices: iterations, loss, restarts (no step size to tune)."""
    name = "apgd"
    iterations: int = field(default=100, metadata={"help": "APGD iterations N (AutoAttack: 100)."})
    loss: str = field(default="ce", metadata={"choices": LOSSES,
                                              "help": "cross-entropy or Croce & Hein's DLR"})
    restarts: int = field(default=1, metadata={"help": "Random restarts per image."})
    batch_size: int = 500
    seed: int = 0

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise BsattackError(f"unknown APGD loss '{self.loss}' (known: {', '.join(LOSSES)})")
        if not (self.iterations >= 1 and self.restarts >= 1 and self.batch_size >= 1):
            raise BsattackError("APGD needs iterations >= 1, restarts >= 1, batch size >= 1")

    def describe(self):
        return (f"APGD-{self.loss.upper()} ({self.iterations} iterations, {self.restarts} "
                f"random start(s), seed {self.seed})")


def schedule(iterations):
    """(first period, period decrease, smallest period) in iterations."""
    return (max(int(FIRST_CHECK * iterations), 1), max(int(PERIOD_DECREASE * iterations), 1),
            max(int(MIN_PERIOD * iterations), 1))


def random_start(x, eps, ids, seed, stream, bounds):
    """x + ε·t/‖t‖∞ with t ~ U(−1, 1)ᵈ from the image's own generator (random ``stream``, a
    tuple of ints), clipped to the box."""
    rows = []
    for i in ids:
        t = keyed_rng(seed, i, *stream).uniform(-1, 1, x.shape[1])
        rows.append(t / np.abs(t).max())
    noise = np.asarray(rows, np.float32).reshape(x.shape)
    return np.clip(x + eps * noise, *bounds).astype(np.float32)


class APGD(FixedBudgetAttack):
    """APGD on a :class:`~bsattack.attacks.model.Model` (settings: :class:`APGDSettings`)."""

    def attack_at(self, x, labels, eps, ids, restart):
        s = self.settings
        start = random_start(x, eps, ids, s.seed, (STREAMS["apgd"], restart), self.model.bounds)
        return apgd(self.model, x, labels, eps, start, s.iterations, s.batch_size,
                    ORACLE_LOSS[s.loss])


def apgd(model, x, labels, eps, start, iterations, batch_size, loss, targets=None):
    """APGD from ``start`` on the oracle's ``loss`` (per-row ``targets`` for a targeted loss):
    (the examples, fooled per image, gradient evaluations per image)."""
    bounds = model.bounds
    first, decrease, shortest = schedule(iterations)
    adversarial, fooled = start.copy(), np.zeros(len(x), bool)
    n = len(x)

    def begin(jobs):
        k = len(jobs)
        return {"job": jobs, "x": start[jobs], "x_old": start[jobs],
                "eta": np.full(k, 2 * eps, np.float32),
                "it": np.zeros(k, np.int64), "f_last": np.full(k, -np.inf),
                "f_best": np.full(k, -np.inf), "x_best": start[jobs],
                "g_best": np.zeros_like(start[jobs]), "increases": np.zeros(k, np.int64),
                "since_check": np.zeros(k, np.int64), "period": np.full(k, first),
                "f_best_at_check": np.full(k, -np.inf), "reduced": np.zeros(k, bool)}

    def step(st, value, grad, logits):
        jobs = st["job"]
        hit = logits.argmax(axis=1) != labels[jobs]
        fooled[jobs] |= hit
        adversarial[jobs] = st["x"]
        later = st["it"] > 0
        st["increases"] += later & (value > st["f_last"])
        st["f_last"] = value
        better = value > st["f_best"]
        st["f_best"] = np.where(better, value, st["f_best"])
        st["x_best"][better], st["g_best"][better] = st["x"][better], grad[better]
        st["since_check"] += later
        check = later & (st["since_check"] == st["period"])
        oscillating = st["increases"] <= RHO * st["period"]
        stalled = ~st["reduced"] & (st["f_best_at_check"] >= st["f_best"])
        reduce = check & (oscillating | stalled)
        st["reduced"] = np.where(check, reduce, st["reduced"])
        st["f_best_at_check"] = np.where(check, st["f_best"], st["f_best_at_check"])
        st["eta"] = np.where(reduce, st["eta"] / 2, st["eta"]).astype(np.float32)
        st["x"][reduce], grad[reduce] = st["x_best"][reduce], st["g_best"][reduce]
        st["period"] = np.where(check, np.maximum(st["period"] - decrease, shortest),
                                st["period"])
        st["since_check"][check], st["increases"][check] = 0, 0
        a = np.where(later, MOMENTUM, 1.0).astype(np.float32)[:, None]
        here, anchor = st["x"], x[jobs]
        z = project(here + st["eta"][:, None] * np.sign(grad), anchor, eps, bounds)
        moved = project(here + a * (z - here) + (1 - a) * (here - st["x_old"]), anchor, eps,
                        bounds)
        st["x_old"], st["x"] = here, moved.astype(np.float32)
        st["it"] += 1
        return hit | (st["it"] > iterations)

    evals = pool_loop(model, range(n), n, batch_size, loss, begin, step,
                      lambda jobs, rows: None, lambda jobs: labels[jobs],
                      None if targets is None else (lambda jobs: targets[jobs]))
    return adversarial, fooled, evals
