"""Eq. 3 of the paper: the K-L divergence between the training and the test distribution,

    D_KL(p_train || p_test) = integral of p_train(x) log(p_train(x) / p_test(x)) dx,

estimated per class as in §4.2: the train and test embeddings of the class are projected
*together* to 2-D with t-SNE, a Gaussian KDE (Scott's rule) is fitted to each projected set,
and the integrand is integrated numerically (trapezoid rule) on a regular grid over the box
bounding all projected points.  Table 1 reports the average over the classes.

The grid has ``grid`` intervals per axis (even); the same integral on every other grid point
(``grid / 2`` intervals) comes for free and serves as the convergence check.
"""
from dataclasses import dataclass

import numpy as np

from bsattack.errors import BsattackError

DEFAULT_GRID = 200          # intervals per axis of the integration grid
DEFAULT_PERPLEXITY = 30.0   # t-SNE default of sklearn and openTSNE (the paper gives none)
CONVERGENCE_TOL = 0.02      # |K-L(grid) - K-L(grid/2)| allowed, relative (absolute below 0.01)
TSNE_METHODS = ("opentsne", "sklearn")


@dataclass
class GridKL:
    """K-L estimate on the full grid and on the grid with half as many intervals."""
    value: float
    coarse: float

    @property
    def converged(self):
        return abs(self.value - self.coarse) <= CONVERGENCE_TOL * max(abs(self.value), 0.5)


def kde_kl(train_points, test_points, grid=DEFAULT_GRID):
    """K-L(p_train || p_test) of Gaussian KDEs (Scott's rule) of two [N, 2] point sets,
    integrated over the box bounding both."""
    if grid < 2 or grid % 2:
        raise BsattackError(f"the K-L grid needs an even number of intervals >= 2, got {grid}")
    train_points, test_points = np.asarray(train_points, float), np.asarray(test_points, float)
    if min(len(train_points), len(test_points)) < 3:
        raise BsattackError("a KDE needs at least 3 points on each side")
    both = np.concatenate([train_points, test_points])
    lo, hi = both.min(axis=0), both.max(axis=0)
    xs, ys = np.linspace(lo[0], hi[0], grid + 1), np.linspace(lo[1], hi[1], grid + 1)
    mesh = np.stack(np.meshgrid(xs, ys, indexing="ij")).reshape(2, -1)
    log_p, log_q = kde_logpdf(train_points, mesh.T), kde_logpdf(test_points, mesh.T)
    integrand = (np.exp(log_p) * (log_p - log_q)).reshape(grid + 1, grid + 1)

    def integrate(values, x, y):
        from scipy.integrate import trapezoid   # here: the CLI imports this module for --help
        return float(trapezoid(trapezoid(values, y, axis=1), x))
    return GridKL(integrate(integrand, xs, ys), integrate(integrand[::2, ::2], xs[::2], ys[::2]))


def kde_logpdf(data, points, block=64):
    """log density at ``points`` [M, d] of scipy's ``gaussian_kde(data.T, "scott")``: equal to
    its ``logpdf`` (tests/library/test_divergence.py) but vectorised over blocks of ``block``
    points, several times faster on the K-L grids (bench/distance.py)."""
    from scipy.linalg import solve_triangular
    from scipy.stats import gaussian_kde
    kde = gaussian_kde(np.asarray(data, float).T, bw_method="scott")
    chol = np.linalg.cholesky(kde.covariance)
    white_data = solve_triangular(chol, kde.dataset, lower=True)                # [d, n]
    white_points = solve_triangular(chol, np.asarray(points, float).T, lower=True).T
    norm = np.log(kde.n) + 0.5 * kde.d * np.log(2 * np.pi) + np.log(np.diag(chol)).sum()
    out = np.empty(len(white_points))
    for s in range(0, len(white_points), block):
        part = white_points[s:s + block]
        sq = np.zeros((len(part), kde.n))
        for axis in range(kde.d):
            diff = part[:, axis:axis + 1] - white_data[axis]
            diff *= diff
            sq += diff
        sq *= -0.5
        top = sq.max(axis=1, keepdims=True)
        sq -= top
        np.exp(sq, out=sq)
        out[s:s + block] = np.log(sq.sum(axis=1)) + top[:, 0]
    return out - norm


def tsne_2d(points, seed=0, method="opentsne", perplexity=DEFAULT_PERPLEXITY, n_jobs=1):
    """2-D t-SNE of ``points`` (PCA initialisation, fixed seed).  Both libraries minimise the
    same objective (perplexity, early exaggeration 12); openTSNE's FFT gradients are faster
    on thousands of points (bench/distance.py)."""
    from threadpoolctl import threadpool_limits
    points = np.asarray(points, np.float32)
    perplexity = min(perplexity, (len(points) - 1) / 3.0)
    if method not in TSNE_METHODS:
        raise BsattackError(f"unknown t-SNE method '{method}' (known: {', '.join(TSNE_METHODS)})")
    # OpenMP/BLAS pools capped at n_jobs: on a busy machine spinning threads slow t-SNE 20x
    with threadpool_limits(limits=n_jobs):
        if method == "opentsne":
            from openTSNE import TSNE
            return np.asarray(TSNE(perplexity=perplexity, initialization="pca", random_state=seed,
                                   n_jobs=n_jobs, verbose=False).fit(points))
        from sklearn.manifold import TSNE
        return TSNE(perplexity=perplexity, init="pca", random_state=seed,
                    n_jobs=n_jobs).fit_transform(points)


@dataclass
class ClassKL:
    label: int
    n_train: int
    n_test: int
    kl: GridKL


def subsample(indices, limit, rng):
    """At most ``limit`` of ``indices`` (all when ``limit`` is None), in their original order."""
    if limit is None or len(indices) <= limit:
        return indices
    return np.sort(rng.choice(indices, limit, replace=False))


def class_kl(train_emb, test_emb, label, seed=0, method="opentsne", grid=DEFAULT_GRID,
             perplexity=DEFAULT_PERPLEXITY):
    """Eq. 3 for one class: joint t-SNE of its train and test embeddings, then :func:`kde_kl`."""
    projected = tsne_2d(np.concatenate([train_emb, test_emb]), seed, method, perplexity)
    kl = kde_kl(projected[:len(train_emb)], projected[len(train_emb):], grid)
    return ClassKL(int(label), len(train_emb), len(test_emb), kl)


def average_kl(results):
    """Table 1's "avg K-L": the mean over the classes."""
    return float(np.mean([r.kl.value for r in results]))
