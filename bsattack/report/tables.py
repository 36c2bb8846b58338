"""Tables 2 (MNIST) and 3 (Fashion-MNIST) of the paper: accuracy on x' = α·x + β and attack
success at ε and α·ε over the paper's (α, β) grid, with the paper's numbers alongside
(``paper_tables.json``), as Markdown and CSV.  For the worst case, each full member's own
columns come first, then the worst case's.  Renders results; runs nothing.
"""
import csv
import glob
import json
import os

import numpy as np

from bsattack import stats
from bsattack.outputs import save_json, save_text
from bsattack.report.csvfile import write_csv

PAPER_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "paper_tables.json")
PAPER_COLUMNS = ["paper_accuracy", "paper_success_eps", "paper_success_alpha_eps"]


def paper_table(dataset):
    """{'table': number, 'eps': ε, 'rows': [...]} of the paper for ``dataset``."""
    with open(PAPER_FILE) as handle:
        return json.load(handle)[dataset]


def _pct(value):
    return "" if value is None else f"{100 * value:.2f}"


def rate_with_interval(k, n, unit=""):
    """'p<unit> [low, high]': the rate k/n in percent with its Wilson 95% interval ('—' when
    n is 0); every rate the report shows is written by this."""
    if not n:
        return "—"
    rate = stats.wilson(k, n)
    return f"{100 * rate.value:.2f}{unit} [{100 * rate.low:.1f}, {100 * rate.high:.1f}]"


def _attacks(result):
    """[(column prefix, result)]: the full members of a worst case first, then itself."""
    members = getattr(result, "members", None) or {}
    return [(name, r) for name, r in members.items()] + [(result.attack, result)]


def columns(results):
    cols = ["alpha", "beta", "accuracy", "attacked"]
    for name, _ in _attacks(results[0]) if results else []:
        cols += [f"{name}_success_eps", f"{name}_success_alpha_eps", f"{name}_evals_per_image"]
    if results and results[0].settings.uses_forward_queries:
        cols.append(f"{results[0].attack}_forward_per_image")
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
                if "forward_evals_per_attacked" in m:
                    row[f"{name}_forward_per_image"] = f"{m['forward_evals_per_attacked']:.0f}"
            if getattr(result, "members", None):
                row.update(exclusive_counts(result))
        rows.append(row)
    return rows


def _with_intervals(rows, cells):
    """Markdown rows: the accuracy (correctly classified of the images) and every success rate
    replaced by the rate with its Wilson interval."""
    shown = []
    for row, cell in zip(rows, cells):
        row = dict(row)
        if cell is not None:
            row["accuracy"] = rate_with_interval(cell["attacked"], cell["n"])
            for name, counts in cell["attacks"].items():
                for key in ("eps", "alpha_eps"):
                    column = f"{name}_success_{key}"
                    if row.get(column, "") != "":
                        row[column] = rate_with_interval(counts[key], cell["attacked"])
        shown.append(row)
    return shown


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
                              ("_evals_per_image", "evals/img"),
                              ("_forward_per_image", "forward/img")):
            if col.endswith(suffix) and col not in titles:
                titles[col] = f"{col[:-len(suffix)]} {title}"
    lines = [f"<!-- {line} -->" for line in header] + [
        "", f"Table {paper_table(dataset)['table']} ({dataset}, ε={eps:g}): accuracy is over "
            "the N transformed test images, success rates over the attacked (correctly "
            "classified) ones, both in % with their Wilson 95% interval; evals/img: gradient evaluations "
            "per attacked image; forward/img: forward-only evaluations (Square's queries) "
            "per attacked image; 'only X': images only that attack fooled at ε; 'cascade "
            "adds': images the worst case's cascade (the members after C&W and PGD, named in the "
            "attack line) fooled that neither did; "
            "the paper columns are the paper's C&W L∞ results on the authors' models, not "
            "on this checkpoint.",
        "", "| " + " | ".join(titles[c] for c in cols) + " |",
        "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")) or "—" for c in cols) + " |")
    return "\n".join(lines) + "\n"


