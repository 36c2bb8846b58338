"""Click options shared by every command, and the checkpoint/data resolution behind them.

Every float option uses :class:`FiniteFloat` (NaN and ±inf refused at parse time, optional
bounds as ``click.FloatRange``) and every seed :data:`SEED` (0 .. 2**32 - 1, numpy's range)."""
import math
import os

import click

from bsattack.datasets import DATASETS, get_spec
from bsattack.errors import BsattackError

CHECKPOINTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "checkpoints")


SEED_MAX = 2**32 - 1     # numpy.random.RandomState / default_rng accept 0 .. 2**32 - 1


class FiniteFloat(click.FloatRange):
    """A float option that refuses NaN and ±inf; ``min``/``max``/``min_open``/``max_open`` as
    in ``click.FloatRange`` (which lets NaN through: every comparison with NaN is false)."""

    name = "float"

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)

    def _describe_range(self):
        return "finite" if self.min is None and self.max is None else super()._describe_range()


SEED = click.IntRange(0, SEED_MAX)


def dataset_option(default="mnist"):
    return click.option("--dataset", type=click.Choice(sorted(DATASETS)), default=default,
                        show_default=True, help="Data set (sets ε, model and data files).")


checkpoint_option = click.option(
    "--checkpoint", type=str, default=None,
    help="Checkpoint directory or prefix, or a name from 'cli.py checkpoints' "
         "[default: the data set's adversarially trained model].")
data_dir_option = click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                               help="Folder holding the data set's files.")
n_option = click.option("--n", "n", type=click.IntRange(min=1), default=None,
                        help="Use the first N test images.")
batch_size_option = click.option("--batch-size", type=click.IntRange(min=1), default=500,
                                 show_default=True, help="Images per session.run.")
validation_size_option = click.option(
    "--validation-size", type=click.IntRange(min=0), default=5000, show_default=True,
    help="Training images held out at the start of the file (Madry split: 5,000).")
seed_option = click.option("--seed", type=SEED, default=0, show_default=True,
                           help=f"Random seed (0 to {SEED_MAX}).")


def out_option(default=None, help="Output file or folder."):
    return click.option("--out", type=click.Path(), default=default, show_default=True, help=help)


def resolve_checkpoint(dataset, checkpoint=None, natural=False):
    """A checkpoint path for ``--checkpoint``: an existing path, a name under ``checkpoints/``,
    or (when None) the data set's default adversarially (or naturally) trained model."""
    spec = get_spec(dataset)
    name = checkpoint or (spec.natural_checkpoint if natural else spec.default_checkpoint)
    if os.path.exists(name) or os.path.exists(name + ".index"):
        return name
    local = os.path.join(CHECKPOINTS_DIR, name)
    if os.path.isdir(local):
        return local
    if checkpoint and (os.sep in checkpoint or checkpoint.startswith(".")):
        raise BsattackError(f"checkpoint directory not found: {checkpoint}")
    from bsattack import manifest  # it imports CHECKPOINTS_DIR from here
    entry = manifest.load().get(name)
    if entry is not None and entry.url:
        click.echo(f"checkpoint '{name}' not in {CHECKPOINTS_DIR}; downloading it", err=True)
        try:
            return manifest.fetch_checkpoint(name)
        except BsattackError as exc:
            raise BsattackError(f"checkpoint '{name}' not found in {CHECKPOINTS_DIR} and the "
                                f"download failed ({exc}); run 'python cli.py fetch {name}' "
                                f"when online or pass --checkpoint DIR") from None
    raise BsattackError(f"checkpoint '{name}' not found (not a path, not in {CHECKPOINTS_DIR}); "
                        f"run 'python cli.py fetch {name}' or pass --checkpoint DIR")
