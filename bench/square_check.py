"""Gradient masking check: does Square (score-based, forward passes only) fool an image within
the threshold that the worst case (C&W, PGD-100, then APGD-CE and APGD-T) leaves?  On the same
first N test images of each blind-spot setting, per threshold: both attacks' successes with
Wilson 95% intervals, the images only one of them fooled (with the ids only Square fooled) and
the exact McNemar p.  Writes results/square_check.md and .json.

    python bench/square_check.py --data-dir ../shared/data --checkpoints ../shared/checkpoints

Both attacks' per-image results go through the project's cache (cache/blindspot/), so a rerun
only re-renders.  An image only Square fools means the gradient attacks missed an example a
gradient-free search finds: a sign of masked gradients there.
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bsattack import data, experiment, stats  # noqa: E402
from bsattack.datasets import get_spec  # noqa: E402
from bsattack.attacks.square import SquareSettings  # noqa: E402
from bsattack.attacks.worst import WorstSettings  # noqa: E402
from bsattack.display import command_line, display_path  # noqa: E402
from bsattack.errors import BsattackError  # noqa: E402
from bsattack.manifest import resolve_checkpoint  # noqa: E402
from bsattack.outputs import check_writable_dir, save_json, save_text  # noqa: E402
from bsattack.paths import CACHE_DIR  # noqa: E402
from bsattack.shifts import BlindSpot  # noqa: E402

SETTINGS = (("mnist", 0.9, 0.0), ("fashion", 0.9, 0.0), ("fashion", 1.0, 0.0))
GRADIENT_WORST = WorstSettings(square_queries=0)    # the worst case's gradient members only


def compare(worst, square):
    """Per threshold of the two results on the same images: counts, intervals, paired test."""
    attacked = worst.correct
    assert np.array_equal(attacked, square.correct) and np.array_equal(worst.index, square.index)
    rows = []
    for threshold in worst.thresholds:
        a, b = worst.success(threshold)[attacked], square.success(threshold)[attacked]
        paired = stats.mcnemar(a, b)
        rows.append({"threshold": threshold, "attacked": int(attacked.sum()),
                     "worst": stats.wilson(a.sum(), len(a)),
                     "square": stats.wilson(b.sum(), len(b)),
                     "only_worst": paired.only_a, "only_square": paired.only_b,
                     "only_square_ids": [int(i) for i in worst.index[attacked][b & ~a]],
                     "p": paired.p_value})
    return rows


def _rate(proportion):
    return (f"{proportion.k}/{proportion.n} = {100 * proportion.value:.2f}% "
            f"[{100 * proportion.low:.1f}, {100 * proportion.high:.1f}]")


def render(command, n, blocks):
    lines = [f"<!-- written by: {command} -->", "",
             "# Gradient masking check: Square against the worst case", "",
             f"Written by `{command}`. First {n} test images of each setting, the correctly "
             "classified ones attacked; success % with the Wilson 95% interval; 'only' counts "
             "images one attack fooled within the threshold and the other did not (exact McNemar "
             "p). Square makes forward passes only, so an image only it fools would point to "
             "masked gradients.", ""]
    for block in blocks:
        lines += [f"## {block['dataset']}, α = {block['alpha']:g}, β = {block['beta']:g} "
                  f"(checkpoint {block['checkpoint']})", "",
                  f"Worst case: {block['worst_attack']}. Square: {block['square_attack']}; "
                  f"{block['square_forward_per_image']:,.0f} forward evaluations per attacked "
                  "image.", "",
                  "| threshold | attacked | worst case | Square | only worst case | only Square "
                  "| only Square: ids | McNemar p |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for row in block["rows"]:
            ids = ", ".join(map(str, row["only_square_ids"])) or "—"
            lines.append(f"| {row['threshold']:g} | {row['attacked']} | {_rate(row['worst'])} | "
                         f"{_rate(row['square'])} | {row['only_worst']} | {row['only_square']} | "
                         f"{ids} | {row['p']:.2g} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--checkpoints", default=None,
                        help="Folder holding <dataset>_adv checkpoints [default: the data "
                             "sets' default adversarially trained models].")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--cache-dir", default=CACHE_DIR)
    parser.add_argument("--out", default=os.path.join(ROOT, "results", "square_check"))
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    command = command_line(sys.argv[1:] if argv is None else argv, "bench/square_check.py")
    check_writable_dir(os.path.dirname(os.path.abspath(args.out)), "--out")
    blocks = []
    for dataset, alpha, beta in SETTINGS:
        spec = get_spec(dataset)
        checkpoint = resolve_checkpoint(
            spec, os.path.join(args.checkpoints, f"{dataset}_adv") if args.checkpoints else None)
        split = data.load(spec, args.data_dir)
        transform = BlindSpot(alpha, beta)
        results = [experiment.run_blindspot(spec, checkpoint, transform, settings, args.n,
                                            split=split, cache_dir=args.cache_dir)
                   for settings in (GRADIENT_WORST, SquareSettings())]
        worst, square = results
        attacked = max(int(square.correct.sum()), 1)
        blocks.append({"dataset": dataset, "alpha": alpha, "beta": beta,
                       "checkpoint": display_path(checkpoint),
                       "worst_attack": worst.settings.describe(),
                       "square_attack": square.settings.describe(),
                       "square_forward_per_image": float(square.forward_evals.sum()) / attacked,
                       "rows": compare(worst, square)})
    save_text(args.out + ".md", render(command, args.n, blocks))
    save_json(args.out + ".json", {"kind": "masking", "command": command, "n": args.n, "blocks": [
        {**b, "rows": [{**r, "worst": r["worst"].__dict__, "square": r["square"].__dict__}
                       for r in b["rows"]]} for b in blocks]})
    print(f"wrote {args.out}.md, {args.out}.json")


if __name__ == "__main__":
    try:
        main()
    except BsattackError as error:
        sys.exit(f"Error: {error}")