def cell_counts(result):
    """The counts behind one cell (a :class:`bsattack.experiment.BlindspotResult`): images,
    correctly classified (= attacked), per attack (the full members, then the result itself)
    the successes at ε and α·ε and the gradient evaluations, and for each pair of full members
    the images only one of them fooled, at both thresholds."""
    attacked = result.correct
    attacks = {name: {"eps": int(r.success_eps[attacked].sum()),
                      "alpha_eps": int(r.success_alpha_eps[attacked].sum()),
                      "grad_evals": int(r.grad_evals.sum()),
                      "forward_evals": int(r.forward_evals.sum()),
                      "found_by": _found_by(r)}
               for name, r in _attacks(result)}
    members = list((getattr(result, "members", None) or {}).items())
    paired = []
    for i, (name_a, a) in enumerate(members):
        for name_b, b in members[i + 1:]:
            paired.append({"a": name_a, "b": name_b, **{
                key: {"only_a": int((sa & ~sb)[attacked].sum()),
                      "only_b": int((sb & ~sa)[attacked].sum())}
                for key, sa, sb in (("eps", a.success_eps, b.success_eps),
                                    ("alpha_eps", a.success_alpha_eps, b.success_alpha_eps))}})
    return {"alpha": result.alpha, "beta": result.beta, "n": len(result.label),
            "attacked": int(attacked.sum()), "thresholds": list(result.thresholds),
            "attacks": attacks, "paired": paired,
            "seconds": float(result.seconds), "new_grad_evals": int(result.new_grad_evals),
            "new_forward_evals": int(result.new_forward_evals),
            "compute_seconds": (float(result.compute_seconds)
                                if np.isfinite(result.compute_seconds) else None),
            "raw_rate": float(result.raw_rate)}


def _found_by(result):
    """{attack name: successes at ε it found} of a worst case's records."""
    names, counts = np.unique(result.found_by[result.success_eps].astype(str),
                              return_counts=True)
    return {str(k): int(v) for k, v in zip(names, counts) if k}


def summary(results, dataset, header):
    """The machine-readable table: the paper's rows, our cells' counts, the header lines."""
    ours = {(r.alpha, r.beta): r for r in results}
    table = paper_table(dataset)
    cells = []
    for paper in table["rows"]:
        result = ours.get((paper["alpha"], paper["beta"]))
        cells.append({"paper": paper, **(cell_counts(result) if result is not None else {})})
    first = results[0] if results else None
    return {"kind": "table", "dataset": dataset, "table": table["table"], "eps": table["eps"],
            "header": list(header),
            "attack": first.settings.describe() if first else "",
            "settings": first.settings.key() if first else {},
            "checkpoint": first.checkpoint if first else "", "cells": cells}


def _table_markdown(rows, cols, data, header):
    """The Markdown of a table: ``rows`` (the CSV's), ``data`` (its summary: the counts)."""
    cells = [cell if "attacked" in cell else None for cell in data["cells"]]
    return markdown(_with_intervals(rows, cells), cols, data["dataset"], header)


def write_table(results, dataset, stem, header):
    """Write ``stem``.md, ``stem``.csv and ``stem``.json (the counts); returns the paths."""
    cols = columns(results)
    rows = table_rows(results, dataset)
    data = summary(results, dataset, header)
    save_text(stem + ".md", _table_markdown(rows, cols, data, header))
    save_json(stem + ".json", data)
    return stem + ".md", write_csv(stem + ".csv", [{c: r.get(c, "") for c in cols}
                                                   for r in rows], cols, header)


def rerender(folder, rendered_by):
    """Render again the Markdown of every table in ``folder`` from the CSV (its rows) and the
    JSON (its counts and header) the table command wrote, so that a page follows the current
    rendering without running an attack; the header gains a line naming ``rendered_by``.
    Returns the paths written."""
    written = []
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(path) as handle:
            data = json.load(handle)
        stem = path[:-len(".json")]
        if data.get("kind") != "table" or not os.path.exists(stem + ".csv"):
            continue
        with open(stem + ".csv", newline="") as handle:
            reader = csv.DictReader(line for line in handle if not line.startswith("#"))
            rows = list(reader)
        name = os.path.basename(stem)
        header = list(data["header"]) + [
            f"rendered from {name}.json and {name}.csv by: {rendered_by}"]
        save_text(stem + ".md", _table_markdown(rows, reader.fieldnames, data, header))
        written.append(stem + ".md")
    return written
