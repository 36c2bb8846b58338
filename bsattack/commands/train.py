"""`train`: Madry adversarial (or natural) training; `export-weights`: a slot-free copy."""
import click

from bsattack.commands.common import progressbar
from bsattack.commands.options import (FiniteFloat, chosen_precision, data_dir_option,
                                       dataset_option, precision_option, resolve_checkpoint,
                                       seed_option, validation_size_option)

# the graph rewrite alone is no training recipe: on a GPU it is float16 without loss scaling,
# and the log's batch accuracies would be the mixed-precision network's
TRAINING_FLOAT32 = ("training runs in float32 (on a GPU the mixed-precision rewrite is "
                    "float16 without loss scaling, and the log's batch accuracies would not be "
                    "float32's)")


def _widths(ctx, param, value):
    if value is None:
        return None
    try:
        widths = tuple(int(v) for v in value.split(","))
    except ValueError:
        widths = ()
    if len(widths) != 3 or min(widths) < 1:
        raise click.BadParameter("expected three positive integers, e.g. 32,64,1024")
    return widths


@click.command()
@dataset_option()
@click.option("--eps", type=FiniteFloat(min=0, max=1), required=True,
              help="PGD budget in [0,1] pixel units (MNIST 0.3, Fashion-MNIST 0.1); 0 trains "
                   "naturally.")
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Folder for the checkpoints and train_log.json.")
@click.option("--steps", type=click.IntRange(min=1), default=100000, show_default=True,
              help="Final global step (the reference max_num_training_steps); with "
                   "--init-from the step count goes on from that checkpoint's.")
@click.option("--k", type=click.IntRange(min=1), default=40, show_default=True,
              help="PGD steps of the adversary.")
@click.option("--a", type=FiniteFloat(min=0, min_open=True), default=0.01,
              show_default=True, help="PGD step size.")
@click.option("--batch-size", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--lr", type=FiniteFloat(min=0, min_open=True), default=1e-4,
              show_default=True, help="Adam learning rate.")
@seed_option
@click.option("--save-every", type=click.IntRange(min=1), default=300, show_default=True,
              help="Checkpoint every N steps (and at the last one); the newest 3 are kept.")
@click.option("--resume", is_flag=True,
              help="Continue from the newest checkpoint in --out (weights, Adam state, step).")
@click.option("--init-from", type=str, default=None,
              help="Start from this checkpoint's weights and global step (fresh Adam state); "
                   "a path or a name from 'cli.py checkpoints'.")
@data_dir_option
@validation_size_option
@click.option("--augment", default="", metavar="SPEC",
              help="Batch augmentation: 'blindspot:ALPHA_MIN' trains on x' = αx + β with α, β "
                   "drawn per batch from the valid region, α ≥ ALPHA_MIN [default: none].")
@click.option("--widths", callback=_widths, default=None, hidden=True,
              help="conv1,conv2,fc1 widths of a narrow test network [default: 32,64,1024].")
@precision_option("Training (its PGD too) is float32 only: bf16 is refused, auto picks fp32.")
def train(spec, eps, out, steps, k, a, batch_size, lr, seed, save_every, resume, init_from,
          data_dir, validation_size, augment, widths, precision):
    """Train a MNIST-challenge network with Madry's recipe: Adam on the summed cross-entropy
    of PGD adversarial examples (random start), checkpoints in the official layout."""
    from bsattack import train as training
    chosen_precision(precision, click.echo, TRAINING_FLOAT32)
    settings = training.TrainSettings(
        dataset=spec, eps=eps, steps=steps, k=k, a=a, batch_size=batch_size,
        learning_rate=lr, seed=seed, save_every=save_every, validation_size=validation_size,
        augment=augment,
        **({"widths": widths} if widths else {}))
    init_from = resolve_checkpoint(spec, init_from) if init_from else None
    training.train(settings, out, data_dir, resume=resume, init_from=init_from, echo=click.echo,
                   progress=progressbar)


@click.command("export-weights")
@dataset_option()
@click.argument("source")
@click.argument("dest", type=click.Path(file_okay=False))
def export_weights(spec, source, dest):
    """Copy SOURCE's model variables and global_step (no optimizer slots) into a new
    official-layout checkpoint in DEST (the form the project ships its own models in)."""
    from bsattack import train as training
    prefix = training.export_weights(spec, source, dest)
    click.echo(f"wrote {prefix}")
