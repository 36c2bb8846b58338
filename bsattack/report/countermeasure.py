"""The countermeasure table: one row per model (from
:func:`bsattack.pipelines.beyond.countermeasure_row`), as CSV and Markdown, percentages in
points."""
from bsattack.outputs import save_text
from bsattack.report.csvfile import write_csv


def _fmt(column, value):
    return f"{100 * value:.1f}" if isinstance(value, float) else str(value)


def write(rows, stem, header):
    """``stem``.csv and ``stem``.md; returns the stem."""
    columns = list(rows[0])
    write_csv(stem + ".csv", rows, columns, header, cell=_fmt)
    lines = [f"<!-- {line} -->" for line in header] + [
        "", "Percentages; robust accuracy = accuracy × (1 − success at ε) on the first N test "
            "images; map means over the grid points with α < 1.", "",
        "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(c, r[c]) for c in columns) + " |" for r in rows]
    save_text(stem + ".md", "\n".join(lines) + "\n")
    return stem
