"""Eq. 2 of the paper: the distance of a test point to the training set,

    D(x, X_train) = (1/k) * sum over the k nearest training points x_j of ||h(x) - h(x_j)||_p,

with neighbours found in the embedding space of h (default k=5, p=2).  Exact, blocked so the
working memory stays within a stated budget.

For p=2 the candidates come from one float32 matrix product per block of test rows
(score_j = ||x_j||^2 - 2 t.x_j, the BLAS part), the smallest scores are picked with a
chunk-minimum pre-selection (far cheaper than a full ``argpartition`` over 55,000 columns),
and the distances of the candidates are then recomputed exactly in float64.  A row is
*certified* when no non-candidate can beat its k-th exact distance given the worst-case
float32 rounding bound of the product; an uncertified row (rare ties) is recomputed in
float64 against the whole training set.  bench/distance.py times this against sklearn and
faiss; tests/library/test_distance.py checks it against sklearn's NearestNeighbors.
"""
from dataclasses import dataclass

import numpy as np

from bsattack.errors import BsattackError

DEFAULT_K = 5
DEFAULT_P = 2.0
DEFAULT_BUDGET_MB = 512    # working memory beyond the two input arrays (see nearest)
BLOCK_SHARE = 1.5          # the [rows, n_train] block gets budget / 1.5; the rest: gathers
CHUNK = 1024               # columns per chunk of the chunk-minimum pre-selection
_U32 = float(np.finfo(np.float32).eps) / 2   # unit round-off of float32


@dataclass
class Neighbours:
    distances: np.ndarray   # [N, k] float64, ascending
    indices: np.ndarray     # [N, k] int64 rows of the training set

    @property
    def mean(self):
        """D of Eq. 2 for each test point."""
        return self.distances.mean(axis=1)


def knn_distance(test, train, k=DEFAULT_K, p=DEFAULT_P, budget_mb=DEFAULT_BUDGET_MB, progress=None):
    """D(x, X_train) of Eq. 2 for every row of ``test`` ([N] float64)."""
    return nearest(test, train, k, p, budget_mb, progress).mean


