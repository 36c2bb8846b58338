"""Label-preserving input shifts on images in [-0.5, 0.5]: the paper's own x' = αx + β
(:class:`BlindSpot`) and families beyond it that a person still reads as the same digit or
garment (:class:`Shift`, each with a strength; square single-channel images [N, side²],
black background = -0.5).

| family | strength | x' |
| --- | --- | --- |
| gamma | γ > 0 | (x + 0.5)^γ − 0.5 (a tone curve: γ < 1 brightens, γ > 1 darkens) |
| blur | σ in pixels | Gaussian blur (scipy.ndimage.gaussian_filter, black outside) |
| translate-x / translate-y | whole pixels | shift right / down (negative: left / up) |
| rotate | degrees | counter-clockwise about the image centre, bilinear |
| invert | 1 | −x (white background, dark strokes) |

Every output is checked to stay in [-0.5, 0.5] (no transform here needs a clip: the tone curve
is monotone on [0, 1] and blur/bilinear interpolation are convex combinations), and every
strength is validated with a one-line error.

Every transform is a frozen value with the same interface: ``t(x_pm) -> x_pm`` (numpy in and
out, [-0.5, 0.5]), ``name`` (for tables, file and group names), ``key()`` (for cache keys),
``family``, ``is_original`` and ``thresholds(eps)`` (the L∞ thresholds success is decided at).

Public API: ``BlindSpot(alpha, beta)``, ``Shift(family, strength)``, ``parse(spec)`` for
'family:strength', ``DEFAULT_SHIFTS``, ``ORIGINAL`` (the identity, ``BlindSpot(1, 0)``).
"""
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from bsattack.errors import BsattackError
from bsattack.transforms import blindspot, validate

BACKGROUND = -0.5               # black, in [-0.5, 0.5] units
RANGE_TOLERANCE = 1e-6
MAX_TRANSLATION = 4
MAX_ROTATION = 45.0
FAMILIES = ("gamma", "blur", "translate-x", "translate-y", "rotate", "invert")


def _gamma(x, g):
    return np.power(x.astype(np.float64) + 0.5, g) - 0.5


def _blur(x, sigma):
    return ndimage.gaussian_filter(x, sigma=(0, sigma, sigma), mode="constant", cval=BACKGROUND)


def _translate(axis):
    def apply(x, pixels):
        offset = [0, 0, 0]
        offset[axis] = int(pixels)
        return ndimage.shift(x, offset, order=0, mode="grid-constant", cval=BACKGROUND)
    return apply


def _rotate(x, degrees):
    return ndimage.rotate(x, degrees, axes=(2, 1), reshape=False, order=1, mode="grid-constant",
                          cval=BACKGROUND)


def _invert(x, _):
    return -x


_APPLY = {"gamma": _gamma, "blur": _blur, "translate-x": _translate(2),
          "translate-y": _translate(1), "rotate": _rotate, "invert": _invert}


def _check_strength(family, s):
    if not math.isfinite(s):
        raise BsattackError(f"shift {family}: strength must be finite (got {s})")
    if family == "gamma" and not 0.2 <= s <= 5.0:
        raise BsattackError(f"shift gamma: γ must be in [0.2, 5] (got {s:g})")
    if family == "blur" and not 0.0 < s <= 3.0:
        raise BsattackError(f"shift blur: σ must be in (0, 3] pixels (got {s:g})")
    if family.startswith("translate") and (s != int(s) or not 0 < abs(s) <= MAX_TRANSLATION):
        raise BsattackError(f"shift {family}: a whole number of pixels, 1..{MAX_TRANSLATION} "
                            f"either way (got {s:g})")
    if family == "rotate" and not 0 < abs(s) <= MAX_ROTATION:
        raise BsattackError(f"shift rotate: angle must be nonzero and within ±{MAX_ROTATION:g}° "
                            f"(got {s:g})")
    if family == "invert" and s != 1:
        raise BsattackError(f"shift invert has the single strength 1 (got {s:g})")


