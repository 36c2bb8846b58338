"""The paper's claims, decided on the project's own results with stated rules.

Each ``check_*`` function takes the machine-readable summaries the commands write (``.json``
beside each table and figure; see :mod:`bsattack.report.tables` and
:mod:`bsattack.pipelines.figures`) and returns a :class:`Claim`: the claim in one sentence, the
paper's evidence, ours with its 95% interval (:mod:`bsattack.stats`), a verdict and the rule
that gave it.  Verdicts: ``holds``, ``does not hold``, ``inconclusive`` (the data cannot tell
at 95%), ``cannot be tested here`` (the data or checkpoints were not available to the run).
"""
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from bsattack import stats

HOLDS, FAILS, UNSURE, UNTESTABLE = ("holds", "does not hold", "inconclusive",
                                    "cannot be tested here")
# accuracy on x' may fall by at most this much (points of %) for "accuracy stays"
ACCURACY_STAYS = 2.0
# an AUROC whose interval lies below this is a poor detector (Hosmer & Lemeshow's scale:
# 0.7-0.8 "acceptable" discrimination)
POOR_DETECTOR = 0.7


@dataclass(frozen=True)
class Claim:
    claim: str
    paper: str          # the paper's evidence (table/figure and its number)
    ours: str           # our measurement with its interval
    verdict: str
    rule: str           # how the verdict was decided


def pct(p):
    return "—" if p.n == 0 else (f"{100 * p.value:.1f}% [{100 * p.low:.1f}, {100 * p.high:.1f}] "
                                 f"({p.k}/{p.n})")


def _diff(d):
    return f"{100 * d.value:+.1f} points [{100 * d.low:+.1f}, {100 * d.high:+.1f}]"


def _table_attack(table):
    """The table's own attack (the last of each cell's attacks: the worst case after its
    members)."""
    cell = next(c for c in table["cells"] if "attacks" in c)
    return list(cell["attacks"])[-1]


def check_blind_spots(dataset, table):
    """Tables 2-3: at every α < 1 setting, success at ε above the α = 1 cell's (Newcombe
    interval of the difference above 0), with accuracy within ``ACCURACY_STAYS`` points."""
    number = table["table"]
    cells = [c for c in table["cells"] if "attacks" in c]
    base = next((c for c in cells if c["alpha"] == 1 and c["beta"] == 0), None)
    paper_rows = [c["paper"] for c in table["cells"]]
    paper_base = next(r for r in paper_rows if r["alpha"] == 1)
    paper_low = min(r["success_eps"] for r in paper_rows if r["alpha"] < 1)
    paper_acc = [r["accuracy"] for r in paper_rows]
    paper = (f"Table {number}: {paper_base['success_eps']:.2f}% at α = 1 → "
             f"{paper_low:.2f}–{max(r['success_eps'] for r in paper_rows):.2f}% at α < 1; "
             f"accuracy {min(paper_acc):.1f}–{max(paper_acc):.1f}%")
    claim = (f"{dataset}: slightly scaled/shifted test images x' = αx + β are fooled within ε "
             f"far more often than the originals, while accuracy stays")
    rule = (f"holds if at every α < 1 setting the success rise over α = 1 has a 95% Newcombe "
            f"interval above 0 and accuracy falls by at most {ACCURACY_STAYS:g} points; does "
            f"not hold if a rise's interval lies below 0 or an accuracy fall's interval lies "
            f"above {ACCURACY_STAYS:g} points")
    scaled = [c for c in cells if c["alpha"] < 1]
    if base is None or not scaled:
        return Claim(claim, paper, "the α = 1 cell or the α < 1 cells are missing", UNSURE, rule)
    name = _table_attack(table)

    def success(cell):
        return cell["attacks"][name]["eps"], cell["attacked"]

    rises = [stats.newcombe(*success(c), *success(base)) for c in scaled]
    smallest = min(range(len(scaled)), key=lambda i: rises[i].low)
    drops = [stats.newcombe(base["attacked"], base["n"], c["attacked"], c["n"]) for c in scaled]
    largest = max(range(len(scaled)), key=lambda i: drops[i].value)
    stays = 100 * drops[largest].value <= ACCURACY_STAYS
    falls = any(100 * d.low > ACCURACY_STAYS for d in drops)
    ours = (f"{name}: {pct(stats.wilson(*success(base)))} at α = 1; smallest rise "
            f"(α = {scaled[smallest]['alpha']:g}, β = {scaled[smallest]['beta']:g}): "
            f"{_diff(rises[smallest])}; largest accuracy fall (α = {scaled[largest]['alpha']:g}, "
            f"β = {scaled[largest]['beta']:g}): {_diff(drops[largest])}")
    if all(r.low > 0 for r in rises) and stays:
        verdict = HOLDS
    elif any(r.high < 0 for r in rises) or falls:
        verdict = FAILS
    else:
        verdict = UNSURE
    return Claim(claim, paper, ours, verdict, rule)


