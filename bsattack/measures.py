"""Eq. 2 distances and Eq. 3 divergences of one checkpoint's embeddings, cached next to them.

The results live in a small HDF5 file beside the embedding cache, under the same identity
(checkpoint content hash, data fingerprint), one group per setting, so figures and tables
can be redrawn without recomputing, and an interrupted K-L run resumes at the next class.
"""
import numpy as np

from bsattack import distance, divergence, paths
from bsattack.embed import group_name
from bsattack.h5store import H5Store
from bsattack.shifts import ORIGINAL, cache_key


def results_store(emb):
    """The derived-results cache of an :class:`bsattack.embed.Embeddings` (same identity)."""
    return H5Store(paths.cache_file(emb.cache_dir, "measures", emb.spec.name, emb.file_key),
                   emb.file_key, emb.store.echo)


def test_distances(emb, transform=ORIGINAL, k=distance.DEFAULT_K, p=distance.DEFAULT_P,
                   budget_mb=distance.DEFAULT_BUDGET_MB):
    """D (Eq. 2) of every test image, after ``transform`` (a :mod:`bsattack.shifts`
    transform), to the training set, [N] float64."""
    store = results_store(emb)
    name = f"distance-k{k}-p{p:g}/{group_name('test', transform)}"
    key = {"k": k, "p": float(p), **cache_key(transform)}
    n = len(emb.split.test_x)
    cached = store.get(name, key, {"distance": (n,)})
    if cached is not None:
        return cached["distance"]
    train, test = emb.get("train"), emb.get("test", transform)
    with emb.progress(n, f"k-NN distance {name}") as bar:
        found = distance.nearest(test, train, k, p, budget_mb, progress=bar)
    store.put(name, {"distance": found.mean, "neighbours": found.indices}, key)
    return found.mean


def kl_group(per_class, seed, method, grid, perplexity):
    """Cache folder of one K-L setting (so that several settings coexist)."""
    return (f"kl/{method}-perplexity{perplexity:g}-grid{grid}-"
            f"{'all' if per_class is None else per_class}-seed{seed}")


def class_divergences(emb, per_class=None, seed=0, method="opentsne", grid=divergence.DEFAULT_GRID,
                      perplexity=divergence.DEFAULT_PERPLEXITY, echo=print):
    """Eq. 3 for every class (a list of :class:`bsattack.divergence.ClassKL`); the train and
    test points of a class are subsampled to at most ``per_class`` each (None: all)."""
    store = results_store(emb)
    train_y, test_y = emb.split.train_y, emb.split.test_y
    train, test = emb.get("train"), emb.get("test")
    prefix = kl_group(per_class, seed, method, grid, perplexity)
    results = []
    for label in np.unique(train_y):
        rng = np.random.default_rng([seed, int(label)])
        tr = divergence.subsample(np.flatnonzero(train_y == label), per_class, rng)
        te = divergence.subsample(np.flatnonzero(test_y == label), per_class, rng)
        name = f"{prefix}/class{int(label)}"
        key = {"per_class": per_class, "seed": seed, "method": method, "grid": grid,
               "perplexity": float(perplexity), "n_train": len(tr), "n_test": len(te)}
        cached = store.get(name, key, {"kl": (2,)})
        if cached is None:
            echo(f"class {label}: t-SNE of {len(tr)} train + {len(te)} test embeddings ({method})")
            found = divergence.class_kl(train[tr], test[te], label, seed, method, grid, perplexity)
            store.put(name, {"kl": [found.kl.value, found.kl.coarse]}, key)
        else:
            found = divergence.ClassKL(int(label), len(tr), len(te),
                                       divergence.GridKL(*map(float, cached["kl"])))
        echo(f"class {label}: K-L {found.kl.value:.4f} (grid/2: {found.kl.coarse:.4f}"
             f"{'' if found.kl.converged else ', NOT converged: raise --grid'})")
        results.append(found)
    return results
