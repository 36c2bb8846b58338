"""CSV headers: a header line stays one ``#`` line whatever breaks it holds."""
import csv

from bsattack.report.csvfile import LINE_BREAKS, write_csv


def test_every_line_break_splitlines_knows_is_escaped(tmp_path):
    breaks = "".join(chr(c) for c in range(0x110000) if len(f"a{chr(c)}b".splitlines()) > 1)
    assert set(breaks) == set(LINE_BREAKS)
    path = tmp_path / "t.csv"
    write_csv(str(path), [{"a": 1}], ["a"], [f"command: python cli.py --out 'x{breaks}y'"])
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("# command:")
    assert list(csv.DictReader(line for line in lines if not line.startswith("#"))) == [
        {"a": "1"}]
