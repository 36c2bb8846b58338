"""`fetch`, `checkpoints`, `fetch-data`: get the challenge checkpoints and the data sets (the
work is in :mod:`bsattack.pipelines.fetching`)."""
import click

from bsattack.commands.common import progressbar
from bsattack.commands.options import DATASETS, DatasetChoice
from bsattack.pipelines import fetching


@click.command()
@click.argument("name")
@click.option("--dest", type=click.Path(file_okay=False), default=None,
              help="Folder to hold the checkpoint files [default: checkpoints/NAME].")
def fetch(name, dest):
    """Download checkpoint NAME (see 'cli.py checkpoints'), verify its SHA-256 and unpack it
    atomically; a no-op when it is already present."""
    fetching.fetch_checkpoint(name, dest, echo=click.echo, progress=progressbar)


@click.command()
def checkpoints():
    """List the manifest's checkpoints and which are present in checkpoints/ (step, size)."""
    rows = [("name", "data", "present", "step", "size", "source")]
    rows += [(c.name, c.dataset, "yes" if c.present else "no",
              "-" if c.step is None else str(c.step),
              "-" if c.size is None else f"{c.size / 1e6:.1f} MB", c.source)
             for c in fetching.list_checkpoints()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    click.echo(f"(folder: {fetching.CHECKPOINTS_DIR}; get one with 'python cli.py fetch NAME')")


@click.command("fetch-data")
@click.argument("spec", type=DatasetChoice(sorted(DATASETS)))
@click.option("--dest", type=click.Path(file_okay=False), default=None,
              help="Folder for the files [default: the project's data/NAME].")
def fetch_data(spec, dest):
    """Download data set NAME from its canonical mirror, checking each file's SHA-256; files
    already present with the right checksum are kept."""
    fetching.fetch_data(spec, dest, echo=click.echo, progress=progressbar)
