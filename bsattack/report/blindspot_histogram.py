"""Figure 5 of the paper: histograms of D (Eq. 2) for the original and the blind-spot scaled
test set (x' = αx + β) overlaid.  The paper only eyeballs them ("they barely differ"); the
AUROC of D as a detector of the transform puts a number on it (0.5: indistinguishable)."""
import numpy as np

from bsattack.outputs import save_figure
from bsattack.report.csvfile import write_csv

COLUMNS = ["bin_low", "bin_high", "original", "transformed"]


def histogram_rows(original, transformed, bins=40):
    edges = np.histogram_bin_edges(np.r_[original, transformed], bins)
    a, b = np.histogram(original, edges)[0], np.histogram(transformed, edges)[0]
    return [{"bin_low": lo, "bin_high": hi, "original": int(x), "transformed": int(y)}
            for lo, hi, x, y in zip(edges[:-1], edges[1:], a, b)]


def plot(rows, path, title, labels, xlabel):
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
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def write(stem, original, transformed, alpha, beta, title, xlabel, header):
    rows = histogram_rows(original, transformed)
    write_csv(stem + ".csv", rows, COLUMNS, header)
    plot(rows, stem + ".png", title, ("original test set", f"scaled: α={alpha:g}, β={beta:g}"),
         xlabel)
    return stem + ".png", stem + ".csv"