def check_distance(dataset, figures):
    """Figures 1-2: Spearman ρ(D, success) over the attacked images, per feature extractor;
    holds when every extractor's interval lies above 0."""
    number = figures[0]["figure"] if figures else "?"
    claim = (f"{dataset}: the farther a test image is from the training set (D, Eq. 2), the "
             f"more often the attack succeeds")
    paper = f"Figure {number}: success rises across the D histogram (no statistic given)"
    rule = "holds if Spearman ρ(D, success) has a 95% Fisher-z interval above 0 for each extractor h"
    if not figures:
        return Claim(claim, paper, "no distance figure in this run", UNSURE, rule)
    parts, verdicts = [], []
    for fig in figures:
        rho = stats.spearman_interval(fig["spearman"], fig["attacked"], fig["p_value"])
        parts.append(f"h = {fig['extractor']}: ρ = {rho.value:.3f} [{rho.low:.3f}, "
                     f"{rho.high:.3f}], p = {rho.p_value:.2g}, n = {rho.n}")
        verdicts.append(HOLDS if rho.low > 0 else FAILS if rho.high < 0 else UNSURE)
    verdict = (HOLDS if all(v == HOLDS for v in verdicts)
               else FAILS if FAILS in verdicts else UNSURE)
    return Claim(claim, paper, "; ".join(parts), verdict, rule)


def check_detectability(dataset, histograms):
    """Figure 5: the AUROC of D as a detector of the scaling, per extractor; holds when every
    interval lies below ``POOR_DETECTOR``."""
    claim = (f"{dataset}: the scaled test set (Figure 5's α, β) is not detectably farther from "
             f"the training set than the original one")
    paper = "Figure 5: the two D histograms overlap almost entirely (no statistic given)"
    rule = (f"holds if the AUROC of D (scaled vs original) has a 95% Hanley–McNeil interval "
            f"below {POOR_DETECTOR:g} (a poor detector); does not hold if above it")
    if not histograms:
        return Claim(claim, paper, "no Figure 5 in this run", UNSURE, rule)
    parts, verdicts = [], []
    for hist in histograms:
        area = stats.auroc_interval(hist["auroc"], hist["n_scaled"], hist["n_original"])
        parts.append(f"h = {hist['extractor']} (α = {hist['alpha']:g}, β = {hist['beta']:g}): "
                     f"AUROC {area.value:.3f} [{area.low:.3f}, {area.high:.3f}], mean D "
                     f"{hist['mean_original']:.3f} → {hist['mean_scaled']:.3f}")
        verdicts.append(HOLDS if area.high < POOR_DETECTOR
                        else FAILS if area.low > POOR_DETECTOR else UNSURE)
    verdict = (HOLDS if all(v == HOLDS for v in verdicts)
               else FAILS if FAILS in verdicts else UNSURE)
    return Claim(claim, paper, "; ".join(parts), verdict, rule)


