"""Eq. 3 K-L estimator: closed-form Gaussians, identical samples, scipy's KDE, t-SNE plumbing."""
import numpy as np
import pytest
from scipy.stats import gaussian_kde

from bsattack import divergence
from bsattack.datasets import get_spec
from bsattack.errors import BsattackError

MEAN0, COV0 = np.zeros(2), np.eye(2)
MEAN1, COV1 = np.array([1.0, 0.5]), np.array([[1.5, 0.3], [0.3, 0.8]])


def gaussian_kl(m0, s0, m1, s1):
    """Closed-form K-L(N(m0, s0) || N(m1, s1))."""
    inv = np.linalg.inv(s1)
    d = m1 - m0
    return 0.5 * (np.trace(inv @ s0) + d @ inv @ d - len(m0)
                  + np.log(np.linalg.det(s1) / np.linalg.det(s0)))


def test_matches_closed_form_for_two_gaussians():
    rng = np.random.default_rng(0)
    train = rng.multivariate_normal(MEAN0, COV0, 6000)
    test = rng.multivariate_normal(MEAN1, COV1, 6000)
    result = divergence.kde_kl(train, test, grid=100)
    truth = gaussian_kl(MEAN0, COV0, MEAN1, COV1)      # 0.482
    assert abs(result.value - truth) < 0.05 * truth
    assert result.converged


def test_about_zero_for_the_same_distribution():
    rng = np.random.default_rng(1)
    train = rng.multivariate_normal(MEAN1, COV1, 6000)
    assert abs(divergence.kde_kl(train, train, grid=60).value) < 1e-12
    other = rng.multivariate_normal(MEAN1, COV1, 6000)
    # two independent samples: only the KDEs' sampling noise remains (~0.013; shifted: 0.48)
    assert abs(divergence.kde_kl(train, other, grid=60).value) < 0.03


def test_coarse_grid_is_flagged_unconverged():
    rng = np.random.default_rng(2)
    train, test = rng.standard_normal((500, 2)), rng.standard_normal((500, 2)) + 2
    assert not divergence.kde_kl(train, test, grid=4).converged
    assert divergence.kde_kl(train, test, grid=80).converged


def test_kde_logpdf_equals_scipy():
    rng = np.random.default_rng(3)
    data = rng.standard_normal((700, 2)) @ np.array([[1.0, 0.4], [0.0, 0.3]])
    points = rng.standard_normal((300, 2)) * 4          # includes far-away points
    want = gaussian_kde(data.T, bw_method="scott").logpdf(points.T)
    np.testing.assert_allclose(divergence.kde_logpdf(data, points, block=7), want, rtol=1e-10)


@pytest.mark.parametrize("method", divergence.TSNE_METHODS)
def test_class_kl_separates_shifted_test_sets(method):
    rng = np.random.default_rng(4)
    train = rng.standard_normal((150, 20)).astype(np.float32)
    same = rng.standard_normal((60, 20)).astype(np.float32)
    far = same + 3.0
    near_kl = divergence.class_kl(train, same, 0, method=method, grid=40)
    far_kl = divergence.class_kl(train, far, 0, method=method, grid=40)
    assert (near_kl.n_train, near_kl.n_test) == (150, 60)
    assert far_kl.kl.value > near_kl.kl.value + 0.5
    assert divergence.average_kl([near_kl, far_kl]) == pytest.approx(
        (near_kl.kl.value + far_kl.kl.value) / 2)


def test_bad_settings_are_one_line_errors():
    pts = np.random.default_rng(5).standard_normal((20, 2))
    with pytest.raises(BsattackError, match="even"):
        divergence.kde_kl(pts, pts, grid=5)
    with pytest.raises(BsattackError, match="t-SNE method"):
        divergence.tsne_2d(pts, method="umap")


def test_class_divergences_are_cached_per_setting(small_checkpoint, small_split, tmp_path,
                                                  monkeypatch):
    from bsattack import measures
    from bsattack.embed import Embeddings
    emb = Embeddings(get_spec("mnist"), small_checkpoint("mnist"), small_split("mnist"), tmp_path,
                     echo=lambda m: None)
    quiet = {"grid": 10, "echo": lambda m: None}
    first = measures.class_divergences(emb, per_class=15, **quiet)
    other = measures.class_divergences(emb, per_class=25, **quiet)
    assert [r.n_train for r in first] == [15] * 10 and [r.n_test for r in other] == [25] * 10
    monkeypatch.setattr(divergence, "class_kl", lambda *a, **k: pytest.fail("recomputed"))
    for per_class, want in ((15, first), (25, other)):
        again = measures.class_divergences(emb, per_class=per_class, **quiet)
        assert [r.kl for r in again] == [r.kl for r in want]
