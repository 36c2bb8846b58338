"""`evaluate`: score a challenge-format attack file as MadryLab's run_attack.py does;
`attack`: write one; `leaderboard`: the project's attacks next to the published boards."""
import shlex
import sys

import click
import numpy as np

from bsattack import challenge, challenge_attack, data, models
from bsattack import leaderboard as board
from bsattack.options import (batch_size_option, checkpoint_option, data_dir_option,
                              dataset_option, out_option, resolve_checkpoint, seed_option,
                              validation_size_option)


@click.command()
@dataset_option()
@checkpoint_option
@click.option("--attack-file", type=click.Path(exists=True, dir_okay=False), required=True,
              help="The .npy attack: (10000, 784) in [0, 1] for MNIST, (10000, 32, 32, 3) in "
                   "[0, 255] for CIFAR10.")
@data_dir_option
@click.option("--n", "n", type=click.IntRange(min=1), default=challenge.CHALLENGE_SIZE,
              show_default=True, help="Test images the file must hold (the challenge: 10000).")
@click.option("--pred-out", type=click.Path(dir_okay=False), default="pred.npy",
              show_default=True, help="Where the int64 predictions are saved.")
@validation_size_option
def evaluate(dataset, checkpoint, attack_file, data_dir, n, pred_out, validation_size):
    """Validate ATTACK-FILE (shape, dtype, range, NaN/inf, L∞ ≤ ε + 1e-4 against the clean test
    images) and print the accuracy of CHECKPOINT on it, as the challenge's run_attack.py."""
    path = resolve_checkpoint(dataset, checkpoint)
    split = data.load(dataset, data_dir, validation_size, echo=click.echo)
    challenge.evaluate(dataset, path, attack_file, split, n, pred_out, echo=click.echo)


def _common(command):
    for option in reversed([dataset_option(), checkpoint_option, data_dir_option,
                            batch_size_option, seed_option, validation_size_option,
                            click.option("--restarts", type=click.IntRange(min=1),
                                         default=1, show_default=True,
                                         help="Random restarts per image."),
                            click.option("--cw-iterations", type=click.IntRange(min=1),
                                         default=challenge_attack.CW_ITERATIONS,
                                         show_default=True,
                                         help="C&W: Adam steps per constant "
                                              "(li_attack.py: 1000).")]):
        command = option(command)
    return command


def _bar(length, label):
    return click.progressbar(length=length, label=label, file=click.get_text_stream("stderr"))


@click.command()
@_common
@click.option("--attack", "attack_name", type=click.Choice(challenge_attack.ATTACKS),
              default="pgd", show_default=True,
              help="pgd: PGD on cross-entropy; pgd-cw: PGD on the CW margin; cw: C&W L∞.")
@click.option("--n", "n", type=click.IntRange(min=1), default=None,
              help="Attack the first N test images [default: all, as the challenge wants].")
@out_option("attack.npy", "The challenge-format .npy file to write.")
def attack(dataset, checkpoint, data_dir, batch_size, seed, validation_size, restarts,
           cw_iterations, attack_name, n, out):
    """Attack the whole test set and write a challenge-format file ([0, 1] for MNIST, [0, 255]
    for CIFAR10); chunks are cached, so an interrupted run resumes."""
    path = resolve_checkpoint(dataset, checkpoint)
    split = data.load(dataset, data_dir, validation_size, echo=click.echo)
    n = n or len(split.test_x)
    settings = challenge_attack.settings_for(attack_name, dataset, restarts, seed, cw_iterations)
    with _bar(n * restarts, settings.label()) as bar:
        adv = challenge_attack.adversarial_examples(settings, path, split, n, batch_size,
                                                    echo=click.echo, progress=bar.update)
    file_values = challenge_attack.to_file_units(dataset, adv)
    clean, labels = challenge.clean_test_images(split, dataset, n)
    largest = challenge.check_attack(file_values, clean, dataset)
    challenge.save_atomic(out, file_values)
    predictions = models.predict(dataset, path, adv, challenge.challenge_for(dataset).batch_size)
    click.echo(f"wrote {out}: {settings.describe()}; shape {file_values.shape}, largest L∞ "
               f"{largest:.4f}; accuracy of {path} on it: "
               f"{100 * np.mean(predictions == labels):.2f}% (score it with 'python cli.py "
               f"evaluate --dataset {dataset} --checkpoint {path} --attack-file {out}')")


@click.command()
@_common
@click.option("--attacks", default=",".join(challenge_attack.ATTACKS), show_default=True,
              help="Comma-separated attacks to run.")
@click.option("--n", "n", type=click.IntRange(min=1), default=None,
              help="Use the first N test images [default: all].")
@click.option("--cw-restarts", type=click.IntRange(min=1), default=1, show_default=True,
              help="Restarts of C&W (each adds a noise start on the images not yet fooled).")
@out_option(None, "Also write the markdown table to this file.")
def leaderboard(dataset, checkpoint, data_dir, batch_size, seed, validation_size, restarts,
                cw_iterations, attacks, n, cw_restarts, out):
    """Run PGD (cross-entropy), PGD (CW margin) and C&W L∞ on CHECKPOINT and print their
    accuracies next to the published challenge leaderboards (--restarts is PGD's)."""
    names = [a.strip() for a in attacks.split(",") if a.strip()]
    for name in names:
        challenge_attack.settings_for(name, dataset)          # validates the name
    path = resolve_checkpoint(dataset, checkpoint)
    split = data.load(dataset, data_dir, validation_size, echo=click.echo)
    n = n or len(split.test_x)
    rows = board.project_rows(dataset, path, split, n, names, restarts, cw_restarts, seed,
                              cw_iterations, batch_size, echo=click.echo, progress_for=_bar)
    text = board.render(dataset, path, n, rows, command="python cli.py " + shlex.join(sys.argv[1:]))
    click.echo(text)
    if out:
        challenge.save_text_atomic(out, text)
        click.echo(f"saved {out}")