def kl_interval(per_class):
    """The mean of the per-class K-L values with a t interval over the classes."""
    values = np.asarray(list(per_class.values()), float)
    mean = float(values.mean())
    if len(values) < 2:
        return stats.Interval(mean, math.nan, math.nan)
    half = (scipy_stats.t.ppf(0.5 + stats.LEVEL / 2, len(values) - 1)
            * values.std(ddof=1) / math.sqrt(len(values)))
    return stats.Interval(mean, mean - half, mean + half)


def check_kl_order(rows, paper_rows, missing):
    """Table 1: the data sets' order by average K-L is their order by attack success.
    ``rows``: {dataset: table1 summary}; ``paper_rows``: {dataset: (K-L, success %, accuracy %)}
    of every data set of the paper's table; ``missing``: {dataset: why it was not run}."""
    claim = ("a larger train/test divergence (Eq. 3) goes with a higher attack success "
             "(the data sets in the same order by both)")
    order = sorted(paper_rows, key=lambda d: paper_rows[d][0])
    paper = ("Table 1: " + " < ".join(f"{d} {paper_rows[d][0]:g} ({paper_rows[d][1]:g}%)"
                                      for d in order))
    rule = ("holds if the order by K-L equals the order by success and both differences are "
            "significant (Welch t over the per-class K-L, Newcombe interval of the success "
            "difference); does not hold if the orders differ significantly; data sets not run "
            "are named")
    present = sorted(rows, key=lambda d: rows[d]["row"]["avg_kl"])
    parts = []
    for d in present:
        kl = kl_interval(rows[d]["per_class_kl"])
        success = stats.wilson(rows[d]["successes"], rows[d]["attacked"])
        parts.append(f"{d}: K-L {kl.value:.4f} [{kl.low:.4f}, {kl.high:.4f}], success "
                     f"{pct(success)}")
    ours = "; ".join(parts) + "".join(f"; {d}: not run ({why})" for d, why in missing.items())
    if len(present) < 2:
        return Claim(claim, paper, ours, UNTESTABLE if missing else UNSURE, rule)
    verdicts = []
    for low, high in zip(present, present[1:]):
        kl_p = scipy_stats.ttest_ind(list(rows[high]["per_class_kl"].values()),
                                     list(rows[low]["per_class_kl"].values()),
                                     equal_var=False).pvalue
        rise = stats.newcombe(rows[high]["successes"], rows[high]["attacked"],
                              rows[low]["successes"], rows[low]["attacked"])
        significant = kl_p < 1 - stats.LEVEL
        if rise.low > 0 and significant:
            verdicts.append(HOLDS)
        elif rise.high < 0 and significant:
            verdicts.append(FAILS)
        else:
            verdicts.append(UNSURE)
        ours += (f"; {high} − {low}: success {_diff(rise)}, K-L Welch p = {kl_p:.2g}")
    verdict = (FAILS if FAILS in verdicts else HOLDS if all(v == HOLDS for v in verdicts)
               else UNSURE)
    return Claim(claim, paper, ours, verdict, rule)


