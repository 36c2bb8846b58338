"""Click options shared by the commands, and the two lookups the commands make of what the
options name: :func:`bsattack.datasets.get_spec` (``--dataset`` -> its ``DatasetSpec``, made by
:class:`DatasetChoice` as Click parses the option, so a command receives the spec as ``spec``)
and :func:`bsattack.manifest.resolve_checkpoint` (``--checkpoint`` -> a checkpoint path, once
per option in the command).  Below the commands nothing looks a name up again.

Every float option uses :class:`FiniteFloat` (NaN and ±inf refused at parse time, optional
bounds as ``click.FloatRange``) and every seed :data:`SEED` (0 .. 2**32 - 1, numpy's range)."""
import math

import click

from bsattack import distance, divergence
from bsattack.datasets import DATASETS, PAPER_N, PAPER_TABLE_DATASETS, DatasetSpec
from bsattack.datasets import get_spec  # (the commands' name -> spec)
from bsattack.errors import BsattackError
from bsattack.limits import SEED_MAX
from bsattack.manifest import resolve_checkpoint  # noqa: F401  (the commands' one import)
from bsattack.paths import CACHE_DIR, RESULTS_DIR  # noqa: F401  (the default folders)


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


class DatasetChoice(click.Choice):
    """One of the data sets ``names`` on the command line, its :class:`DatasetSpec` in the
    command (its default too).  A value that is a spec already is kept, as Click asks of a
    type's ``convert``."""

    def convert(self, value, param, ctx):
        if isinstance(value, DatasetSpec):
            return value
        return get_spec(super().convert(value, param, ctx))


def dataset_option(default="mnist"):
    """``--dataset NAME``, handed to the command as ``spec`` (its :class:`DatasetSpec`)."""
    return click.option("--dataset", "spec", type=DatasetChoice(sorted(DATASETS)),
                        default=default, show_default=True,
                        help="Data set (sets ε, model and data files).")


def paper_dataset_option(default="fashion"):
    """``--dataset`` among the data sets the paper has an (α, β) table for, handed to the
    command as ``spec``."""
    return click.option("--dataset", "spec", type=DatasetChoice(PAPER_TABLE_DATASETS),
                        default=default, show_default=True)


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


def attacked_n_option(default=PAPER_N):
    """``--n``: the first N test images an experiment attacks (``default``: the paper's)."""
    return click.option("--n", "n", type=click.IntRange(min=1), default=default,
                        show_default=True, help="Attack the first N test images.")


cache_dir_option = click.option("--cache-dir", type=click.Path(file_okay=False),
                                default=CACHE_DIR, show_default=True,
                                help="Folder of the HDF5 caches (per-image results, embeddings; "
                                     "resumable).")


def check_blind_spot(alpha, beta):
    """Refuse ``--alpha``/``--beta`` outside the paper's range (0 < α ≤ 1, |β| ≤ (1 − α)/2)
    before any work."""
    from bsattack.transforms import validate
    validate(alpha, beta)


def executor_options(command):
    """``--workers`` and ``--ray-address``: where the chunks are computed (see
    :mod:`bsattack.parallel`); without them, in this process."""
    command = click.option(
        "--ray-address", default=None, metavar="ADDR",
        help="Join the Ray cluster at ADDR (e.g. 10.0.0.1:6379 after 'ray start --head') and "
             "compute the chunks on its workers.")(command)
    return click.option(
        "--workers", type=click.IntRange(min=1), default=None,
        help="Compute the chunks on N Ray workers (a local Ray unless --ray-address); "
             "needs pip install '.[ray]'.  [default: this process]")(command)


def executor_from_options(workers, ray_address):
    """The executor of ``--workers``/``--ray-address`` (a context manager)."""
    from bsattack.parallel import make_executor
    return make_executor(workers, ray_address)


def precision_option(note="Every prediction in the results is float32's."):
    """``--precision fp32|bf16|auto``: the arithmetic of the attacks' gradient oracle; ``note``
    ends its help (what stays float32 in the command)."""
    from bsattack import precision
    return click.option(
        "--precision", type=click.Choice(precision.CHOICES), default=precision.DEFAULT,
        show_default=True,
        help="The attacks' gradient oracle: fp32, bf16 (mixed precision: oneDNN's bfloat16 "
             "rewrite on a CPU with native bfloat16, fp32 on one without; the GPU's own mixed "
             "precision) or auto (bf16 where the "
             f"hardware runs it natively). {note}")


def chosen_precision(requested, echo, float32_only=None):
    """The precision ``requested`` resolves to, said in one line when it was 'auto' or is not
    what was asked (bf16 on a CPU without native bfloat16).  A command that runs in float32
    only (``float32_only``: why) refuses bf16 and takes auto as fp32."""
    from bsattack import precision
    if float32_only and requested != "fp32":
        if requested == "bf16":
            raise BsattackError(f"--precision bf16: {float32_only}")
        chosen, why = "fp32", float32_only
    else:
        chosen, why = precision.resolve(requested)
    if requested == "auto" or why not in ("requested", float32_only):
        echo(f"--precision {requested}: {chosen} ({why})")
    return chosen


# the measures of Figures 1-3 and 5 (D of Eq. 2) and of Table 1 (K-L of Eq. 3)
k_option = click.option("--k", type=click.IntRange(min=1), default=distance.DEFAULT_K,
                        show_default=True, help="Nearest training points averaged in D (Eq. 2).")
p_option = click.option("--p", type=FiniteFloat(min=1), default=distance.DEFAULT_P,
                        show_default=True, help="The lp norm of D (Eq. 2).")


def _even(ctx, param, value):
    if value % 2:
        raise click.BadParameter(f"{value} is odd; the convergence check halves the grid")
    return value


grid_option = click.option("--grid", type=click.IntRange(min=2), default=divergence.DEFAULT_GRID,
                           show_default=True, callback=_even,
                           help="Integration grid intervals per axis (even).")
tsne_option = click.option("--tsne", type=click.Choice(divergence.TSNE_METHODS),
                           default="opentsne", show_default=True, help="t-SNE implementation.")
perplexity_option = click.option("--perplexity", type=FiniteFloat(min=1),
                                 default=divergence.DEFAULT_PERPLEXITY, show_default=True)
