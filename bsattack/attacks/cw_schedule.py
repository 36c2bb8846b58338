"""li_attack.py's schedule, shared by both variants of the C&W L∞ attack (:mod:`.cw`, the box
variant, and :mod:`.cw_reference`): its constants, the paper's two starts, and the τ step of
threshold mode."""
import numpy as np

from bsattack.attacks.base import LINF_TOLERANCE, STREAMS, keyed_rng

# li_attack.py's defaults
DECREASE_FACTOR = 0.9
MAX_ITERATIONS = 1000
INITIAL_CONST = 1e-5
LEARNING_RATE = 5e-3
LARGEST_CONST = 20.0
CONST_FACTOR = 2.0
TAU_START = 1.0
TAU_END = 1.0 / 256
ABORT_FACTOR = 1e-4
# TF1 AdamOptimizer defaults (the reference's optimiser)
ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON = 0.9, 0.999, 1e-8
# the paper's starts (§4.1), gray first: in threshold mode an image decided by its first start
# skips the second
NOISE_SIGMA = 0.2
INITS = ("gray", "noise")
PAPER_BOX = (-0.5, 0.5)


def initial_image(kind, x, image_id, seed, restart=0, bounds=PAPER_BOX):
    """The paper's starts: x + N(0, (0.2·w)²) clipped to the box of width w, or blank gray
    (the middle of the box: 0 in the paper's units)."""
    low, high = bounds
    if kind == "gray":
        return np.full_like(x, (low + high) / 2)
    stream = (STREAMS["cw"], restart) if restart else ()
    noise = keyed_rng(seed, image_id, *stream).normal(0.0, NOISE_SIGMA * (high - low), x.shape)
    return np.clip(x + noise, low, high).astype(np.float32)


def next_tau(settings, thresholds, linf, schedule_tau):
    """τ of the next round after a success at ``linf``: the schedule's, except that (threshold
    mode) a step over a threshold this start has not met yet lands on it."""
    if settings.mode == "minimal":
        return schedule_tau
    skipped = [t for t in thresholds if schedule_tau < t < linf - LINF_TOLERANCE]
    return max(skipped) if skipped else schedule_tau
