"""The blind-spot map drawn from its summaries (computed by
:func:`bsattack.pipelines.beyond.run_map`): accuracy and attack success at ε and α·ε over a
dense (α, β) grid of the whole valid region of x' = αx + β (paper §3.3: 0 < α ≤ 1,
|β| ≤ (1 − α)/2), as CSV and as three heat-maps with the paper's points circled.

Public API: ``write_csv(summaries, path, header)``, ``title(dataset, model, attack, n)``,
``plot(summaries, dataset, path, title)``.
"""
import numpy as np

from bsattack.outputs import save_figure
from bsattack.report import csvfile
from bsattack.report.tables import paper_table

RATES = ("accuracy", "success_eps", "success_alpha_eps")
CSV_COLUMNS = ["alpha", "beta", "beta_fraction", "n", "accuracy", "attacked", "success_eps",
               "success_alpha_eps", "eps", "alpha_eps"]


def _cell(column, value):
    return f"{value:.4f}" if column in RATES else value


def write_csv(summaries, path, header):
    """The map's CSV (rates with 4 decimals), atomically."""
    return csvfile.write_csv(path, summaries, CSV_COLUMNS, header, cell=_cell)


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


def title(dataset, model, attack, n):
    """The map's title: data set, model, attack and N."""
    return f"{dataset}, {model}, {attack}, N={n}"


def plot(summaries, dataset, path, title="", header=()):
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
    save_figure(fig, path, header, dpi=120)
    plt.close(fig)
    return path