@dataclass(frozen=True)
class BlindSpot:
    """The paper's blind-spot transform x' = α·x + β (§3.3) with 0 < α ≤ 1, |β| ≤ (1 − α)/2
    (validated by :func:`bsattack.transforms.validate`); ``BlindSpot(1, 0)`` is the identity."""
    alpha: float = 1.0
    beta: float = 0.0

    def __post_init__(self):
        alpha, beta = validate(self.alpha, self.beta)
        object.__setattr__(self, "alpha", alpha)
        object.__setattr__(self, "beta", beta)

    @property
    def is_original(self):
        return (self.alpha, self.beta) == (1.0, 0.0)

    @property
    def name(self):
        """'original' for the identity, else e.g. 'alpha0.9-beta0.05'."""
        return "original" if self.is_original else f"alpha{self.alpha:g}-beta{self.beta:g}"


    @property
    def family(self):
        return "original" if self.is_original else "scale-shift (paper)"

    def key(self):
        return {"alpha": self.alpha, "beta": self.beta}

    def thresholds(self, eps):
        """The L∞ thresholds success is decided at, ascending: (α·ε, ε), or (ε,) when α = 1."""
        return (eps,) if self.alpha >= 1.0 else (self.alpha * eps, eps)

    def __call__(self, x_pm):
        """x' = α·x + β in float64, cast back to the input dtype (edges land exactly on ±0.5)."""
        return blindspot(np.asarray(x_pm), self.alpha, self.beta)


ORIGINAL = BlindSpot()


@dataclass(frozen=True)
class Shift:
    """One family at one strength; ``shift(x_pm)`` returns the shifted [N, d] images."""
    family: str
    strength: float

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise BsattackError(f"unknown shift family '{self.family}' (known: "
                                f"{', '.join(FAMILIES)})")
        object.__setattr__(self, "strength", float(self.strength))
        _check_strength(self.family, self.strength)

    @property
    def name(self):
        return f"{self.family}{self.strength:g}"

    is_original = False

    def key(self):
        return {"shift": self.family, "strength": self.strength}

    def thresholds(self, eps):
        """Success is decided at ε only."""
        return (eps,)

    def __call__(self, x_pm):
        x_pm = np.asarray(x_pm)
        side = math.isqrt(x_pm.shape[1]) if x_pm.ndim == 2 else 0
        if x_pm.ndim != 2 or side < 2 or side * side != x_pm.shape[1]:
            raise BsattackError(f"shifts take square single-channel images [N, side²] "
                                f"(got {x_pm.shape})")
        images = x_pm.reshape(-1, side, side)
        out = _APPLY[self.family](images, self.strength).reshape(x_pm.shape)
        if out.size and (out.min() < -0.5 - RANGE_TOLERANCE or out.max() > 0.5 + RANGE_TOLERANCE):
            raise BsattackError(f"shift {self.name} left [-0.5, 0.5] "
                                f"({out.min():.4f}..{out.max():.4f})")
        return np.clip(out, -0.5, 0.5).astype(x_pm.dtype)   # clip removes float rounding only


def cache_key(transform):
    """A transform's part of a cache key: α and β, plus ``transform`` (its ``key()``) for a
    :class:`Shift` (then α = 1, β = 0) — the form caches were keyed by before transforms were
    objects, so existing caches stay valid."""
    if isinstance(transform, BlindSpot):
        return transform.key()
    return {"alpha": 1.0, "beta": 0.0, "transform": transform.key()}


def parse(spec):
    """'family:strength' (e.g. 'rotate:-10', 'blur:0.5', 'invert:1') -> Shift."""
    family, _, value = str(spec).partition(":")
    try:
        strength = float(value)
    except ValueError:
        raise BsattackError(f"shift '{spec}': expected FAMILY:STRENGTH, e.g. rotate:10 "
                            f"(families: {', '.join(FAMILIES)})") from None
    return Shift(family, strength)


DEFAULT_SHIFTS = tuple(Shift(f, s) for f, values in [
    ("gamma", (0.5, 0.75, 1.5, 2.0)),
    ("blur", (0.5, 0.75, 1.0)),
    ("translate-x", (-2, -1, 1, 2)),
    ("translate-y", (-2, -1, 1, 2)),
    ("rotate", (-15, -10, -5, 5, 10, 15)),
    ("invert", (1,)),
] for s in values)
