"""Training-batch augmentations for :func:`bsattack.train.train` (the countermeasure experiment).

A spec string names one, so it can sit in :class:`bsattack.train.TrainSettings` and its log:

- ``''``: none (the Madry recipe).
- ``'blindspot:ALPHA_MIN'``: blind-spot augmentation — for every batch draw α ~ U[ALPHA_MIN, 1]
  and β ~ U[−(1−α)/2, (1−α)/2] (the valid region of the paper's §3.3 transform) and train on
  x' = α·x + β (in [-0.5, 0.5]; :class:`bsattack.shifts.BlindSpot`), before the PGD adversary.

The draw of a step is a function of (seed, step) only, so a resumed run sees the same batches.

Public API: ``parse(spec)`` -> (name, alpha_min) or raises BsattackError; ``draw(spec, seed,
step)`` -> a :class:`bsattack.shifts.BlindSpot`; ``make(spec, seed)`` ->
``augment(images01, step)`` (identity for '').
"""
import numpy as np

from bsattack.errors import BsattackError
from bsattack.shifts import BlindSpot
from bsattack.transforms import to_01, to_pm

def parse(spec):
    """('', None) for no augmentation, ('blindspot', alpha_min) for 'blindspot:ALPHA_MIN'."""
    if not spec:
        return "", None
    name, _, arg = spec.partition(":")
    if name != "blindspot":
        raise BsattackError(f"unknown augmentation '{spec}' (known: blindspot:ALPHA_MIN, "
                            f"e.g. blindspot:0.6)")
    try:
        alpha_min = float(arg)
    except ValueError:
        raise BsattackError(f"augmentation '{spec}': ALPHA_MIN must be a number in "
                            f"(0, 1]") from None
    if not 0.0 < alpha_min <= 1.0:
        raise BsattackError(f"augmentation '{spec}': ALPHA_MIN must be in (0, 1]")
    return name, alpha_min


def draw(spec, seed, step):
    """The :class:`bsattack.shifts.BlindSpot` of training step ``step``: α ~ U[α_min, 1],
    β ~ U[−(1−α)/2, (1−α)/2]."""
    _, alpha_min = parse(spec)
    rng = np.random.default_rng([seed, step, 0xB5])
    alpha = float(rng.uniform(alpha_min, 1.0))
    limit = (1.0 - alpha) / 2.0
    return BlindSpot(alpha, float(rng.uniform(-limit, limit)))


def make(spec, seed):
    """``augment(images01, step)`` -> the batch to train on (the batch itself for '')."""
    name, _ = parse(spec)
    if not name:
        return lambda images01, step: images01

    def augment(images01, step):
        return to_01(draw(spec, seed, step)(to_pm(images01)))
    return augment
