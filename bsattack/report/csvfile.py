"""CSV files of report rows, with ``#`` comment lines saying what made them; written atomically."""
import csv

from bsattack.outputs import write_file


def _cell(value):
    return f"{value:.6g}" if isinstance(value, float) else value


def comment(line):
    """A header line as one ``#`` comment line, whatever it contains (line breaks escaped)."""
    return "# " + str(line).replace("\r", "\\r").replace("\n", "\\n")


def write_csv(path, rows, columns, header=(), cell=None):
    """``rows`` (dicts) as CSV with ``columns``, after ``#`` lines of ``header``; a cell is
    ``cell(column, value)`` when given, else floats with 6 significant digits.  Atomic."""
    def write(handle):
        for line in header:
            handle.write(comment(line) + "\n")
        writer = csv.DictWriter(handle, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({c: cell(c, r.get(c, "")) if cell else _cell(r[c]) for c in columns}
                         for r in rows)
    write_file(path, write, mode="w")
    return path
