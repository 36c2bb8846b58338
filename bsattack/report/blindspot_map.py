"""The blind-spot map: accuracy and attack success at ε and α·ε over a dense (α, β) grid of the
whole valid region of x' = αx + β (paper §3.3: 0 < α ≤ 1, |β| ≤ (1 − α)/2), where the paper
samples six points per data set.

The grid is α × (β as a fraction of its limit): β = f·(1 − α)/2 for fractions f ∈ [-1, 1], so
every point is valid, the edges β = ±(1 − α)/2 are on it (the paper's β ≠ 0 points sit on the
upper edge), and α = 1 contributes the single point β = 0.  Every point runs through
:func:`bsattack.experiment.run_blindspot` (cached per image, so the map resumes and shares
points with ``tables``/``blindspot``), and the CSV is rewritten after each point.

Public API: ``grid(alphas, fractions)``, ``even_grid(alpha_min, alpha_steps, beta_steps)``,
``run_map(...)`` -> summaries, ``write_csv``, ``plot(summaries, dataset, path)``.
"""
import csv

import numpy as np

from bsattack.errors import BsattackError
from bsattack.experiment import run_blindspot
from bsattack.outputs import atomic_text, save_figure
from bsattack.report.tables import paper_table
from bsattack.shifts import BlindSpot
from bsattack.transforms import validate

DIGITS = 6     # α, β rounded so that grid points equal the paper's (e.g. 0.9, 0.05) exactly
CSV_COLUMNS = ["alpha", "beta", "beta_fraction", "n", "accuracy", "attacked", "success_eps",
               "success_alpha_eps", "eps", "alpha_eps"]


def grid(alphas, fractions):
    """Sorted, de-duplicated valid (α, β, fraction) points: β = fraction·(1 − α)/2."""
    points = {}
    for alpha in alphas:
        if not 0 < alpha <= 1:
            raise BsattackError(f"grid alpha {alpha:g} is outside (0, 1]")
        for f in fractions:
            if not -1 <= f <= 1:
                raise BsattackError(f"beta fraction {f:g} is outside [-1, 1]")
            a = round(float(alpha), DIGITS)
            b = round(f * (1.0 - a) / 2.0, DIGITS) + 0.0     # + 0.0 turns -0.0 into 0.0
            validate(a, b)
            points.setdefault((a, b), 0.0 if a == 1 else float(f))
    return [(a, b, f) for (a, b), f in sorted(points.items())]


def even_grid(alpha_min=0.6, alpha_steps=9, beta_steps=5):
    """α evenly from ``alpha_min`` to 1; β fractions evenly over [-1, 1] (odd: includes 0)."""
    if alpha_steps < 2 or beta_steps < 1:
        raise BsattackError("the map needs --alpha-steps >= 2 and --beta-steps >= 1")
    fractions = np.linspace(-1, 1, beta_steps) if beta_steps > 1 else [0.0]
    return grid(np.linspace(alpha_min, 1.0, alpha_steps), fractions)


def run_map(dataset, checkpoint, points, attack, n, settings, split, cache_dir, echo,
            on_point=None):
    """Summaries (``BlindspotResult.summary()`` + ``beta_fraction``) of every grid point."""
    summaries = []
    for i, (alpha, beta, fraction) in enumerate(points):
        echo(f"[{i + 1}/{len(points)}] α={alpha:g} β={beta:g}")
        result = run_blindspot(dataset, checkpoint, BlindSpot(alpha, beta), settings, n,
                               split=split, cache_dir=cache_dir, echo=echo)
        summaries.append({**result.summary(), "beta_fraction": fraction})
        if on_point is not None:
            on_point(summaries)
    return summaries


def write_csv(summaries, path, header):
    with atomic_text(path) as handle:
        for line in header:
            handle.write(f"# {line}\n")
        writer = csv.DictWriter(handle, CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for s in summaries:
            writer.writerow({**s, **{k: f"{s[k]:.4f}" for k in
                                     ("accuracy", "success_eps", "success_alpha_eps")}})


def _cells(summaries, key):
    """pcolormesh corners (α, β) and values [n_alpha, n_fraction] of the map's quantity."""
    alphas = sorted({s["alpha"] for s in summaries})
    fractions = sorted({s["beta_fraction"] for s in summaries if s["alpha"] < 1}) or [0.0]
    value = {(s["alpha"], s["beta_fraction"]): s[key] for s in summaries}
    values = np.full((len(alphas), len(fractions)), np.nan)
    for i, a in enumerate(alphas):
        for j, f in enumerate(fractions):
            values[i, j] = value.get((a, 0.0) if a == 1 else (a, f), np.nan)
    a_edges = _edges(alphas, 0.0, 1.0)
    f_edges = _edges(fractions, -1.0, 1.0)
    corners_a = np.repeat(a_edges[:, None], len(f_edges), axis=1)
    corners_b = f_edges[None, :] * (1.0 - corners_a) / 2.0
    return corners_a, corners_b, values


def _edges(centres, low, high):
    centres = np.asarray(centres, float)
    if len(centres) == 1:
        return np.array([max(low, centres[0] - 0.5), min(high, centres[0] + 0.5)])
    mids = (centres[1:] + centres[:-1]) / 2
    first = centres[0] - (mids[0] - centres[0])
    last = centres[-1] + (centres[-1] - mids[-1])
    return np.clip(np.concatenate([[first], mids, [last]]), low, high)


def plot(summaries, dataset, path, title=""):
    """Three heat-maps over (α, β): accuracy, success at ε, success at α·ε; paper points marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eps = summaries[0]["eps"]
    panels = [("accuracy", "accuracy"), ("success_eps", f"success @ ε={eps:g}"),
              ("success_alpha_eps", f"success @ α·ε (α·{eps:g})")]
    paper = [(r["alpha"], r["beta"]) for r in paper_table(dataset)["rows"]]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), constrained_layout=True)
    for ax, (key, label) in zip(axes, panels):
        x, y, values = _cells(summaries, key)
        mesh = ax.pcolormesh(x, y, 100 * values, cmap="viridis", shading="flat", vmin=0,
                             vmax=100)          # one scale, so maps of two models compare
        fig.colorbar(mesh, ax=ax, label=f"{label} (%)")
        for s in summaries:
            ax.text(s["alpha"], s["beta"], f"{100 * s[key]:.0f}", ha="center", va="center",
                    fontsize=6, color="white")
        ax.scatter(*zip(*paper), marker="o", s=70, facecolors="none", edgecolors="red",
                   linewidths=1.5, label="paper's (α, β)")
        ax.set_xlabel("α (scale)")
        ax.set_ylabel("β (shift)")
        ax.set_title(label)
        ax.legend(loc="upper left", fontsize=7)
    fig.suptitle(title or f"{dataset}: blind-spot map")
    save_figure(fig, path, dpi=120)
    plt.close(fig)
    return path
