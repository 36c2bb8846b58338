"""Scale-out of one table on Ray workers: wall time in this process and on 1 and 2 local Ray
workers (same images, same chunks, empty cache each time), where the time goes (worker
start, graph build and restore, chunks, driver writes), and the projected wall time of the
paper-size Tables 2-3 on K workers from the measured per-image cost.

    python bench/scale.py --data-dir ../shared/data --checkpoints ../shared/checkpoints

The projection schedules the paper-size chunks (every setting of both tables, ``--chunk``
images each) in the driver's order on K workers, each chunk costing its setting's measured
seconds per image; the worker start is added once and the driver's cache writes are serial.
It is a simulation beyond this machine: it assumes the K workers are as fast as these.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bsattack.datasets import DATASETS, PAPER_N, PAPER_TABLE_DATASETS  # noqa: E402


def timed_table(spec, checkpoint, split, settings, n, chunk, executor_of):
    """(wall seconds, executor start seconds, results) of one table from an empty cache."""
    from bsattack.experiment import run_table
    began = time.perf_counter()
    executor = executor_of()
    if hasattr(executor, "worker_pids"):
        executor.worker_pids()              # actors up (TensorFlow imported)
    started = time.perf_counter() - began
    with executor, tempfile.TemporaryDirectory() as cache:
        results = run_table(spec, checkpoint, settings, n, split, cache_dir=cache,
                            chunk_size=chunk, echo=lambda *_: None, executor=executor)
    return time.perf_counter() - began, started, results


def write_seconds(n_images, dim, repeats=5):
    """Seconds the driver takes to cache one chunk of ``n_images`` records."""
    from bsattack.h5store import H5Store
    part = {"prediction": np.zeros(n_images, np.int64), "adv_prediction": np.zeros(n_images),
            "linf": np.zeros(n_images), "found_by": np.zeros(n_images, np.int64),
            "adversarial": np.random.default_rng(0).random((n_images, dim), np.float32),
            "grad_evals": np.zeros(n_images, np.int64)}
    with tempfile.TemporaryDirectory() as folder:
        store = H5Store(os.path.join(folder, "c.h5"), {"bench": 1}, echo=lambda *_: None)
        began = time.perf_counter()
        for i in range(repeats):
            store.put(f"chunk_{i}", part, {"i": i})
        return (time.perf_counter() - began) / repeats


def makespan(costs, workers):
    """Wall time of ``costs`` handed out in order to the first free of ``workers``."""
    free = np.zeros(workers)
    for cost in costs:
        free[np.argmin(free)] += cost
    return free.max()


def main():
    from bsattack.startup import start_tensorflow
    start_tensorflow()
    from bsattack.datasets import get_spec
    from bsattack.experiment import CHUNK_SIZE, paper_grid
    from bsattack import data
    from bsattack.attacks.pgd import PGDSettings
    from bsattack.parallel import LocalExecutor, RayExecutor
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--checkpoints", required=True, help="folder holding <dataset>_adv")
    parser.add_argument("--dataset", default="fashion", choices=PAPER_TABLE_DATASETS)
    parser.add_argument("--n", type=int, default=300, help="images per setting measured")
    parser.add_argument("--chunk", type=int, default=100, help="images per chunk measured")
    parser.add_argument("--paper-chunk", type=int, default=CHUNK_SIZE,
                        help="images per chunk in the paper-size projection (the commands': "
                             f"{CHUNK_SIZE})")
    args = parser.parse_args()

    spec = get_spec(args.dataset)
    settings = PGDSettings(steps=100, step_size=0.01)
    checkpoint = os.path.join(args.checkpoints, f"{spec.name}_adv")
    split = data.load(spec, args.data_dir, download=False)
    runs = {"this process": LocalExecutor, "1 Ray worker": lambda: RayExecutor(workers=1),
            "2 Ray workers": lambda: RayExecutor(workers=2)}
    measured = {}
    print(f"one table: {spec.name}, {settings.describe()}, first {args.n} images, "
          f"chunks of {args.chunk}, {os.cpu_count()} CPUs")
    for name, executor_of in runs.items():
        wall, started, results = timed_table(spec, checkpoint, split, settings, args.n,
                                             args.chunk, executor_of)
        chunk_seconds = sum(r.seconds for r in results)
        evals = sum(r.new_grad_evals for r in results)
        measured[name] = (wall, results, started)
        print(f"  {name:14s} wall {wall:6.1f} s (workers up {started:5.1f} s), chunk time "
              f"summed over workers {chunk_seconds:6.1f} s, {evals:,} evaluations, "
              f"{evals / wall:,.0f}/s")
    base = measured["this process"][0]
    for name, (wall, _, _) in measured.items():
        print(f"  speed-up of {name}: {base / wall:.2f}x")
    first = [r.records() for r in measured["this process"][1]]
    same = all([r.records() for r in rs] == first for _, rs, _ in measured.values())
    print(f"  identical records in all three runs: {same}")

    # where the time goes, and the projection to the paper's size
    _, results, _ = measured["1 Ray worker"]
    per_image = {(r.alpha, r.beta): r.seconds / len(r.label) for r in results}
    fallback = float(np.mean(list(per_image.values())))
    put = write_seconds(args.paper_chunk, int(np.prod(split.test_x.shape[1:])))
    start = measured["2 Ray workers"][2]
    costs = []
    for name in PAPER_TABLE_DATASETS:
        for t in paper_grid(DATASETS[name]):
            own = per_image.get((t.alpha, t.beta), fallback) if name == spec.name \
                else fallback
            costs += [own * min(args.paper_chunk, PAPER_N - s)
                      for s in range(0, PAPER_N, args.paper_chunk)]
    print(f"\npaper size: Tables 2-3, {PAPER_N} images per setting, {len(costs)} chunks of "
          f"{args.paper_chunk}; per-image cost from the 1-worker run ({spec.name}; the "
          f"other table at its mean); driver write {put * 1000:.0f} ms per chunk; start-up "
          f"of the 2 workers (TensorFlow imported) {start:.1f} s, added once")
    print(f"  {'K':>4s} {'projected wall':>15s} {'speed-up':>9s}  limit")
    one = makespan(costs, 1)
    for k in (1, 2, 4, 8, 16, 32, 64, 128):
        compute = makespan(costs, k)
        wall = max(compute, put * len(costs)) + start
        limit = ("chunks: fewer chunks than workers" if k > len(costs) else
                 "largest chunk" if compute <= max(costs) * 1.01 else
                 "driver writes" if put * len(costs) >= compute else "compute")
        print(f"  {k:4d} {wall / 60:12.1f} min {one / wall:8.1f}x  {limit}")
    print(f"  ({spec.name} measured; beyond {len(costs)} workers a smaller "
          f"--paper-chunk is needed to keep scaling)")


if __name__ == "__main__":
    main()
