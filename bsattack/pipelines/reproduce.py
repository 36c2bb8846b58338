"""The record of one reproduction run and its results page.

:class:`Run` records the environment (:mod:`bsattack.environment`: versions, CPU flags, the
network's raw rate at the start, checkpoint and data hashes, which data sets could not be run
and why) of the data sets' specs and the checkpoints the command resolved, times each step and
counts the gradient evaluations it ran, saves all of it as ``reproduce.json`` in the output
folder and renders ``README.md`` there (:mod:`bsattack.report.readme`).
"""
import contextlib
import json
import os
import time

from bsattack import data, environment
from bsattack.datasets import DATASETS, PAPER_TABLE_DATASETS
from bsattack.outputs import check_writable_dir, save_json
from bsattack.paths import CHECKPOINTS_DIR
from bsattack.report import readme, tables


class Run:
    """One run of `reproduce` writing into ``out`` (checked writable at once), its command
    line ``command``."""

    def __init__(self, out, command, echo=print):
        check_writable_dir(out, f"--out {out}")
        self.out, self.echo = out, echo
        self.record = {"command": command, "steps": [], "environment": {}, "missing": {}}

    def environment(self, checkpoints, data_dir, validation_size, precision="fp32"):
        """Versions, CPU, the attacks' precision, checkpoints, data files and the raw rate
        (in that precision) of each adversarially trained network; the paper's other data
        sets that this run cannot reach.  ``checkpoints``: [(data set spec, (adversarially
        trained, naturally trained) resolved checkpoint paths)]."""
        env = {"versions": environment.versions(), "cpu": environment.cpu(),
               "precision": precision, "checkpoints": [], "data": [], "raw_rates": []}
        for spec, paths in checkpoints:
            env["checkpoints"] += [entry for entry in map(environment.checkpoint_entry, paths)
                                   if entry not in env["checkpoints"]]
            env["data"] += environment.data_files(spec, data_dir)
            split = data.load(spec, data_dir, validation_size, echo=self.echo)
            rate = environment.raw_rate(spec, paths[0], split, precision=precision)
            env["raw_rates"].append({"dataset": spec.name, "batch": 500, "rate": rate})
            self.echo(f"{spec.name}: the network does {rate:,.0f} image-gradients/s "
                      f"(forward+backward, {precision}, batch 500)")
        self.record["environment"] = env
        self.record["missing"] = {spec.name: unreachable(spec, data_dir)
                                  for spec in DATASETS.values()
                                  if spec.name not in PAPER_TABLE_DATASETS}

    @contextlib.contextmanager
    def step(self, name, evals_from=None):
        """Time the enclosed step; ``evals_from``: the table summary whose cells count the
        gradient and forward-only evaluations the step ran."""
        self.echo(f"== {name}")
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        evals = forward = None
        if evals_from:
            with open(os.path.join(self.out, evals_from)) as handle:
                cells = json.load(handle)["cells"]
            evals = sum(c.get("new_grad_evals", 0) for c in cells)
            forward = sum(c.get("new_forward_evals", 0) for c in cells)
        self.record["steps"].append({"name": name, "seconds": seconds, "new_grad_evals": evals,
                                     "new_forward_evals": forward})
        self.echo(f"   {name}: {seconds:,.0f} s"
                  + ("" if evals is None else f", {evals:,} gradient and {forward:,} forward "
                                              f"evaluations run"))

    def finish(self):
        """Save the record and print where the time went."""
        save_json(os.path.join(self.out, readme.RECORD), self.record)
        total = sum(s["seconds"] for s in self.record["steps"])
        self.echo("where the time went:")
        for s in self.record["steps"]:
            self.echo(f"  {s['seconds']:8,.0f} s  {100 * s['seconds'] / max(total, 1e-9):5.1f}%"
                      f"  {s['name']}")
        self.echo(f"  {total:8,.0f} s  in all")

    def write_report(self, rerender_tables=False):
        """Render the results page (named as written by this command) and print each claim's
        verdict; returns the page's path.  ``rerender_tables``: first render the tables'
        Markdown again from their CSV and JSON (``reproduce --report-only``)."""
        if rerender_tables:
            for path in tables.rerender(self.out, rendered_by=self.record["command"]):
                self.echo(f"wrote {path}")
        path, checked = readme.write(self.out, DATASETS.values(),
                                     rendered_by=self.record["command"])
        self.echo("the paper's claims, checked:")
        for number, claim in enumerate(checked, 1):
            self.echo(f"  {number}. {claim.verdict}: {claim.claim}")
        return path


def unreachable(spec, data_dir):
    """Why ``reproduce`` does not test the claims of the data set ``spec`` (its data and
    checkpoints found or not, without downloading)."""
    have_data = data.locate(spec, data_dir) is not None
    have_checkpoint = os.path.isdir(os.path.join(CHECKPOINTS_DIR, spec.default_checkpoint))
    if have_data and have_checkpoint:
        return (f"reproduce runs {', '.join(PAPER_TABLE_DATASETS)} only; run "
                f"`python cli.py figures --dataset {spec.name}` for it")
    lacking = [what for what, present in (("data", have_data), ("checkpoints", have_checkpoint))
               if not present]
    return (f"the {spec.name} {' and '.join(lacking)} were not available to this run (no local "
            f"copy; `python cli.py fetch-data {spec.name}` and `python cli.py fetch "
            f"{spec.default_checkpoint}` download them)")
