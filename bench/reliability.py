"""Run the adversarial user's cases (tests/support/hostile_cases.py) and write the list of
cases, what happened (exit code, the one line) and whether each met its expectation, with a
summary per category, to ``--out``; its first line names the command that wrote it.

    python bench/reliability.py [--out results/reliability.md] [--category NAME]
"""
import datetime
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter

import click

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from support import hostile_cases  # noqa: E402  (tests/support/)
from bsattack import fetch  # noqa: E402
from bsattack.outputs import save_text  # noqa: E402


def _cell(text):
    return str(text).replace("|", "\\|").replace("`", "'")


@click.command()
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the Markdown report here too.")
@click.option("--category", default=None, help="Run only the cases of this category.")
def main(out, category):
    """Run every case and print the report."""
    fetch.MAX_EXTRACTED_BYTES = 1 << 20
    manifest_path = hostile_cases.manifest.MANIFEST_PATH
    cases = [c for c in hostile_cases.CASES if category in (None, c.category)]
    start, rows, totals, met, lost = time.perf_counter(), [], Counter(), Counter(), Counter()
    try:
        with tempfile.TemporaryDirectory(prefix="bsattack-reliability-") as work:
            for i, item in enumerate(cases):
                box = os.path.join(work, f"case{i:03d}", "box")
                os.makedirs(box)
                outcome = hostile_cases.run_case(item, box)
                hostile_cases.manifest.MANIFEST_PATH = manifest_path
                totals[item.category] += 1
                met[item.category] += outcome.clean
                lost[item.category] += outcome.lost
                rows.append((item, outcome))
                click.echo(f"[{'met' if outcome.clean else 'NOT MET'}"
                           f"{', DATA LOST' if outcome.lost else ''}] {item.category} / "
                           f"{item.name}: exit {outcome.exit_code}: {outcome.what}", err=True)
    finally:
        hostile_cases.cleanup()
    seconds = time.perf_counter() - start
    command = "python bench/reliability.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:])
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    lines = [f"Written by `{command.strip()}` (commit `{commit}`, "
             f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}, "
             f"{seconds:.0f} s).", "",
             "# Reliability: the adversarial user's cases", "",
             " ".join(hostile_cases.__doc__.split("\n\n")[1].split()), "",
             "| category | cases | met the expectation | not met | data lost |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {name} | {totals[name]} | {met[name]} | {totals[name] - met[name]} | "
              f"{lost[name]} |" for name in totals]
    lines += [f"| **all** | {sum(totals.values())} | {sum(met.values())} | "
              f"{sum(totals.values()) - sum(met.values())} | {sum(lost.values())} |", ""]
    for name in totals:
        lines += [f"## {name}", "", "| case | expected | exit | what happened | met | data lost |",
                  "|---|---|---:|---|---|---|"]
        lines += [f"| {_cell(item.name)} | {_cell(item.expectation)} | {o.exit_code} | "
                  f"`{_cell(o.what)}` | {'yes' if o.clean else '**no**'} | "
                  f"{'**yes**' if o.lost else 'no'} |"
                  for item, o in rows if item.category == name]
        lines.append("")
    text = "\n".join(lines)
    click.echo(text)
    if out:
        save_text(out, text)
    sys.exit(0 if sum(met.values()) == len(rows) and not sum(lost.values()) else 1)


if __name__ == "__main__":
    main()
