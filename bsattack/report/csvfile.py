"""CSV files of report rows, with ``#`` comment lines saying what made them; written atomically."""
import csv

from bsattack.outputs import write_file


def _cell(value):
    return f"{value:.6g}" if isinstance(value, float) else value


# every character str.splitlines breaks a line at, and how it is written in a header
LINE_BREAKS = {"\n": "\\n", "\r": "\\r", "\v": "\\v", "\f": "\\f", "\x1c": "\\x1c",
               "\x1d": "\\x1d", "\x1e": "\\x1e", "\x85": "\\x85", "\u2028": "\\u2028",
               "\u2029": "\\u2029"}


def comment(line):
    """A header line as one ``#`` comment line, whatever it contains (every line break that
    ``str.splitlines`` knows escaped)."""
    return "# " + str(line).translate(str.maketrans(LINE_BREAKS))


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
