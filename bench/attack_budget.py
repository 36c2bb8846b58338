"""Success against gradient evaluations per image: reference C&W (li_attack.py), the box C&W,
PGD and APGD at several budgets on the same images, for one Fashion-MNIST and one MNIST
setting.  Writes results/attack_budget.csv and results/attack_budget.png.

    python bench/attack_budget.py --data-dir ../shared/data --checkpoints ../shared/checkpoints

Each point (attack, budget, setting) is cached in cache/bench/attack_budget/ as an .npz keyed
by everything that decides it, so the script resumes and a rerun only draws the figure.  A
point runs by chunks of images, each cached on its own, so a long point resumes by chunk.
``--redraw`` draws the PNG again from the CSV alone (no cache, no network), naming both
commands in the PNG.
The images: the first 100 attacked (correctly classified after the transform) test images of
Fashion-MNIST α = 1 and of MNIST α = 0.9, β = 0.
"""
import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bsattack import data  # noqa: E402
from bsattack.attacks import registry  # noqa: E402
from bsattack.attacks.apgd import APGDSettings  # noqa: E402
from bsattack.attacks.cw import CWSettings  # noqa: E402
from bsattack.datasets import get_spec  # noqa: E402
from bsattack.attacks.pgd import PGDSettings  # noqa: E402
from bsattack.display import command_line  # noqa: E402
from bsattack.outputs import save_figure  # noqa: E402
from bsattack.paths import digest  # noqa: E402
from bsattack.report.csvfile import write_csv  # noqa: E402
from bsattack.shifts import BlindSpot  # noqa: E402
from bsattack.transforms import to_pm  # noqa: E402

SETTINGS = {   # name: (data set, transform, how the images are chosen)
    "fashion α=1": ("fashion", BlindSpot(1.0, 0.0), ("first_attacked", 100)),
    "mnist α=0.9 β=0": ("mnist", BlindSpot(0.9, 0.0), ("first_attacked", 100)),
}
BUDGETS = {
    "C&W reference": [CWSettings(variant="reference", max_iterations=k) for k in (10, 30, 1000)],
    "C&W box": [CWSettings(variant="box", max_iterations=k) for k in (1, 2, 5, 10, 20)],
    "PGD": [PGDSettings(steps=k) for k in (10, 20, 50, 100, 200)],
    "APGD-CE": [APGDSettings(iterations=k) for k in (10, 20, 50, 100, 200)],
}
CACHE = os.path.join(ROOT, "cache", "bench", "attack_budget")
COLUMNS = ["setting", "attack", "budget", "images", "success_eps", "success_alpha_eps",
           "evals_per_image", "seconds"]


def images(model, transform, how, split):
    """(x' [k, d], labels, test indices) of the attacked images."""
    rule, count = how
    n = count if rule == "first_test" else 4 * count
    x = transform(to_pm(split.test_x[:n]).reshape(n, -1))
    y = split.test_y[:n]
    keep = np.flatnonzero(model.predict(x) == y)
    if rule == "first_attacked":
        keep = keep[:count]
    return x[keep], y[keep], keep


def point(model, settings, x, y, ids, thresholds, key, chunk):
    """One cached run: success per threshold and evaluations per image.  Runs ``chunk`` images
    at a time, each chunk cached on its own, so a long point resumes where it stopped."""
    path = point_path(key)
    if os.path.exists(path):
        return dict(np.load(path))
    parts = [part(model, settings, x[i:i + chunk], y[i:i + chunk], ids[i:i + chunk],
                  thresholds, f"{path[:-4]}.{i}-{i + chunk}.npz")
             for i in range(0, len(y), chunk)]
    found = {name: np.concatenate([p[name] for p in parts]) for name in ("success", "grad_evals")}
    found["seconds"] = np.float64(sum(float(p["seconds"]) for p in parts))
    save(path, found)
    return found


def point_path(key):
    return os.path.join(CACHE, f"{digest(key)[:20]}.npz")


def part(model, settings, x, y, ids, thresholds, path):
    """One chunk of a point, cached at ``path``."""
    if os.path.exists(path):
        return dict(np.load(path))
    began = time.perf_counter()
    result = registry.build(model, settings).run(x, y, thresholds, ids)
    found = {"success": result.success_table, "grad_evals": result.grad_evals,
             "seconds": np.float64(time.perf_counter() - began)}
    save(path, found)
    print(f"  images {ids[0]}..{ids[-1]}: {found['grad_evals'].mean():.0f} evaluations/image "
          f"in {found['seconds']:.0f} s", flush=True)
    return found


def save(path, arrays):
    os.makedirs(CACHE, exist_ok=True)
    np.savez(path + ".tmp.npz", **arrays)
    os.replace(path + ".tmp.npz", path)