def nearest(test, train, k=DEFAULT_K, p=DEFAULT_P, budget_mb=DEFAULT_BUDGET_MB, progress=None):
    """The k nearest rows of ``train`` to each row of ``test`` in the lp norm, exactly.

    Test rows are processed in blocks whose [rows, n_train] score array takes 2/3 of
    ``budget_mb``; the candidate gathers of a block (about 2k chunks of 1,024 scores per row)
    and the float64 refinement stay within the remaining third for k <= 10 on 55,000 training
    points.  ``progress`` (optional) gets ``update(rows)`` after each block."""
    test, train = _check(test, train, k, p)
    row_bytes = (4 if p == 2 else 8) * len(train)
    block = min(len(test), max(1, int(budget_mb * 2**20) // int(BLOCK_SHARE * row_bytes)))
    if p == 2:
        train_sq = np.einsum("ij,ij->i", train, train, dtype=np.float64)
        buffer = np.empty((block, len(train)), np.float32)   # reused: no page faults per block
        search = lambda part: _block_l2(part, train, k, train_sq, buffer[:len(part)])  # noqa: E731
    else:
        train64 = train.astype(np.float64)   # cdist works in float64; convert once
        search = lambda part: _block_lp(part, train64, k, p)  # noqa: E731
    dist, idx = [], []
    for start in range(0, len(test), block):
        part = test[start:start + block]
        d, i = search(part)
        dist.append(d)
        idx.append(i)
        if progress is not None:
            progress.update(len(part))
    return Neighbours(np.concatenate(dist), np.concatenate(idx))


def _check(test, train, k, p):
    test = np.ascontiguousarray(test, dtype=np.float32)
    train = np.ascontiguousarray(train, dtype=np.float32)
    if test.ndim != 2 or train.ndim != 2 or test.shape[1] != train.shape[1]:
        raise BsattackError(f"k-NN distance needs two [N, d] arrays of the same d, got "
                            f"{test.shape} and {train.shape}")
    if not 1 <= k <= len(train):
        raise BsattackError(f"k={k} must be between 1 and the training set size {len(train)}")
    if not p >= 1:
        raise BsattackError(f"p={p} is not a norm (need p >= 1)")
    if not (np.isfinite(test).all() and np.isfinite(train).all()):
        raise BsattackError("embeddings contain NaN or infinity")
    return test, train


def smallest_columns(scores, count):
    """Column indices of the ``count`` smallest entries of each row of ``scores`` (unordered).

    The ``count``-th smallest chunk minimum bounds the ``count``-th smallest entry from above,
    so only the chunks whose minimum is below it (about ``count`` per row) are searched."""
    rows, cols = scores.shape
    n_chunks = cols // CHUNK
    if n_chunks <= count:    # few columns: argpartition, 256 rows at a time (int64 indices)
        return np.concatenate([np.argpartition(scores[s:s + 256], count - 1, axis=1)[:, :count]
                               for s in range(0, rows, 256)])
    split = n_chunks * CHUNK
    body = scores[:, :split].reshape(rows, n_chunks, CHUNK)
    mins = body.min(axis=2)
    tail = scores[:, split:]
    if tail.shape[1]:
        mins = np.concatenate([mins, tail.min(axis=1, keepdims=True)], axis=1)
    threshold = np.partition(mins, count - 1, axis=1)[:, count - 1]
    hit_rows, hit_chunks = np.nonzero(mins[:, :n_chunks] <= threshold[:, None])
    values = body[hit_rows, hit_chunks]                    # [hits, CHUNK], contiguous gathers
    keep_hit, keep_col = np.nonzero(values <= threshold[hit_rows][:, None])
    cand_rows = hit_rows[keep_hit]
    cand_cols = hit_chunks[keep_hit] * CHUNK + keep_col
    cand_vals = values[keep_hit, keep_col]
    tail_rows, tail_cols = np.nonzero(tail <= threshold[:, None])
    cand_rows = np.concatenate([cand_rows, tail_rows])
    cand_cols = np.concatenate([cand_cols, split + tail_cols])
    cand_vals = np.concatenate([cand_vals, tail[tail_rows, tail_cols]])
    order = np.lexsort((cand_vals, cand_rows))
    first = np.searchsorted(cand_rows[order], np.arange(rows))
    return cand_cols[order][first[:, None] + np.arange(count)]


def _exact_sq(test, train, idx):
    """Exact float64 squared l2 distances from test[i] to train[idx[i, j]]."""
    diff = train[idx].astype(np.float64) - test[:, None, :].astype(np.float64)
    return np.einsum("ijd,ijd->ij", diff, diff)


def _block_l2(test, train, k, train_sq, scores):
    """k nearest in l2 of a block of test rows; ``scores`` is the [rows, n_train] float32
    work array (its only large one)."""
    n_cand = min(len(train), 2 * k)
    np.matmul(test * np.float32(-2.0), train.T, out=scores)     # -2 t.x, one BLAS call
    scores += train_sq.astype(np.float32)
    cand = smallest_columns(scores, n_cand)
    exact = np.empty(cand.shape)
    for s in range(0, len(test), 256):   # bounded float64 gathers
        exact[s:s + 256] = _exact_sq(test[s:s + 256], train, cand[s:s + 256])
    order = np.argsort(exact, axis=1, kind="stable")[:, :k]
    best_sq = np.take_along_axis(exact, order, 1)
    best_idx = np.take_along_axis(cand, order, 1)
    if n_cand < len(train):
        _certify(test, train, scores, cand, best_sq, best_idx, train_sq)
    return np.sqrt(best_sq), best_idx


def _certify(test, train, scores, cand, best_sq, best_idx, train_sq):
    """Recompute (in place, exactly) the rows where float32 rounding could have hidden a
    nearer training point than the k-th found one."""
    d = train.shape[1]
    test_sq = np.einsum("ij,ij->i", test, test, dtype=np.float64)
    max_norm = np.sqrt(train_sq.max())
    bound = 1.01 * (d + 4) * _U32 * (2 * np.sqrt(test_sq) * max_norm + max_norm**2)
    worst_candidate = np.take_along_axis(scores, cand, 1).max(axis=1).astype(np.float64)
    kth_score = best_sq[:, -1] - test_sq
    for row in np.nonzero(worst_candidate - bound < kth_score)[0]:
        pieces = [np.arange(s, min(s + 4096, len(train)))[None] for s in range(0, len(train), 4096)]
        full = np.concatenate([_exact_sq(test[row:row + 1], train, cols)[0] for cols in pieces])
        order = np.argsort(full, kind="stable")[:best_sq.shape[1]]
        best_sq[row], best_idx[row] = full[order], order


def _block_lp(test, train, k, p):
    """k nearest in lp (p != 2) of a block of test rows, by scipy's exact float64 cdist."""
    from scipy.spatial.distance import cdist   # here: the CLI imports this module for --help
    dist = cdist(test, train, "minkowski", p=p)
    idx = smallest_columns(dist, k)
    order = np.argsort(np.take_along_axis(dist, idx, 1), axis=1, kind="stable")
    idx = np.take_along_axis(idx, order, 1)
    return np.take_along_axis(dist, idx, 1), idx
