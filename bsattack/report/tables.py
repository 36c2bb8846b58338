"""Tables 2 (MNIST) and 3 (Fashion-MNIST) of the paper: accuracy on x' = α·x + β and attack
success at ε and α·ε over the paper's (α, β) grid, with the paper's numbers alongside
(``paper_tables.json``), as Markdown and CSV.

``run_table(dataset, checkpoint, attack, n, settings, ...)`` runs (or reads from the cache)
every setting through :func:`bsattack.experiment.run_blindspot` and rewrites both files after
each one, so a partial run still leaves a valid (marked incomplete) table.
"""
import json
import os

from bsattack.atomic import write_atomic
from bsattack.experiment import run_blindspot
from bsattack.report.csvfile import write_csv

PAPER_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "paper_tables.json")
COLUMNS = ["alpha", "beta", "accuracy", "success_eps", "success_alpha_eps", "attacked",
           "paper_accuracy", "paper_success_eps", "paper_success_alpha_eps"]


def paper_table(dataset):
    """{'table': number, 'eps': ε, 'rows': [...]} of the paper for ``dataset``."""
    with open(PAPER_FILE) as handle:
        return json.load(handle)[dataset]


def _pct(value):
    return "" if value is None else f"{100 * value:.2f}"


def table_rows(summaries, dataset):
    """Our summaries (from ``BlindspotResult.summary()``) next to the paper's rows."""
    ours = {(s["alpha"], s["beta"]): s for s in summaries}
    rows = []
    for paper in paper_table(dataset)["rows"]:
        s = ours.get((paper["alpha"], paper["beta"]))
        rows.append({
            "alpha": str(paper["alpha"]), "beta": str(paper["beta"]),
            "accuracy": _pct(s["accuracy"]) if s else "",
            "success_eps": _pct(s["success_eps"]) if s else "",
            "success_alpha_eps": (_pct(s["success_alpha_eps"]) if s and paper["alpha"] < 1
                                  else ""),
            "attacked": s["attacked"] if s else "",
            "paper_accuracy": f"{paper['accuracy']:.1f}",
            "paper_success_eps": f"{paper['success_eps']:.2f}",
            "paper_success_alpha_eps": ("" if paper["success_alpha_eps"] is None
                                        else f"{paper['success_alpha_eps']:.2f}")})
    return rows


def markdown(rows, dataset, header):
    eps = paper_table(dataset)["eps"]
    lines = [f"<!-- {line} -->" for line in header] + [
        "", f"Table {paper_table(dataset)['table']} ({dataset}, ε={eps:g}): success rates are "
            "over the attacked (correctly classified) images; the paper columns are the paper's "
            "C&W L∞ results on the authors' models, not on this checkpoint.",
        "", f"| α | β | accuracy % | success @{eps:g} % | success @α·{eps:g} % | attacked | "
            f"paper accuracy % | paper @{eps:g} % | paper @α·{eps:g} % |",
        "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| " + " | ".join(str(r[c]) if r[c] != "" else "—" for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def write_table(summaries, dataset, stem, header):
    """Write ``stem``.md and ``stem``.csv; returns both paths."""
    rows = table_rows(summaries, dataset)
    text = markdown(rows, dataset, header)
    write_atomic(stem + ".md", lambda handle: handle.write(text), mode="w")
    return stem + ".md", write_csv(stem + ".csv", rows, COLUMNS, header)


def run_table(dataset, checkpoint, attack, n, settings, stem, header, data_dir=None,
              split=None, echo=print, **kwargs):
    """Every (α, β) of the paper's table for ``dataset``; the files are rewritten after each
    setting.  Returns the list of :class:`bsattack.experiment.BlindspotResult`."""
    results, grid = [], paper_table(dataset)["rows"]
    for k, row in enumerate(grid):
        result = run_blindspot(dataset, checkpoint, row["alpha"], row["beta"], attack, n,
                               data_dir=data_dir, settings=settings, split=split, echo=echo,
                               **kwargs)
        results.append(result)
        s = result.summary()
        echo(f"{dataset} α={s['alpha']:g} β={s['beta']:g}: accuracy {100 * s['accuracy']:.2f}%, "
             f"success @ε {100 * s['success_eps']:.2f}%, @α·ε {100 * s['success_alpha_eps']:.2f}% "
             f"({s['attacked']} attacked, {result.seconds:.0f} s)")
        status = [] if k + 1 == len(grid) else [f"INCOMPLETE: {k + 1} of {len(grid)} settings"]
        write_table([r.summary() for r in results], dataset, stem, header + status)
    return results
