"""Benchmark of the Eq. 2 k-NN distance and the Eq. 3 K-L steps on the full-size problem.

k-NN: random 1024-d ReLU-like embeddings (10,000 test x 55,000 train, k=5), timed against
  - one float32 matrix product test @ train.T of the same size (the BLAS ceiling),
  - sklearn NearestNeighbors(algorithm="brute"),
  - faiss-cpu IndexFlatL2 (exact, squared float32 distances),
all in the same run; every timing is the best of --repeats, the methods interleaved.
K-L, per class: t-SNE (openTSNE and sklearn) of one class-sized set (5,500 train + 1,000 test
points, 1024-d) and the KDE grid evaluation (bsattack.divergence.kde_logpdf vs scipy's
gaussian_kde.logpdf), with the K-L each t-SNE gives.

    python bench/distance.py [--test 10000 --train 55000 --repeats 2 --skip-tsne]
"""
import os
import sys
import time

import click
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bsattack import distance, divergence  # noqa: E402


def relu_like(rng, n, d):
    return np.maximum(rng.standard_normal((n, d), dtype=np.float32), 0)


def best_of(repeats, func):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return min(times), result


def timed(func):
    """(wall seconds, CPU seconds of all threads, result): on a shared machine the CPU time
    is the load-independent measure of the work done."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = func()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def sklearn_knn(test, train, k):
    from sklearn.neighbors import NearestNeighbors
    return NearestNeighbors(n_neighbors=k, algorithm="brute").fit(train).kneighbors(test)[0]


def faiss_knn(test, train, k):
    import faiss
    index = faiss.IndexFlatL2(train.shape[1])
    index.add(train)
    return np.sqrt(np.maximum(index.search(test, k)[0], 0))


def bench_knn(n_test, n_train, dim, k, repeats):
    rng = np.random.default_rng(0)
    test, train = relu_like(rng, n_test, dim), relu_like(rng, n_train, dim)
    methods = {
        "float32 matmul test @ train.T": lambda: test @ train.T,
        "bsattack.distance (exact)": lambda: distance.nearest(test, train, k).distances,
        "sklearn NearestNeighbors brute": lambda: sklearn_knn(test, train, k),
        "faiss IndexFlatL2": lambda: faiss_knn(test, train, k),
    }
    times = {name: [] for name in methods}
    cpu = {name: [] for name in methods}
    results = {}
    for _ in range(repeats):                     # interleaved: load changes hit all alike
        for name, func in methods.items():
            elapsed, used, value = timed(func)
            times[name].append(elapsed)
            cpu[name].append(used)
            if name != "float32 matmul test @ train.T":
                results[name] = value
            del value
    ceiling = min(times["float32 matmul test @ train.T"])
    cpu_ceiling = min(cpu["float32 matmul test @ train.T"])
    print(f"k-NN, {n_test} test x {n_train} train, d={dim}, k={k}, best of {repeats} "
          f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})")
    print(f"  {'method':34s} {'wall s':>8s} {'/ matmul':>9s} {'CPU s':>8s} {'/ matmul':>9s}"
          f"  max |D - ours|")
    ours = results["bsattack.distance (exact)"].mean(axis=1)
    for name in methods:
        best, best_cpu = min(times[name]), min(cpu[name])
        diff = (f"{np.abs(results[name].mean(axis=1) - ours).max():.2e}"
                if name in results else "")
        print(f"  {name:34s} {best:8.2f} {best / ceiling:9.2f} {best_cpu:8.2f} "
              f"{best_cpu / cpu_ceiling:9.2f}  {diff}")
    for unit, table in (("wall", times), ("CPU", cpu)):
        mine = min(table["bsattack.distance (exact)"])
        brute, flat = min(table["sklearn NearestNeighbors brute"]), min(table["faiss IndexFlatL2"])
        print(f"  {unit}: ours vs sklearn brute {brute / mine:.2f}x faster; ours vs faiss "
              f"{flat / mine:.2f}x faster")


def bench_class_kl(n_train, n_test, dim, grid):
    rng = np.random.default_rng(1)
    centre = relu_like(rng, 1, dim)
    train = np.maximum(centre + 0.5 * rng.standard_normal((n_train, dim), dtype=np.float32), 0)
    test = np.maximum(centre + 0.5 * rng.standard_normal((n_test, dim), dtype=np.float32), 0)
    print(f"K-L of one class: {n_train} train + {n_test} test points, d={dim}, grid {grid}")
    projected = None
    for method in divergence.TSNE_METHODS:
        start = time.perf_counter()
        points = divergence.tsne_2d(np.concatenate([train, test]), 0, method)
        elapsed = time.perf_counter() - start
        kl = divergence.kde_kl(points[:n_train], points[n_train:], grid)
        print(f"  t-SNE {method:9s} {elapsed:7.1f} s   K-L {kl.value:.4f} (grid/2 {kl.coarse:.4f})")
        projected = points if projected is None else projected
    from scipy.stats import gaussian_kde
    xs = np.linspace(projected.min(0), projected.max(0), grid + 1)
    mesh = np.stack(np.meshgrid(xs[:, 0], xs[:, 1], indexing="ij")).reshape(2, -1).T
    ours, ref = (best_of(1, lambda: divergence.kde_logpdf(projected[:n_train], mesh)),
                 best_of(1, lambda: gaussian_kde(projected[:n_train].T).logpdf(mesh.T)))
    print(f"  KDE on the {grid + 1}^2 grid ({n_train} points): ours {ours[0]:.2f} s, scipy "
          f"logpdf {ref[0]:.2f} s ({ref[0] / ours[0]:.1f}x), max |diff| "
          f"{np.abs(ours[1] - ref[1]).max():.1e}")
    start = time.perf_counter()
    divergence.kde_kl(projected[:n_train], projected[n_train:], grid)
    print(f"  kde_kl (both KDEs + integration): {time.perf_counter() - start:.2f} s")


@click.command()
@click.option("--test", "n_test", default=10000, show_default=True)
@click.option("--train", "n_train", default=55000, show_default=True)
@click.option("--dim", default=1024, show_default=True)
@click.option("--k", default=5, show_default=True)
@click.option("--repeats", default=2, show_default=True)
@click.option("--class-train", default=5500, show_default=True)
@click.option("--class-test", default=1000, show_default=True)
@click.option("--grid", default=divergence.DEFAULT_GRID, show_default=True)
@click.option("--skip-tsne", is_flag=True)
def main(n_test, n_train, dim, k, repeats, class_train, class_test, grid, skip_tsne):
    bench_knn(n_test, n_train, dim, k, repeats)
    if not skip_tsne:
        bench_class_kl(class_train, class_test, dim, grid)


if __name__ == "__main__":
    main()
