"""Figures 1-3 of the paper: attack success against the distance D (Eq. 2) of a test point to
the training set.  Bottom: histogram of D over the test set (red).  Top: attack success rate
among the attacked (correctly classified) images of each D bin (blue).  Written as PNG and
as the CSV of the plotted numbers, with a JSON summary; the rank correlation between D and
success sums it up.
"""
import os
import textwrap
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from bsattack.display import checkpoint_label
from bsattack.outputs import save_figure, save_json
from bsattack.report.csvfile import write_csv

COLUMNS = ["bin_low", "bin_high", "test_images", "attacked", "successes", "success_rate"]
MIN_ATTACKED = 5      # bins with fewer attacked images are not drawn in the top panel


def bin_table(all_distances, distances, attacked, success, bins=20):
    """Rows of COLUMNS: equal-width bins over ``all_distances`` (the whole test set);
    ``distances``/``attacked``/``success`` describe the attacked subset of images."""
    edges = np.histogram_bin_edges(all_distances, bins)
    counts = np.histogram(all_distances, edges)[0]
    tried = np.histogram(distances[attacked], edges)[0]
    won = np.histogram(distances[attacked & success], edges)[0]
    return [{"bin_low": lo, "bin_high": hi, "test_images": int(c), "attacked": int(a),
             "successes": int(s), "success_rate": (s / a if a else float("nan"))}
            for lo, hi, c, a, s in zip(edges[:-1], edges[1:], counts, tried, won)]


@dataclass
class Association:
    """How attack success goes with D over the attacked images."""
    spearman: float      # rank correlation of D and success (0/1)
    p_value: float
    auroc: float         # P(D of a success > D of a failure)
    attacked: int
    successes: int


def association(distances, attacked, success):
    d, s = distances[attacked], success[attacked].astype(int)
    if s.min() == s.max():
        return Association(float("nan"), float("nan"), float("nan"), len(s), int(s.sum()))
    rho, p = spearmanr(d, s)
    return Association(float(rho), float(p), float(roc_auc_score(s, d)), len(s), int(s.sum()))


def plot(rows, path, title, note, xlabel, header=()):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo = np.array([r["bin_low"] for r in rows])
    width = np.array([r["bin_high"] for r in rows]) - lo
    rate = np.array([r["success_rate"] if r["attacked"] >= MIN_ATTACKED else np.nan for r in rows])
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(5, 4.8),
                                      gridspec_kw={"height_ratios": [1, 1]})
    top.bar(lo, 100 * np.nan_to_num(rate), width, align="edge", color="tab:blue",
            edgecolor="white")
    top.set_ylabel("attack success (%)")
    top.set_title(title, fontsize=9)
    bottom.bar(lo, [r["test_images"] for r in rows], width, align="edge", color="tab:red",
               edgecolor="white")
    bottom.set_ylabel("test images")
    bottom.set_xlabel(xlabel)
    fig.text(0.01, 0.005, "\n".join(textwrap.wrap(note, 105)), fontsize=6.5, va="bottom")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    save_figure(fig, path, header, dpi=120)
    plt.close(fig)


def write(stem, rows, title, note, xlabel, header):
    """``stem``.png and ``stem``.csv (``header`` lines become ``#`` comments)."""
    write_csv(stem + ".csv", rows, COLUMNS, header)
    plot(rows, stem + ".png", title, note, xlabel, header)
    return stem + ".png", stem + ".csv"


def xlabel(k, p):
    """The D axis label of Figures 1-3 and 5."""
    return f"D: mean l{p:g} distance to the {k} nearest training embeddings"


def extractor_line(checkpoint, digest):
    """The header line naming the feature extractor h and its checkpoint's SHA-256."""
    return f"extractor h: {checkpoint_label(checkpoint, digest)}"


def write_panel(stem, rows, assoc, dataset, figure, extractor, extractor_checkpoint,
                extractor_digest, attacked_checkpoint, attack, settings, eps, n, k, p, header):
    """One panel of Figures 1-3 (``extractor`` 'adv' or 'nat' as h): ``stem``.png with its
    title and note, ``stem``.csv under ``header`` and the attack, extractor and association
    lines, ``stem``.json; returns the PNG and CSV paths."""
    trained = "adversarially" if extractor == "adv" else "naturally"
    title = (f"{dataset}, h = {trained} trained model "
             f"({os.path.basename(extractor_checkpoint)})")
    note = (f"top: {attack.upper()} L∞ success at ε={eps:g} on the adversarially "
            f"trained model, {assoc.attacked} correctly classified of the first {n} test "
            f"images; Spearman ρ(D, success)={assoc.spearman:.3f}, AUROC={assoc.auroc:.3f}")
    lines = header + [f"attack: {settings.describe()} on {attacked_checkpoint}, first "
                      f"{n} test images, eps={eps:g}",
                      extractor_line(extractor_checkpoint, extractor_digest),
                      f"spearman(D, success)={assoc.spearman:.4f} (p={assoc.p_value:.2g}); "
                      f"AUROC(D -> success)={assoc.auroc:.4f}"]
    paths = write(stem, rows, title, note, xlabel(k, p), lines)
    save_json(stem + ".json", {
        "kind": "distance", "dataset": dataset, "extractor": extractor,
        "figure": figure, "header": lines, "eps": eps, "n": n,
        "attacked": assoc.attacked, "successes": assoc.successes,
        "spearman": assoc.spearman, "p_value": assoc.p_value, "auroc": assoc.auroc})
    return paths
