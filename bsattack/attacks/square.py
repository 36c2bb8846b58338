"""Square Attack (Andriushchenko, Croce, Flammarion & Hein, ECCV 2020), L∞, untargeted,
score-based: forward passes (``model.logits``) only, never a gradient.  The queries are
float32's at every ``--precision``: the search accepts a window when the margin falls by any
amount, and bfloat16's rounding of the margin misleads that test (``bench/README.md``).

Per image of h × w pixels and c channels (``model.image_shape``), at budget ε, with
Π = clip to the ε-ball around x, then to the box, and the margin loss
L(z) = z_y − max_{j≠y} z_j (minimised):
  x_best = Π(x + ε·v), v ∈ {−1, 1} drawn per column and channel (vertical stripes);
  iteration i = 0 … queries − 1: p_i = p_init halved after iterations 10, 50, 200, 500, 1000,
  2000, 4000, 6000 and 8000 of 10,000 (AutoAttack's schedule; with ``rescale_schedule`` i is
  first mapped to ⌊10,000·i / queries⌋), window side s = round(√(p_i·h·w)) within [1, min(h, w)];
  an s × s window at a uniform position and one sign σ per channel give the candidate x̃ =
  x_best with the window set to Π(x + ε·σ); x_best ← x̃ when L(x̃) < L(x_best).
An image stops at its first misclassified query, which is its example: at most queries + 1
forward evaluations (one at the start).  Every draw comes from the image's own generator.
Unlike AutoAttack's code, which draws one window and one σ for the whole batch at positions
in [0, h − s), the window is drawn per image, over every position where it fits.
"""
from dataclasses import dataclass, field

import numpy as np

from bsattack.attacks.base import (STREAMS, FixedBudgetAttack, Settings, batches, keyed_rng,
                                   project)
from bsattack.errors import BsattackError

HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)   # of SCHEDULE_LENGTH iterations
SCHEDULE_LENGTH = 10000
DRAW_BLOCK = 100     # iterations whose draws an image takes from its generator at once


@dataclass
class SquareSettings(Settings):
    """Square's choices: queries, the initial window fraction p, restarts."""
    name = "square"
    uses_forward_queries = True
    queries: int = field(default=5000, metadata={
        "help": "Square iterations, one forward pass each (AutoAttack: 5000)."})
    p_init: float = field(default=0.8, metadata={
        "help": "Square's initial window fraction p, in (0, 1] (AutoAttack: 0.8)."})
    restarts: int = field(default=1, metadata={"help": "Random restarts per image."})
    rescale_schedule: bool = field(default=True, metadata={"cli": False})
    batch_size: int = 500
    seed: int = 0

    def __post_init__(self):
        if not (self.queries >= 1 and self.restarts >= 1 and self.batch_size >= 1):
            raise BsattackError("Square needs queries >= 1, restarts >= 1 and batch size >= 1")
        if not (np.isfinite(self.p_init) and 0 < self.p_init <= 1):
            raise BsattackError(f"Square needs 0 < p_init <= 1 (got {self.p_init})")

    def describe(self):
        return (f"Square ({self.queries} queries, p_init {self.p_init:g}, schedule "
                f"{'rescaled to the queries' if self.rescale_schedule else 'of 10,000 queries'}"
                f", {self.restarts} random start(s), seed {self.seed})")


def window_fraction(iteration, queries, p_init, rescale):
    """p at ``iteration`` (0-based): ``p_init`` halved once per step of :data:`HALVINGS`
    passed."""
    step = int(iteration / queries * SCHEDULE_LENGTH) if rescale else iteration
    return p_init / 2 ** sum(step > halving for halving in HALVINGS)


def window_side(fraction, height, width):
    return min(max(int(round(np.sqrt(fraction * height * width))), 1), height, width)


def margin(logits, labels):
    """z_y − max_{j≠y} z_j per row."""
    rows = np.arange(len(labels))
    others = np.array(logits, np.float64, copy=True)
    others[rows, labels] = -np.inf
    return logits[rows, labels] - others.max(axis=1)


class Square(FixedBudgetAttack):
    """Square on a :class:`~bsattack.attacks.model.Model` (settings: :class:`SquareSettings`);
    its evaluations are forward passes."""
    evaluation = "forward_evals"

    def attack_at(self, x, labels, eps, ids, restart):
        adversarial, fooled = x.copy(), np.zeros(len(x), bool)
        evals = np.zeros(len(x), np.int64)
        for rows in batches(len(x), self.settings.batch_size):
            adversarial[rows], fooled[rows], evals[rows] = self._attack_batch(
                x[rows], labels[rows], eps, ids[rows], restart)
        return adversarial, fooled, evals

    def _query(self, images):
        return self.model.logits(images.reshape(len(images), -1), self.settings.batch_size)

    def _attack_batch(self, x, labels, eps, ids, restart):
        s = self.settings
        height, width, channels = self.model.image_shape
        low, high = self.model.bounds
        k = len(x)
        generators = [keyed_rng(s.seed, i, STREAMS["square"], restart) for i in ids]
        stripes = np.stack([np.where(g.random((1, width, channels)) < 0.5, -1, 1)
                            for g in generators]).astype(np.float32)
        clean = x.reshape(k, height, width, channels)
        best = project(clean + np.float32(eps) * stripes, clean, eps, (low, high))
        logits = self._query(best)
        evals = np.ones(k, np.int64)
        fooled = logits.argmax(axis=1) != labels
        loss = margin(logits, labels)
        draws = np.zeros((k, DRAW_BLOCK, 2 + channels))
        active = np.flatnonzero(~fooled)
        for iteration in range(s.queries):
            if not len(active):
                break
            if iteration % DRAW_BLOCK == 0:
                draws[active] = [generators[i].random((DRAW_BLOCK, 2 + channels))
                                 for i in active]
            side = window_side(window_fraction(iteration, s.queries, s.p_init,
                                               s.rescale_schedule), height, width)
            u = draws[active, iteration % DRAW_BLOCK]
            top = np.minimum((u[:, 0] * (height - side + 1)).astype(np.int64), height - side)
            left = np.minimum((u[:, 1] * (width - side + 1)).astype(np.int64), width - side)
            signs = np.where(u[:, 2:] < 0.5, -1, 1).astype(np.float32)[:, None, None, :]
            image = active[:, None, None]
            rows = (top[:, None] + np.arange(side))[:, :, None]
            cols = (left[:, None] + np.arange(side))[:, None, :]
            window = clean[image, rows, cols]
            candidate = best[active]
            candidate[np.arange(len(active))[:, None, None], rows, cols] = project(
                window + np.float32(eps) * signs, window, eps, (low, high))
            logits = self._query(candidate)
            evals[active] += 1
            hit = logits.argmax(axis=1) != labels[active]
            value = margin(logits, labels[active])
            take = hit | (value < loss[active])
            best[active[take]] = candidate[take]
            loss[active[take]] = value[take]
            fooled[active[hit]] = True
            active = active[~hit]
        return best.reshape(k, -1), fooled, evals
