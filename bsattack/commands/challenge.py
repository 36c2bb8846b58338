"""`evaluate`: score a challenge-format attack file as MadryLab's run_attack.py does;
`attack`: write one; `leaderboard`: the project's attacks next to the published boards."""


import click

from bsattack.commands.common import command_line, progressbar
from bsattack.commands.attack_options import (attack_options, only_own_options,
                                              settings_from_options)
from bsattack.errors import BsattackError
from bsattack.pipelines.leaderboard import ROWS as LEADERBOARD_ROWS
from bsattack.commands.options import (checkpoint_option, chosen_precision, data_dir_option,
                                      dataset_option, executor_from_options, executor_options,
                                      out_option, precision_option, resolve_checkpoint,
                                      validation_size_option)


@click.command()
@dataset_option()
@checkpoint_option
@click.option("--attack-file", type=click.Path(exists=True, dir_okay=False), required=True,
              help="The .npy attack: (10000, 784) in [0, 1] for MNIST, (10000, 32, 32, 3) in "
                   "[0, 255] for CIFAR10.")
@data_dir_option
@click.option("--n", "n", type=click.IntRange(min=1), default=None,
              help="Test images the file must hold [default: the challenge's 10000].")
@click.option("--pred-out", type=click.Path(dir_okay=False), default="pred.npy",
              show_default=True, help="Where the int64 predictions are saved.")
@validation_size_option
def evaluate(spec, checkpoint, attack_file, data_dir, n, pred_out, validation_size):
    """Validate ATTACK-FILE (shape, dtype, range, NaN/inf, L∞ ≤ ε + 1e-4 against the clean test
    images) and print the accuracy of CHECKPOINT on it, as the challenge's run_attack.py."""
    from bsattack.pipelines import challenge
    challenge.evaluate(spec, resolve_checkpoint(spec, checkpoint), attack_file, pred_out,
                       data_dir, validation_size, n, echo=click.echo)


PGD_FIELDS = {"pgd_steps": "steps", "pgd_step_size": "step_size"}


def _common(command):
    for option in reversed([dataset_option(), checkpoint_option, data_dir_option,
                            validation_size_option,
                            click.option("--cache-dir", type=click.Path(file_okay=False),
                                         default=None, help="Cached chunks (resumable) "
                                         "[default: the project's cache/]."),
                            precision_option("Every accuracy is the float32 network's.")]):
        command = option(command)
    return executor_options(command)


def _settings(spec, options):
    """The attack's settings, with the leaderboard's PGD baseline wherever not given."""
    from bsattack import challenge_attack
    given = [field for option, field in PGD_FIELDS.items() if options.get(option) is not None]
    return challenge_attack.with_challenge_defaults(settings_from_options(options), spec, given)


@click.command()
@_common
@attack_options(default_attack="pgd")
@click.option("--n", "n", type=click.IntRange(min=1), default=None,
              help="Attack the first N test images [default: all, as the challenge wants].")
@out_option("attack.npy", "The challenge-format .npy file to write.")
def attack(spec, checkpoint, data_dir, validation_size, cache_dir, precision, workers,
           ray_address, n, out, **options):
    """Attack the whole test set and write a challenge-format file ([0, 1] for MNIST, [0, 255]
    for CIFAR10); chunks are cached, so an interrupted run resumes."""
    from bsattack.pipelines import challenge
    settings = _settings(spec, options)
    path = resolve_checkpoint(spec, checkpoint)
    precision = chosen_precision(precision, click.echo)
    with executor_from_options(workers, ray_address) as executor:
        written = challenge.attack(settings, spec, path, out, data_dir, validation_size, n,
                                   cache_dir=cache_dir, executor=executor, echo=click.echo,
                                   progress=progressbar, precision=precision)
    stated = "" if precision == "fp32" else f" (gradients in {precision})"
    click.echo(f"wrote {out}: {settings.describe()}{stated}; shape {written.shape}, largest L∞ "
               f"{written.largest:.4f}, {written.evals_per_image:,.1f} gradient evaluations"
               + (f" and {written.forward_per_image:,.1f} forward evaluations"
                  if written.forward_per_image else "")
               + f" per image; accuracy of {path} on it: {100 * written.accuracy:.2f}% (score "
               f"it with 'python cli.py evaluate --dataset {spec.name} --checkpoint {path} "
               f"--attack-file {out}')")


@click.command()
@_common
@attack_options(default_attack="pgd")
@click.option("--rows", default="pgd,pgd-cw,cw,apgd,worst", show_default=True,
              help="Comma-separated rows: " + ", ".join(LEADERBOARD_ROWS) + "; each row's "
                   "attack takes its budget options (e.g. --pgd-restarts, which the worst "
                   "case's PGD shares).")
@click.option("--n", "n", type=click.IntRange(min=1), default=None,
              help="Use the first N test images [default: all].")
@out_option(None, "Also write the markdown table to this file.")
def leaderboard(spec, checkpoint, data_dir, validation_size, cache_dir, precision, workers,
                ray_address, rows, n, out, **options):
    """Run PGD, C&W L∞, APGD, Square, AutoAttack or the worst case on CHECKPOINT and print
    their accuracies next to the published challenge leaderboards."""
    from bsattack.pipelines.leaderboard import leaderboard as board
    names = [r.strip() for r in rows.split(",") if r.strip()]
    unknown = [r for r in names if r not in LEADERBOARD_ROWS]
    if unknown or not names:
        raise BsattackError(f"unknown leaderboard rows {','.join(unknown) or '(none)'} "
                            f"(known: {', '.join(LEADERBOARD_ROWS)})")
    options.pop("attack")
    attacks = []
    for name in names:
        row = {**options, **LEADERBOARD_ROWS[name]}
        for key, value in LEADERBOARD_ROWS[name].items():
            if key != "attack" and options.get(key) not in (None, value):
                raise BsattackError(f"row {name} sets --{key.replace('_', '-')} {value}")
        attacks.append((name, _settings(spec, only_own_options(row))))
    path = resolve_checkpoint(spec, checkpoint)
    precision = chosen_precision(precision, click.echo)
    with executor_from_options(workers, ray_address) as executor:
        text = board(spec, path, attacks, n, data_dir, validation_size, out, command_line(),
                     echo=click.echo, progress_for=progressbar, cache_dir=cache_dir,
                     executor=executor, precision=precision)
    click.echo(text)
    if out:
        click.echo(f"saved {out}")
