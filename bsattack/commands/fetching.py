"""`fetch`, `checkpoints`, `fetch-data`: get the challenge checkpoints and the data sets."""
import os

import click

from bsattack.datasets import DATASETS
from bsattack.commands.common import progressbar
from bsattack.commands.options import DatasetChoice
from bsattack.paths import CHECKPOINTS_DIR


@click.command()
@click.argument("name")
@click.option("--dest", type=click.Path(file_okay=False), default=None,
              help="Folder to hold the checkpoint files [default: checkpoints/NAME].")
def fetch(name, dest):
    """Download checkpoint NAME (see 'cli.py checkpoints'), verify its SHA-256 and unpack it
    atomically; a no-op when it is already present."""
    from bsattack import manifest
    manifest.fetch_checkpoint(name, dest, echo=click.echo, progress=progressbar)


@click.command()
def checkpoints():
    """List the manifest's checkpoints and which are present in checkpoints/ (step, size)."""
    from bsattack import manifest
    entries = manifest.load()
    rows = [("name", "data", "present", "step", "size", "source")]
    for entry in entries.values():
        found = manifest.status(os.path.join(CHECKPOINTS_DIR, entry.name))
        rows.append((entry.name, entry.dataset, "yes" if found.present else "no",
                     str(found.step) if found.present else "-",
                     f"{found.size / 1e6:.1f} MB" if found.present else "-",
                     entry.url or "ships with the project"))
    others = sorted(d for d in os.listdir(CHECKPOINTS_DIR) if d not in entries
                    and not d.startswith(".") and os.path.isdir(os.path.join(CHECKPOINTS_DIR, d)))
    for folder in others:
        found = manifest.status(os.path.join(CHECKPOINTS_DIR, folder))
        if found.present:
            rows.append((folder, "?", "yes", str(found.step), f"{found.size / 1e6:.1f} MB",
                         "local folder, not in the manifest"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    click.echo(f"(folder: {CHECKPOINTS_DIR}; get one with 'python cli.py fetch NAME')")


@click.command("fetch-data")
@click.argument("spec", type=DatasetChoice(sorted(DATASETS)))
@click.option("--dest", type=click.Path(file_okay=False), default=None,
              help="Folder for the files [default: the project's data/NAME].")
def fetch_data(spec, dest):
    """Download data set NAME from its canonical mirror, checking each file's SHA-256; files
    already present with the right checksum are kept."""
    from bsattack import data
    data.fetch_data(spec, dest, echo=click.echo, progress=progressbar)
