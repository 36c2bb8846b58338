"""The blind-spot transform of the paper (§3.3, §4.4): x' = α·x + β on x in [-0.5, 0.5].

α ≤ 1 shrinks the contrast and β shifts the gray level; with 0 < α ≤ 1 and
|β| ≤ (1 − α)/2 every x' stays inside [-0.5, 0.5], so the transform never needs (and never
does) a clip.  :func:`blindspot` works on numpy arrays and on TF tensors alike (it is one
multiply-add), so it can sit inside a graph.

Public API: ``validate(alpha, beta)``, ``blindspot(x_pm, alpha, beta)``,
``to_pm(x01)`` / ``to_01(x_pm)`` (the 0.5 shift between the data/model units [0, 1] and the
paper's attack units [-0.5, 0.5]).
"""
import math

import numpy as np

from bsattack.errors import BsattackError

# float tolerance of the range check, so that e.g. α=0.9, β=0.05 (exactly on the edge) passes
RANGE_TOLERANCE = 1e-9


def validate(alpha, beta=0.0):
    """Raise BsattackError unless α ∈ (0, 1], β finite and |β| ≤ (1 − α)/2; returns (α, β)."""
    try:
        alpha, beta = float(alpha), float(beta)
    except (TypeError, ValueError):
        raise BsattackError(f"alpha and beta must be numbers (got {alpha!r}, {beta!r})") from None
    if not (math.isfinite(alpha) and math.isfinite(beta)):
        raise BsattackError(f"alpha and beta must be finite (got alpha={alpha}, beta={beta})")
    if not 0.0 < alpha <= 1.0:
        raise BsattackError(f"alpha must be in (0, 1] (got {alpha:g}): x' = alpha*x + beta "
                            f"must stay in [-0.5, 0.5]")
    limit = (1.0 - alpha) / 2.0
    if abs(beta) > limit + RANGE_TOLERANCE:
        raise BsattackError(f"|beta| must be <= (1 - alpha)/2 = {limit:g} for alpha={alpha:g} "
                            f"(got beta={beta:g}): x' = alpha*x + beta would leave [-0.5, 0.5]")
    return alpha, beta


def blindspot(x_pm, alpha, beta=0.0):
    """x' = α·x + β for x in [-0.5, 0.5] (numpy array or tensor), after :func:`validate`."""
    alpha, beta = validate(alpha, beta)
    if isinstance(x_pm, np.ndarray):   # in float64, so that the edges land exactly on ±0.5
        return (x_pm.astype(np.float64) * alpha + beta).astype(x_pm.dtype)
    return x_pm * alpha + beta


def to_pm(x01):
    """Data / model units [0, 1] -> the paper's attack units [-0.5, 0.5]."""
    return x01 - 0.5


def to_01(x_pm):
    """The paper's attack units [-0.5, 0.5] -> data / model units [0, 1]."""
    return x_pm + 0.5
