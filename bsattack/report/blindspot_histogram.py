"""Figure 5 of the paper: histograms of D (Eq. 2) for the original and the blind-spot scaled
test set (x' = αx + β) overlaid.  The paper only eyeballs them ("they barely differ"); the
AUROC of D as a detector of the transform puts a number on it (0.5: indistinguishable).
Written as PNG, CSV and a JSON summary."""
import os

import numpy as np

from bsattack.outputs import save_figure, save_json
from bsattack.report.csvfile import write_csv
from bsattack.report.distance_figure import extractor_line, xlabel

COLUMNS = ["bin_low", "bin_high", "original", "transformed"]


def histogram_rows(original, transformed, bins=40):
    edges = np.histogram_bin_edges(np.r_[original, transformed], bins)
    a, b = np.histogram(original, edges)[0], np.histogram(transformed, edges)[0]
    return [{"bin_low": lo, "bin_high": hi, "original": int(x), "transformed": int(y)}
            for lo, hi, x, y in zip(edges[:-1], edges[1:], a, b)]


def plot(rows, path, title, labels, xlabel, header=()):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo = np.array([r["bin_low"] for r in rows])
    width = np.array([r["bin_high"] for r in rows]) - lo
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for column, label, color in zip(("original", "transformed"), labels, ("tab:red", "tab:blue")):
        ax.bar(lo, [r[column] for r in rows], width, align="edge", alpha=0.5, color=color,
               label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test images")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, header, dpi=120)
    plt.close(fig)


def write(stem, original, transformed, alpha, beta, title, xlabel, header):
    rows = histogram_rows(original, transformed)
    write_csv(stem + ".csv", rows, COLUMNS, header)
    plot(rows, stem + ".png", title, ("original test set", f"scaled: α={alpha:g}, β={beta:g}"),
         xlabel, header)
    return stem + ".png", stem + ".csv"


def write_panel(stem, original, transformed, auroc, dataset, extractor, checkpoint, digest,
                alpha, beta, k, p, header):
    """One panel of Figure 5 (``extractor`` 'adv' or 'nat' as h, from ``checkpoint``):
    ``stem``.png with its title, ``stem``.csv under ``header`` and the extractor and AUROC
    lines, ``stem``.json; returns the PNG and CSV paths."""
    title = (f"{dataset}: D of the original vs the scaled test set (α={alpha:g}, "
             f"β={beta:g})\nh: {os.path.basename(checkpoint)}; "
             f"AUROC of D as a detector of the scaling: {auroc:.3f}")
    lines = header + [extractor_line(checkpoint, digest),
                      f"AUROC(D detects the transform)={auroc:.4f}; mean D original "
                      f"{original.mean():.4f}, scaled {transformed.mean():.4f}"]
    paths = write(stem, original, transformed, alpha, beta, title, xlabel(k, p), lines)
    save_json(stem + ".json", {
        "kind": "histogram", "dataset": dataset, "extractor": extractor,
        "header": lines, "alpha": alpha, "beta": beta, "auroc": auroc,
        "n_original": len(original), "n_scaled": len(transformed),
        "mean_original": float(original.mean()), "mean_scaled": float(transformed.mean())})
    return paths
