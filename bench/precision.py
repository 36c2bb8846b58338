"""float32 against bfloat16 gradients, side by side in one run.

1. The network's raw forward+backward rate (image-gradients/s) at each precision, batch
   ``--batch-size``, best of ``--rounds`` interleaved rounds.
2. One blind-spot setting attacked at each precision on the same images (no cache): success
   at ε and α·ε (float32 predictions in both), gradient evaluations, wall time, and the
   per-image agreement of the two runs.
3. With ``--tables``: the paper's table of ``--dataset`` (``--attack``, first ``--n`` images)
   at both precisions through the project's cache (what is missing is computed), per cell the
   success at ε and α·ε of each, the difference and the per-image agreement.

    python bench/precision.py --dataset fashion --alpha 0.9 --beta 0.05 --attack pgd --n 500 \\
        --checkpoint ../shared/checkpoints/fashion_adv --data-dir ../shared/data
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def raw_rates(spec, checkpoint, split, batch_size, rounds):
    from bsattack.attacks.model import Model
    from bsattack.transforms import to_pm
    x = to_pm(split.test_x[:batch_size]).reshape(batch_size, -1)
    y = split.test_y[:batch_size]
    models = {p: Model(spec, checkpoint, p) for p in ("fp32", "bf16")}
    try:
        best = {p: 0.0 for p in models}
        for _ in range(rounds):
            for p, model in models.items():
                best[p] = max(best[p], model.gradient_rate(x, y, repeats=3))
        return best
    finally:
        for model in models.values():
            model.close()


def attack_both(args, spec, split):
    from bsattack.attacks import registry
    from bsattack.experiment import run_blindspot
    from bsattack.shifts import BlindSpot
    settings = registry.get(args.attack).settings()
    runs = {}
    for p in ("fp32", "bf16"):
        start = time.perf_counter()
        result = run_blindspot(spec, args.checkpoint, BlindSpot(args.alpha, args.beta),
                               settings, args.n, split=split, cache_dir=None,
                               echo=lambda *a: None, precision=p)
        runs[p] = (result, time.perf_counter() - start)
    return settings, runs


def _evaluations(result, seconds):
    """The run's gradient (and, for a score-based attack, forward) evaluations and rates."""
    grad, forward = int(result.grad_evals.sum()), int(result.forward_evals.sum())
    text = f"{grad:,} gradient evaluations in {seconds:.1f} s ({grad / seconds:,.0f}/s)"
    if forward:
        text += f", {forward:,} forward evaluations ({forward / seconds:,.0f}/s)"
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="fashion")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--alpha", type=float, default=0.9)
    parser.add_argument("--beta", type=float, default=0.05)
    parser.add_argument("--attack", default="pgd")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tables", action="store_true",
                        help="Compare the paper's table at both precisions (cached) instead.")
    args = parser.parse_args()
    from bsattack.datasets import get_spec
    from bsattack.precision import resolve
    spec = get_spec(args.dataset)
    chosen, why = resolve("bf16")
    if chosen != "bf16":
        sys.exit(f"nothing to compare: {why}, so bf16 runs as fp32")
    if args.tables:
        return compare_tables(args, spec)

    from bsattack.startup import start_tensorflow
    start_tensorflow()
    from bsattack import data
    split = data.load(spec, args.data_dir)
    rates = raw_rates(spec, args.checkpoint, split, args.batch_size, args.rounds)
    print(f"raw forward+backward rate, batch {args.batch_size}: fp32 {rates['fp32']:,.0f}/s, "
          f"bf16 {rates['bf16']:,.0f}/s ({rates['bf16'] / rates['fp32']:.2f}x)")
    settings, runs = attack_both(args, spec, split)
    print(f"{settings.describe()} on the first {args.n} {spec.name} test images, "
          f"α={args.alpha:g} β={args.beta:g}:")
    for p, (result, seconds) in runs.items():
        s = result.summary()
        print(f"  {p}: success {100 * s['success_eps']:.2f}% at ε, "
              f"{100 * s['success_alpha_eps']:.2f}% at α·ε over {s['attacked']} attacked; "
              + _evaluations(result, seconds))
    (a, ta), (b, tb) = runs["fp32"], runs["bf16"]
    attacked = a.correct & b.correct
    agree = (a.success_eps == b.success_eps)[attacked]
    print(f"  bf16 / fp32 wall time: {tb / ta:.2f} ({ta / tb:.2f}x faster); per-image agreement "
          f"at ε: {100 * agree.mean():.1f}% ({int((~agree).sum())} differ: "
          f"{int((a.success_eps & ~b.success_eps)[attacked].sum())} only fp32, "
          f"{int((b.success_eps & ~a.success_eps)[attacked].sum())} only bf16)")


def compare_tables(args, spec):
    from bsattack import data
    from bsattack.attacks import registry
    from bsattack.experiment import run_table
    from bsattack.startup import start_tensorflow
    start_tensorflow()
    split = data.load(spec, args.data_dir)
    settings = registry.get(args.attack).settings()
    tables = {}
    for p in ("fp32", "bf16"):
        start = time.perf_counter()
        tables[p] = run_table(spec, args.checkpoint, settings, args.n, split,
                              echo=lambda *a: None, precision=p)
        spent = sum(r.new_grad_evals for r in tables[p])
        print(f"{p}: {spent:,} gradient evaluations run now in {time.perf_counter() - start:.0f} s"
              f" (raw rate {max((r.raw_rate for r in tables[p] if r.new_grad_evals), default=0):,.0f}/s)")
    print(f"{settings.describe()}, {spec.name}, first {args.n} test images; success % "
          f"(fp32 / bf16 / difference) and per-image agreement:")
    print("| α | β | @ε fp32 | @ε bf16 | Δ | @α·ε fp32 | @α·ε bf16 | Δ | agreement @ε | @α·ε |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for a, b in zip(tables["fp32"], tables["bf16"]):
        attacked = a.correct & b.correct
        cells = []
        for key in ("success_eps", "success_alpha_eps"):
            x, y = getattr(a, key)[a.correct].mean(), getattr(b, key)[b.correct].mean()
            cells += [f"{100 * x:.2f}", f"{100 * y:.2f}", f"{100 * (y - x):+.2f}"]
        agree = [f"{100 * (getattr(a, k) == getattr(b, k))[attacked].mean():.1f}%"
                 for k in ("success_eps", "success_alpha_eps")]
        print(f"| {a.alpha:g} | {a.beta:g} | " + " | ".join(cells + agree) + " |")


if __name__ == "__main__":
    main()
