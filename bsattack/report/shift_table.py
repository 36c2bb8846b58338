"""The shift-family table: the rows of :func:`bsattack.shift_verdicts.shift_rows` (accuracy
and attack success at ε of every setting against the original test set, with the blind-spot
verdict), and optionally the detectability of each setting (:mod:`bsattack.detect`) next to its
rise in success, as Markdown (with the family verdicts) and CSV.

Public API: ``write_table(rows, stem, header, extra_columns)``, ``auroc_header``.
"""
from bsattack.outputs import save_text
from bsattack.report.csvfile import write_csv
from bsattack.shift_verdicts import RISE_SIGMAS, family_verdicts

COLUMNS = ["setting", "family", "strength", "accuracy", "accuracy_n", "accuracy_change",
           "attacked", "success_eps", "success_rise", "rise_se", "blind_spot", "why"]


def _fmt(key, value):
    if not isinstance(value, float):
        return str(value)
    if key in ("accuracy_change", "success_rise"):
        return f"{100 * value:+.1f}"
    if key in ("accuracy", "success_eps", "rise_se"):
        return f"{100 * value:.1f}"
    return f"{value:.3f}"


def auroc_header(k, n_detect, extractors):
    """The header line of the AUROC columns: the Eq. 2 distance and the ``extractors``
    ({name: checkpoint}) it was measured with."""
    names = ", ".join(f"{name}={path}" for name, path in extractors.items())
    return (f"AUROC: Eq. 2 distance (k={k}, p=2) of the first {n_detect} test images, "
            f"shifted vs original; extractors {names}")


def write_table(rows, stem, header, extra_columns=()):
    """``stem``.md (with the family verdicts) and ``stem``.csv; percentages in points."""
    columns = COLUMNS + list(extra_columns)
    write_csv(stem + ".csv", rows, columns, header, cell=_fmt)
    lines = [f"<!-- {line} -->" for line in header] + [
        "", "Percentages in points; a blind spot = accuracy within 1 point of the original and "
            f"success at ε up by more than {RISE_SIGMAS:g} standard errors.", "",
        "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(c, r.get(c, "")) or "—" for c in columns) + " |" for r in rows]
    lines += ["", "| family | blind spot at strengths |", "|---|---|"]
    lines += [f"| {f} | {', '.join(v) if v else 'none'} |"
              for f, v in family_verdicts(rows).items()]
    save_text(stem + ".md", "\n".join(lines) + "\n")
    return stem