def check_cw_vs_pgd(tables, a="cw", b="pgd"):
    """The project's own: the C&W L∞ (box) is at least as strong as PGD-100 in every cell of
    Tables 2-3: in no cell does PGD fool significantly more of the same images (exact McNemar
    on the discordant images at ε and at α·ε)."""
    claim = ("the project's C&W L∞ (box variant) is at least as strong as PGD-100 in every "
             "cell of Tables 2–3, on the same images")
    paper = "— (the paper reports C&W only)"
    rule = ("holds if in no cell and at neither threshold PGD-100 fools significantly more "
            "images than C&W (exact McNemar, p < 0.05 with PGD ahead)")
    cells = []
    for dataset, table in tables.items():
        for cell in table["cells"]:
            pair = next((p for p in cell.get("paired", ()) if {p["a"], p["b"]} == {a, b}), None)
            if pair is None:
                continue
            for key in ("eps", "alpha_eps"):
                if key == "alpha_eps" and cell["alpha"] == 1:
                    continue
                counts = pair[key]
                only_a, only_b = ((counts["only_a"], counts["only_b"]) if pair["a"] == a
                                  else (counts["only_b"], counts["only_a"]))
                cells.append((dataset, cell["alpha"], cell["beta"], key,
                              stats.mcnemar_counts(only_a, only_b)))
    if not cells:
        return Claim(claim, paper, "no table with both attacks in this run", UNSURE, rule)
    pgd_better = [c for c in cells if c[4].only_b > c[4].only_a and c[4].p_value < 0.05]
    cw_better = [c for c in cells if c[4].only_a > c[4].only_b and c[4].p_value < 0.05]
    ties = len(cells) - len(pgd_better) - len(cw_better)
    total_a = sum(c[4].only_a for c in cells)
    total_b = sum(c[4].only_b for c in cells)
    ours = (f"{len(cells)} cell-thresholds: C&W significantly ahead in {len(cw_better)}, "
            f"no significant difference in {ties}, PGD-100 significantly ahead in "
            f"{len(pgd_better)}; images only C&W fooled {total_a:,}, only PGD-100 {total_b:,}")
    if pgd_better:
        ours += " (PGD ahead: " + ", ".join(
            f"{d} α={al:g} β={be:g} @{'ε' if k == 'eps' else 'α·ε'} "
            f"{p.only_b} vs {p.only_a}, p={p.p_value:.2g}" for d, al, be, k, p in pgd_better) + ")"
    return Claim(claim, paper, ours, FAILS if pgd_better else HOLDS, rule)


def check_masking(check, tables=()):
    """The project's own: no gradient masking on the blind-spot settings checked, i.e. Square
    (forward passes only) fools no image within a threshold that the worst case's gradient
    members leave.  ``check``: the summary ``bench/square_check.py`` writes (or None);
    ``tables``: the Tables 2-3 summaries, whose worst case ran Square last on the images its
    gradient members left (its 'found_by' counts name the images only Square fooled at ε).
    None when neither has anything to say."""
    claim = ("the project's worst case is not gradient-masked on the blind-spot settings: "
             "Square (forward passes only) fools no image within the threshold that the "
             "worst case's gradient members leave")
    paper = "— (AutoAttack's check; the paper runs none)"
    rule = ("holds if in every setting checked and at every threshold no image is fooled by "
            "Square alone; does not hold otherwise (those images are listed)")
    parts, masked = [], False
    for block in (check or {}).get("blocks", []):
        for row in block["rows"]:
            masked |= row["only_square"] > 0
            ids = ", ".join(map(str, row["only_square_ids"]))
            parts.append(f"{block['dataset']} α={block['alpha']:g} β={block['beta']:g} "
                         f"@{row['threshold']:g}: only Square {row['only_square']}"
                         + (f" (ids {ids})" if ids else "")
                         + f", only the gradient members {row['only_worst']} of {row['attacked']}, "
                         f"McNemar p = {row['p']:.2g}")
    if parts:
        parts[0] = f"first {check['n']:,} test images; " + parts[0]
    for table in tables:
        if not any("attacks" in c for c in table["cells"]):
            continue
        name = _table_attack(table)
        cells = [c for c in table["cells"] if "attacks" in c
                 and c["attacks"][name].get("forward_evals", 0) > 0]
        if not cells:
            continue
        counts = [(c, c["attacks"][name].get("found_by", {}).get("square", 0)) for c in cells]
        masked |= any(k > 0 for _, k in counts)
        listed = ", ".join(f"α={c['alpha']:g} β={c['beta']:g}: {k}" for c, k in counts if k)
        parts.append(f"Table {table['table']} ({table['dataset']}, first {cells[0]['n']:,} test "
                     f"images, Square last in the worst case): only Square @ε "
                     f"{sum(k for _, k in counts)} of {sum(c['attacked'] for c in cells):,} "
                     f"attacked" + (f" ({listed})" if listed else ""))
    if not parts:
        return None if check is None else Claim(claim, paper, "no setting checked", UNSURE,
                                                rule)
    return Claim(claim, paper, "; ".join(parts), FAILS if masked else HOLDS, rule)


def untestable(claim, paper, why):
    return Claim(claim, paper, "—", UNTESTABLE, why)
