"""`accuracy`: natural test accuracy of a checkpoint."""
import click

from bsattack.commands.options import (batch_size_option, checkpoint_option, data_dir_option,
                                       dataset_option, n_option, resolve_checkpoint,
                                       validation_size_option)


@click.command()
@dataset_option()
@checkpoint_option
@data_dir_option
@n_option
@batch_size_option
@validation_size_option
def accuracy(spec, checkpoint, data_dir, n, batch_size, validation_size):
    """Print the natural accuracy of CHECKPOINT on the test set."""
    from bsattack.pipelines.accuracy import natural_accuracy
    path = resolve_checkpoint(spec, checkpoint)
    correct, images = natural_accuracy(spec, path, n, batch_size, data_dir, validation_size,
                                       echo=click.echo)
    click.echo(f"{spec.name} natural accuracy of {path}: {100 * correct / images:.2f}% "
               f"({correct}/{images} test images)")
