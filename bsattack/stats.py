"""The uncertainty of every number the report states, 95% by default.

- :func:`wilson`: a proportion k/n with Wilson's score interval
  (p̂ + z²/2n ± z·sqrt(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n).
- :func:`newcombe`: the difference p₁ − p₂ of two independent proportions with Newcombe's
  hybrid score interval (his method 10, from the two Wilson intervals).
- :func:`mcnemar`: two attacks on the same images: the discordant counts (only A, only B) and
  the exact two-sided McNemar p-value (binomial test of only A among the discordant, p = ½).
- :func:`spearman`: Spearman's ρ with its p-value (scipy) and a Fisher-z interval with
  Bonett & Wright's variance 1.06 / (n − 3).
- :func:`auroc`: the area under the ROC curve with Hanley & McNeil's (1982) standard error.
"""
import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, norm, spearmanr

LEVEL = 0.95


def _z(level):
    return float(norm.ppf(0.5 + level / 2))


@dataclass(frozen=True)
class Interval:
    """An estimate and its interval [low, high]."""
    value: float
    low: float
    high: float

    def excludes(self, null):
        return self.low > null or self.high < null


@dataclass(frozen=True)
class Proportion(Interval):
    k: int = 0
    n: int = 0


def wilson(k, n, level=LEVEL):
    """k successes of n with Wilson's score interval (NaN for n = 0)."""
    k, n = int(k), int(n)
    if n < 0 or not 0 <= k <= max(n, 0):
        raise ValueError(f"need 0 <= k <= n (got k={k}, n={n})")
    if n == 0:
        return Proportion(math.nan, math.nan, math.nan, k, n)
    z, p = _z(level), k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Proportion(p, max(0.0, centre - half), min(1.0, centre + half), k, n)


def newcombe(k1, n1, k2, n2, level=LEVEL):
    """p₁ − p₂ (k1/n1 − k2/n2, independent samples) with Newcombe's hybrid score interval."""
    a, b = wilson(k1, n1, level), wilson(k2, n2, level)
    d = a.value - b.value
    low = d - math.sqrt((a.value - a.low) ** 2 + (b.high - b.value) ** 2)
    high = d + math.sqrt((a.high - a.value) ** 2 + (b.value - b.low) ** 2)
    return Interval(d, low, high)


@dataclass(frozen=True)
class Paired:
    """Two attacks on the same images: how many only A fooled, only B, and McNemar's exact p."""
    only_a: int
    only_b: int
    p_value: float


def mcnemar(success_a, success_b):
    """Exact McNemar test of two boolean arrays over the same images."""
    a, b = np.asarray(success_a, bool), np.asarray(success_b, bool)
    if a.shape != b.shape:
        raise ValueError("the two attacks must be compared on the same images")
    return mcnemar_counts(int((a & ~b).sum()), int((b & ~a).sum()))


def mcnemar_counts(only_a, only_b):
    """McNemar's exact two-sided p from the discordant counts (1 when there are none)."""
    discordant = only_a + only_b
    p = binomtest(only_a, discordant, 0.5).pvalue if discordant else 1.0
    return Paired(int(only_a), int(only_b), float(p))


@dataclass(frozen=True)
class Correlation(Interval):
    p_value: float = math.nan
    n: int = 0


def spearman(x, y, level=LEVEL):
    """Spearman's ρ of x and y, its p-value and a Fisher-z interval (var 1.06/(n−3))."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n < 4 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return Correlation(math.nan, math.nan, math.nan, math.nan, n)
    rho, p = spearmanr(x, y)
    return spearman_interval(float(rho), n, float(p), level)


def spearman_interval(rho, n, p_value=math.nan, level=LEVEL):
    """The Fisher-z interval of a Spearman ρ measured on n pairs (None, as strict JSON stores
    NaN, counts as NaN)."""
    rho = math.nan if rho is None else float(rho)
    p_value = math.nan if p_value is None else float(p_value)
    if not np.isfinite(rho) or n < 4:
        return Correlation(rho, math.nan, math.nan, p_value, n)
    z = math.atanh(min(max(rho, -0.999999), 0.999999))
    half = _z(level) * math.sqrt(1.06 / (n - 3))
    return Correlation(rho, math.tanh(z - half), math.tanh(z + half), p_value, n)


@dataclass(frozen=True)
class Area(Interval):
    n_positive: int = 0
    n_negative: int = 0


def auroc_interval(area, n_positive, n_negative, level=LEVEL):
    """Hanley & McNeil's interval of an AUROC from ``n_positive`` and ``n_negative`` scores:
    SE² = (A(1−A) + (n₊−1)(Q₁−A²) + (n₋−1)(Q₂−A²)) / (n₊n₋), Q₁ = A/(2−A), Q₂ = 2A²/(1+A)."""
    a, n1, n2 = (math.nan if area is None else float(area)), int(n_positive), int(n_negative)
    if n1 < 1 or n2 < 1 or not np.isfinite(a):
        return Area(a, math.nan, math.nan, n1, n2)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = math.sqrt(max(0.0, a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a))
                   / (n1 * n2))
    half = _z(level) * se
    return Area(a, max(0.0, a - half), min(1.0, a + half), n1, n2)
