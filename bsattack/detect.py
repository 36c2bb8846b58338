"""Detectability of a test-set shift by the distance to the training set (Eq. 2), quantified:
the AUROC of D(x, X_train) as a score that separates shifted test images (positives) from the
original ones (negatives).  0.5: the shift is invisible to D; 1: D flags every shifted image as
farther than every original one; below 0.5: shifted images sit *closer* to the training set.
The paper's Figure 5 only eyeballs the two histograms (MNIST α=0.7; Fashion-MNIST α=0.9).

Embeddings come from :class:`bsattack.embed.Embeddings` (the train set and the original test
set from the shared cache; the shifted first-``n`` test images from a small cache of their own
under ``cache_dir``), distances from :func:`bsattack.distance.knn_distance`.

Public API: ``auroc(original, shifted)``, ``distance_aurocs(spec, checkpoint, split, settings,
n, ...)`` -> {name: AUROC}.
"""
import dataclasses
import os

import numpy as np
from sklearn.metrics import roc_auc_score

from bsattack.distance import DEFAULT_K, knn_distance
from bsattack.embed import Embeddings
from bsattack.errors import BsattackError
from bsattack.paths import CACHE_DIR
from bsattack.progress import silent


def auroc(original, shifted):
    """AUROC of a score that should be larger on ``shifted`` than on ``original``."""
    original, shifted = np.asarray(original, float), np.asarray(shifted, float)
    if not len(original) or not len(shifted):
        raise BsattackError("AUROC needs at least one original and one shifted score")
    labels = np.r_[np.zeros(len(original)), np.ones(len(shifted))]
    return float(roc_auc_score(labels, np.r_[original, shifted]))


def distance_aurocs(spec, checkpoint, split, settings, n=1000, k=DEFAULT_K, cache_dir=None,
                    echo=print, progress=silent):
    """{setting name: AUROC of D (Eq. 2, extractor ``checkpoint``) for shifted vs original}
    on the first ``n`` test images, for every non-original setting (a :mod:`bsattack.shifts`
    transform) in ``settings``."""
    if not 1 <= n <= len(split.test_x):
        raise BsattackError(f"--n-detect must be between 1 and {len(split.test_x)} (got {n})")
    full = Embeddings(spec, checkpoint, split, cache_dir, echo=echo, progress=progress)
    train = full.get("train")
    original = knn_distance(full.get("test")[:n], train, k=k)
    head = dataclasses.replace(split, test_x=split.test_x[:n], test_y=split.test_y[:n])
    small = Embeddings(spec, checkpoint, head,
                       os.path.join(cache_dir or CACHE_DIR, "beyond"), echo=echo, progress=progress)
    result = {}
    for s in settings:
        if s.is_original:
            continue
        shifted = knn_distance(small.get("test", s), train, k=k)
        result[s.name] = auroc(original, shifted)
        echo(f"{spec.name} {os.path.basename(checkpoint.rstrip(os.sep))} {s.name}: "
             f"AUROC {result[s.name]:.3f}")
    return result
