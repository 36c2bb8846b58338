"""Table 1 of the paper: average K-L divergence between training and test set (Eq. 3), attack
success on the (untransformed) test set and test accuracy per data set, next to the paper's
values (on the authors' models), as Markdown, CSV and a JSON summary."""
from bsattack.outputs import save_json, save_text
from bsattack.report.csvfile import write_csv
from bsattack.report.tables import rate_with_interval

COLUMNS = ["dataset", "avg_kl", "kl_classes_converged", "success_pct", "successes", "attacked",
           "attack", "accuracy_pct", "correct", "tested", "paper_avg_kl", "paper_success_pct",
           "paper_accuracy_pct", "checkpoint"]
TITLES = {"dataset": "data", "avg_kl": "avg K-L", "kl_classes_converged": "grid converged",
          "success_pct": "success % [Wilson 95%]", "attacked": "attacked", "attack": "attack",
          "accuracy_pct": "accuracy % [Wilson 95%]", "tested": "test images",
          "paper_avg_kl": "paper avg K-L", "paper_success_pct": "paper success %",
          "paper_accuracy_pct": "paper accuracy %", "checkpoint": "checkpoint"}


def row(spec, class_results, attack_summary, accuracy, checkpoint, tested):
    """One row of the data set ``spec`` from the per-class :class:`ClassKL` list, a
    ``BlindspotResult.summary()`` at α=1, β=0 and the natural accuracy on the ``tested``
    images of the whole test set."""
    kl, success, acc = spec.paper.table1
    converged = sum(r.kl.converged for r in class_results)
    successes = (int(round(attack_summary["success_eps"] * attack_summary["attacked"]))
                 if attack_summary["attacked"] else 0)
    return {"dataset": spec.name,
            "avg_kl": round(sum(r.kl.value for r in class_results) / len(class_results), 4),
            "kl_classes_converged": f"{converged}/{len(class_results)}",
            "success_pct": round(100 * attack_summary["success_eps"], 2),
            "successes": successes, "attacked": attack_summary["attacked"],
            "attack": f"{attack_summary['attack']} (first {attack_summary['n']} test images, "
                      f"eps={attack_summary['eps']:g})",
            "accuracy_pct": round(100 * accuracy, 2), "correct": int(round(accuracy * tested)),
            "tested": tested, "paper_avg_kl": kl,
            "paper_success_pct": success, "paper_accuracy_pct": acc, "checkpoint": checkpoint}


def _cell(r, column):
    """A Markdown cell: the rates with their Wilson intervals from the counts beside them."""
    if column == "success_pct":
        return rate_with_interval(r["successes"], r["attacked"])
    if column == "accuracy_pct":
        return rate_with_interval(r["correct"], r["tested"])
    return "—" if r[column] is None else str(r[column])


def markdown(rows, header):
    shown = list(TITLES)
    lines = [f"<!-- {line} -->" for line in header]
    lines += ["| " + " | ".join(TITLES[c] for c in shown) + " |", "|" + "---|" * len(shown)]
    lines += ["| " + " | ".join(_cell(r, c) for c in shown) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write(stem, rows, header):
    """``stem``.md and ``stem``.csv."""
    write_csv(stem + ".csv", rows, COLUMNS, header)
    save_text(stem + ".md", markdown(rows, header))
    return stem + ".md", stem + ".csv"


def write_row(stem, row_, class_results, attack_summary, settings, tsne, perplexity, seed,
              per_class, grid, header):
    """The Table 1 row of one data set as ``stem``.md and .csv, under ``header`` and the K-L,
    attack and per-class lines, and ``stem``.json; returns the MD and CSV paths."""
    lines = header + [f"K-L: t-SNE ({tsne}, perplexity {perplexity:g}, seed {seed}) of "
                      f"{'all' if per_class is None else f'at most {per_class}'} train/test "
                      f"points per class, KDE Scott, {grid}x{grid} grid",
                      f"attack: {settings.describe()}",
                      "per-class K-L: " + ", ".join(f"{r.label}:{r.kl.value:.4f}"
                                                    for r in class_results)]
    paths = write(stem, [row_], lines)
    save_json(stem + ".json", {
        "kind": "table1", "dataset": row_["dataset"], "header": lines, "row": row_,
        "attacked": attack_summary["attacked"], "successes": row_["successes"],
        "per_class_kl": {str(r.label): r.kl.value for r in class_results}})
    return paths
