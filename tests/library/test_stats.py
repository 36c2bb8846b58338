"""The report's uncertainty: each interval and test against a closed form, a published worked
example, scipy, or a simulation."""
import math

import numpy as np
import pytest
from scipy.stats import binom, spearmanr
from sklearn.metrics import roc_auc_score

from bsattack import stats


def wilson_closed_form(k, n, z=1.959963984540054):
    p = k / n
    centre = (2 * k + z * z) / (2 * (n + z * z))
    half = z * math.sqrt(z * z + 4 * k * (1 - p)) / (2 * (n + z * z))
    return centre - half, centre + half


@pytest.mark.parametrize("k,n", [(0, 10), (1, 10), (81, 263), (1943, 2000), (2000, 2000)])
def test_wilson_is_the_score_interval(k, n):
    interval = stats.wilson(k, n)
    low, high = wilson_closed_form(k, n)
    assert interval.value == pytest.approx(k / n)
    assert interval.low == pytest.approx(max(0.0, low), abs=1e-12)
    assert interval.high == pytest.approx(min(1.0, high), abs=1e-12)


def test_wilson_matches_newcombes_worked_example():
    # Newcombe (1998), 81/263: 0.2553 to 0.3662
    interval = stats.wilson(81, 263)
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.2553, 0.3662)


def test_wilson_refuses_impossible_counts():
    with pytest.raises(ValueError):
        stats.wilson(5, 4)
    assert math.isnan(stats.wilson(0, 0).value)


def test_newcombe_difference_matches_the_worked_example():
    # Newcombe (1998), method 10: 56/70 - 48/80 = 0.2, interval 0.0524 to 0.3339
    d = stats.newcombe(56, 70, 48, 80)
    assert d.value == pytest.approx(0.2)
    assert (round(d.low, 4), round(d.high, 4)) == (0.0524, 0.3339)


def test_mcnemar_is_the_exact_binomial_on_the_discordant_pairs():
    rng = np.random.default_rng(0)
    a, b = rng.random(300) < 0.5, rng.random(300) < 0.4
    test = stats.mcnemar(a, b)
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    assert (test.only_a, test.only_b) == (only_a, only_b)
    m = only_a + only_b
    brute = sum(binom.pmf(i, m, 0.5) for i in range(m + 1)
                if binom.pmf(i, m, 0.5) <= binom.pmf(only_a, m, 0.5) * (1 + 1e-7))
    assert test.p_value == pytest.approx(min(1.0, brute))
    assert stats.mcnemar_counts(0, 0).p_value == 1.0
    assert stats.mcnemar_counts(0, 10).p_value == pytest.approx(2 * 0.5 ** 10)


def test_spearman_is_scipys_with_the_fisher_interval():
    rng = np.random.default_rng(1)
    x = rng.normal(size=200)
    y = (x + rng.normal(size=200) > 0.5).astype(float)
    result = stats.spearman(x, y)
    rho, p = spearmanr(x, y)
    assert result.value == pytest.approx(rho) and result.p_value == pytest.approx(p)
    z, half = math.atanh(rho), 1.959963984540054 * math.sqrt(1.06 / 197)
    assert result.low == pytest.approx(math.tanh(z - half))
    assert result.high == pytest.approx(math.tanh(z + half))
    assert math.isnan(stats.spearman(x, np.zeros(200)).value)
    assert math.isnan(stats.spearman_interval(None, 100).low)


def test_auroc_standard_error_matches_simulation():
    """Hanley-McNeil's SE is the spread of the AUROC over repeated samples (binormal, A≈0.76)."""
    rng = np.random.default_rng(2)
    n1, n0 = 60, 80
    areas = []
    for _ in range(400):
        pos, neg = rng.normal(1.0, 1, n1), rng.normal(0.0, 1, n0)
        areas.append(roc_auc_score(np.r_[np.ones(n1), np.zeros(n0)], np.r_[pos, neg]))
    area = float(np.mean(areas))
    interval = stats.auroc_interval(area, n1, n0)
    se = (interval.high - interval.low) / (2 * 1.959963984540054)
    assert se == pytest.approx(np.std(areas), rel=0.15)
    assert interval.low < area < interval.high
