"""Tables 2 (MNIST) and 3 (Fashion-MNIST) of the paper: accuracy on x' = α·x + β and attack
success at ε and α·ε over the paper's (α, β) grid, with the paper's numbers alongside
(``paper_tables.json``), as Markdown and CSV.  For the worst case, each full member's own
columns come first, then the worst case's.  Renders results; runs nothing.
"""
import json
import os

import numpy as np

from bsattack.atomic import write_atomic
from bsattack.report.csvfile import write_csv

PAPER_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "paper_tables.json")
PAPER_COLUMNS = ["paper_accuracy", "paper_success_eps", "paper_success_alpha_eps"]


def paper_table(dataset):
    """{'table': number, 'eps': ε, 'rows': [...]} of the paper for ``dataset``."""
    with open(PAPER_FILE) as handle:
        return json.load(handle)[dataset]


def _pct(value):
    return "" if value is None else f"{100 * value:.2f}"


def _attacks(result):
    """[(column prefix, result)]: the full members of a worst case first, then itself."""
    members = getattr(result, "members", None) or {}
    return [(name, r) for name, r in members.items()] + [(result.attack, result)]


def columns(results):
    cols = ["alpha", "beta", "accuracy", "attacked"]
    for name, _ in _attacks(results[0]) if results else []:
        cols += [f"{name}_success_eps", f"{name}_success_alpha_eps", f"{name}_evals_per_image"]
    if results and getattr(results[0], "members", None):
        cols += [f"only_{name}_eps" for name in results[0].members] + ["cascade_adds_eps"]
    return cols + PAPER_COLUMNS


def exclusive_counts(result):
    """For a worst case: per full member, the images only it fooled at ε (among the full
    members), and the images the cascade members added at ε."""
    members = result.members
    counts = {}
    for name, r in members.items():
        others = [m.success_eps for other, m in members.items() if other != name]
        counts[f"only_{name}_eps"] = int((r.success_eps & ~np.any(others, axis=0)).sum()
                                         if others else r.success_eps.sum())
    full = np.any([m.success_eps for m in members.values()], axis=0)
    counts["cascade_adds_eps"] = int((result.success_eps & ~full).sum())
    return counts


def table_rows(results, dataset):
    """Our results (:class:`bsattack.experiment.BlindspotResult`) next to the paper's rows."""
    ours = {(r.alpha, r.beta): r for r in results}
    rows = []
    for paper in paper_table(dataset)["rows"]:
        result = ours.get((paper["alpha"], paper["beta"]))
        row = {"alpha": str(paper["alpha"]), "beta": str(paper["beta"]), "accuracy": "",
               "attacked": "",
               "paper_accuracy": f"{paper['accuracy']:.1f}",
               "paper_success_eps": f"{paper['success_eps']:.2f}",
               "paper_success_alpha_eps": ("" if paper["success_alpha_eps"] is None
                                           else f"{paper['success_alpha_eps']:.2f}")}
        if result is not None:
            s = result.summary()
            row.update(accuracy=_pct(s["accuracy"]), attacked=s["attacked"])
            for name, r in _attacks(result):
                m = r.summary()
                row[f"{name}_success_eps"] = _pct(m["success_eps"])
                row[f"{name}_success_alpha_eps"] = (_pct(m["success_alpha_eps"])
                                                    if paper["alpha"] < 1 else "")
                row[f"{name}_evals_per_image"] = f"{m['grad_evals_per_attacked']:.0f}"
            if getattr(result, "members", None):
                row.update(exclusive_counts(result))
        rows.append(row)
    return rows


def markdown(rows, cols, dataset, header):
    eps = paper_table(dataset)["eps"]
    titles = {"alpha": "α", "beta": "β", "accuracy": "accuracy %", "attacked": "attacked",
              "paper_accuracy": "paper accuracy %", "paper_success_eps": f"paper @{eps:g} %",
              "paper_success_alpha_eps": f"paper @α·{eps:g} %"}
    titles.update({c: f"only {c[5:-4]} @{eps:g}" for c in cols if c.startswith("only_")})
    titles["cascade_adds_eps"] = f"cascade adds @{eps:g}"
    for col in cols:
        for suffix, title in (("_success_eps", f"@{eps:g} %"),
                              ("_success_alpha_eps", f"@α·{eps:g} %"),
                              ("_evals_per_image", "evals/img")):
            if col.endswith(suffix) and col not in titles:
                titles[col] = f"{col[:-len(suffix)]} {title}"
    lines = [f"<!-- {line} -->" for line in header] + [
        "", f"Table {paper_table(dataset)['table']} ({dataset}, ε={eps:g}): success rates are "
            "over the attacked (correctly classified) images; evals/img: gradient evaluations "
            "per attacked image; 'only X': images only that attack fooled at ε; 'cascade "
            "adds': images the worst case's cascade (APGD) fooled that no full member did; "
            "the paper columns are the paper's C&W L∞ results on the authors' models, not "
            "on this checkpoint.",
        "", "| " + " | ".join(titles[c] for c in cols) + " |",
        "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")) or "—" for c in cols) + " |")
    return "\n".join(lines) + "\n"


def write_table(results, dataset, stem, header):
    """Write ``stem``.md and ``stem``.csv; returns both paths."""
    cols = columns(results)
    rows = table_rows(results, dataset)
    text = markdown(rows, cols, dataset, header)
    write_atomic(stem + ".md", lambda handle: handle.write(text), mode="w")
    return stem + ".md", write_csv(stem + ".csv", [{c: r.get(c, "") for c in cols}
                                                   for r in rows], cols, header)