def budget_of(settings):
    return getattr(settings, "max_iterations", None) or getattr(settings, "steps", None) \
        or settings.iterations


def plot(rows, path, header):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(SETTINGS), figsize=(5.2 * len(SETTINGS), 4))
    for ax, setting in zip(np.atleast_1d(axes), SETTINGS):
        for attack in BUDGETS:
            pts = sorted((r["evals_per_image"], 100 * r["success_eps"]) for r in rows
                         if r["setting"] == setting and r["attack"] == attack)
            if pts:
                ax.plot(*zip(*pts), marker="o", label=attack)
        ax.set_xscale("log")
        ax.set_xlabel("gradient evaluations per image")
        ax.set_ylabel("success at ε (%)")
        ax.set_title(setting)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, header, dpi=110)
    plt.close(fig)


def read_rows(path):
    """The rows and ``#`` header lines of a CSV this script wrote (numbers back as numbers)."""
    import csv
    with open(path) as handle:
        lines = handle.read().splitlines()
    header = [line[2:] for line in lines if line.startswith("# ")]
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    for row in rows:
        for column in COLUMNS[2:]:
            row[column] = float(row[column])
    return rows, header


def redraw(out):
    """The PNG again from ``out``/attack_budget.csv, its header naming this command and the
    CSV's."""
    rows, csv_header = read_rows(os.path.join(out, "attack_budget.csv"))
    header = ["command: " + command_line(sys.argv[1:], "bench/attack_budget.py"),
              "points: attack_budget.csv, written by " + "; ".join(csv_header)]
    plot(rows, os.path.join(out, "attack_budget.png"), header)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--checkpoints", help="folder holding mnist_adv and fashion_adv")
    parser.add_argument("--out", default=os.path.join(ROOT, "results"))
    parser.add_argument("--attacks", default=",".join(BUDGETS))
    parser.add_argument("--largest-reference", type=int, default=1000,
                        help="leave out reference budgets above this (steps per constant) "
                             "unless already cached")
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help="which settings to run, comma-separated")
    parser.add_argument("--chunk", type=int, default=25,
                        help="images per cached chunk (a stopped run resumes by chunk)")
    parser.add_argument("--redraw", action="store_true",
                        help="only draw the PNG again from the CSV in --out")
    args = parser.parse_args()
    if args.redraw:
        if not os.path.isfile(os.path.join(args.out, "attack_budget.csv")):
            parser.error(f"--redraw: no attack_budget.csv in {args.out}")
        redraw(args.out)
        return
    if not args.checkpoints:
        parser.error("--checkpoints is required (or --redraw)")
    from bsattack.startup import start_tensorflow
    start_tensorflow()
    from bsattack.attacks.model import Model
    rows = []
    for setting in args.settings.split(","):
        dataset, transform, how = SETTINGS[setting]
        spec = get_spec(dataset)
        checkpoint = os.path.join(args.checkpoints, f"{spec.name}_adv")
        split = data.load(spec, args.data_dir, download=False)
        model = Model(spec, checkpoint)
        x, y, ids = images(model, transform, how, split)
        thresholds = transform.thresholds(spec.eps)
        for attack in args.attacks.split(","):
            for settings in BUDGETS[attack]:
                key = {"setting": setting, "how": list(how), "settings": settings.key(),
                       "checkpoint": checkpoint_hash(checkpoint), "data": split.fingerprint}
                if (attack == "C&W reference" and budget_of(settings) > args.largest_reference
                        and not os.path.exists(point_path(key))):
                    continue
                found = point(model, settings, x, y, ids, thresholds, key, args.chunk)
                row = {"setting": setting, "attack": attack, "budget": budget_of(settings),
                       "images": len(y), "success_eps": float(found["success"][:, -1].mean()),
                       "success_alpha_eps": float(found["success"][:, 0].mean()),
                       "evals_per_image": float(found["grad_evals"].mean()),
                       "seconds": float(found["seconds"])}
                rows.append(row)
                print(f"{setting:18s} {attack:14s} {row['budget']:5d}: "
                      f"{100 * row['success_eps']:5.1f}% at ε, "
                      f"{row['evals_per_image']:8.0f} evaluations/image", flush=True)
        model.close()
    header = ["command: " + command_line(sys.argv[1:], "bench/attack_budget.py")]
    write_csv(os.path.join(args.out, "attack_budget.csv"), rows, COLUMNS, header)
    plot(rows, os.path.join(args.out, "attack_budget.png"), header)


def checkpoint_hash(path):
    from madry_models.checkpoint import content_hash
    return content_hash(path)


if __name__ == "__main__":
    main()
