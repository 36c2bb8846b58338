"""`blindspot`: one (α, β) setting of the blind-spot attack; `tables`: the paper's Tables 2–3."""
import datetime
import json
import os
import shlex
import sys

import click

from bsattack import data
from bsattack.attacks.cw_linf import INITS, MAX_ITERATIONS, CWSettings
from bsattack.attacks.pgd import LOSSES, PGDSettings
from bsattack.datasets import DATASETS, get_spec
from bsattack.errors import BsattackError
from bsattack.experiment import ATTACKS, CACHE_DIR, DEFAULT_N, run_blindspot
from bsattack.options import (checkpoint_option, data_dir_option, dataset_option,
                              resolve_checkpoint, validation_size_option)
from bsattack.report.figure4 import figure4
from bsattack.report.tables import paper_table, run_table
from bsattack.transforms import validate

CLI_MAX_ITERATIONS = 100
FIGURE4_SETTING = {"mnist": (0.7, 0.0), "fashion": (0.9, 0.0)}   # the paper's Figure 4


def attack_options(command=None, default_attack="cw"):
    """The attack choice and its budget options (shared by `blindspot` and `tables`); use as
    ``@attack_options`` or ``@attack_options(default_attack="pgd")``."""
    if command is None:
        return lambda command: attack_options(command, default_attack)
    options = [
        click.option("--attack", type=click.Choice(ATTACKS), default=default_attack,
                     show_default=True,
                     help="Carlini & Wagner L∞ or Madry's PGD."),
        click.option("--n", "n", type=click.IntRange(min=1), default=DEFAULT_N,
                     show_default=True, help="Attack the first N test images."),
        click.option("--max-iterations", type=click.IntRange(min=1), default=CLI_MAX_ITERATIONS,
                     show_default=True,
                     help=f"C&W: Adam steps per loss constant (reference: {MAX_ITERATIONS})."),
        click.option("--minimal", is_flag=True,
                     help="C&W: run the full τ schedule for the smallest distortion instead of "
                          "stopping each image once success at ε and α·ε is decided."),
        click.option("--cw-inits", default=",".join(INITS), show_default=True,
                     help="C&W starts, run in this order, best kept (the paper's two). An image "
                          "its first start decides skips the second; the order changes the cost, "
                          "not the success (up to float rounding at a threshold). On the Fashion-MNIST stand-in 'gray' alone found the "
                          "same examples at half the cost: bench/README.md."),
        click.option("--pgd-steps", type=click.IntRange(min=1), default=100, show_default=True),
        click.option("--pgd-step-size", type=click.FloatRange(min=0, min_open=True),
                     default=0.01, show_default=True),
        click.option("--pgd-restarts", type=click.IntRange(min=1), default=1, show_default=True),
        click.option("--pgd-loss", type=click.Choice(LOSSES), default="xent", show_default=True),
        click.option("--batch-size", type=click.IntRange(min=1), default=500, show_default=True,
                     help="Images per graph batch."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--cache-dir", type=click.Path(file_okay=False), default=CACHE_DIR,
                     show_default=True, help="Per-image results (resumable)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def make_settings(attack, max_iterations, minimal, cw_inits, pgd_steps, pgd_step_size,
                  pgd_restarts, pgd_loss, batch_size, seed):
    """The attack's settings from the options; ``cw_inits`` is the option's comma-separated
    text (also when a command is run through ``ctx.invoke``, which passes defaults raw)."""
    if attack == "cw":
        inits = tuple(name.strip() for name in cw_inits.split(",") if name.strip())
        return CWSettings(mode="minimal" if minimal else "threshold", inits=inits,
                          max_iterations=max_iterations, batch_size=batch_size, seed=seed)
    return PGDSettings(steps=pgd_steps, step_size=pgd_step_size, loss=pgd_loss,
                       restarts=pgd_restarts, batch_size=batch_size, seed=seed)


def describe(settings):
    """The attack budget in one line (for the headers of result files)."""
    if isinstance(settings, CWSettings):
        return (f"C&W L∞ ({settings.mode} mode, τ schedule from 1.0, ≤{settings.max_iterations} "
                f"Adam steps per constant, constants {settings.initial_const:g}..<"
                f"{settings.largest_const:g} ×2, lr {settings.learning_rate:g}, "
                f"inits {'+'.join(settings.inits)}, seed {settings.seed})")
    return (f"PGD-{settings.steps} (step {settings.step_size:g}, {settings.loss} loss, "
            f"{settings.restarts} random start(s), seed {settings.seed})")


def header_lines(checkpoint, n, settings):
    from madry_models.checkpoint import content_hash
    return [f"command: python {' '.join(shlex.quote(a) for a in sys.argv)}",
            f"checkpoint: {checkpoint} (sha256 {content_hash(checkpoint)[:16]})",
            f"N: first {n} test images; only correctly classified transformed images attacked",
            f"attack: {describe(settings)}",
            f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}"]


@click.command()
@dataset_option()
@click.option("--alpha", type=float, default=1.0, show_default=True, help="Scale α of x' = αx + β.")
@click.option("--beta", type=float, default=0.0, show_default=True, help="Shift β (|β| ≤ (1-α)/2).")
@attack_options
@checkpoint_option
@data_dir_option
@validation_size_option
@click.option("--out", type=click.Path(file_okay=False), default=os.path.join("results", "blindspot"),
              show_default=True, help="Folder for the CSV/JSON records and the figure.")
def blindspot(dataset, alpha, beta, attack, n, max_iterations, minimal, cw_inits, pgd_steps,
              pgd_step_size, pgd_restarts, pgd_loss, batch_size, seed, cache_dir, checkpoint,
              data_dir, validation_size, out):
    """Attack x' = αx + β of the first N test images; print accuracy and success at ε, α·ε."""
    alpha, beta = validate(alpha, beta)
    settings = make_settings(attack, max_iterations, minimal, cw_inits, pgd_steps, pgd_step_size,
                             pgd_restarts, pgd_loss, batch_size, seed)
    path = resolve_checkpoint(dataset, checkpoint)
    split = data.load(dataset, data_dir, validation_size, echo=click.echo)
    result = run_blindspot(dataset, path, alpha, beta, attack, n, settings=settings,
                           split=split, cache_dir=cache_dir, echo=click.echo)
    s = result.summary()
    click.echo(f"{dataset} α={alpha:g} β={beta:g} ({attack}, {path}): accuracy "
               f"{100 * s['accuracy']:.2f}% of {s['n']}; success over {s['attacked']} attacked: "
               f"{100 * s['success_eps']:.2f}% at ε={s['eps']:g}, "
               f"{100 * s['success_alpha_eps']:.2f}% at α·ε={s['alpha_eps']:g}")
    os.makedirs(out, exist_ok=True)
    stem = os.path.join(out, f"{dataset}_{attack}_a{alpha:g}_b{beta:g}")
    _write_records(result, stem, header_lines(path, n, settings))
    figure4(result, stem + ".png")
    click.echo(f"wrote {stem}.csv, {stem}.json, {stem}.png")


def _write_records(result, stem, header):
    import csv
    records = result.records()
    with open(stem + ".json", "w") as handle:
        json.dump({"header": header, "summary": result.summary(), "images": records}, handle,
                  indent=1)
    with open(stem + ".csv", "w", newline="") as handle:
        for line in header:
            handle.write(f"# {line}\n")
        writer = csv.DictWriter(handle, list(records[0]))
        writer.writeheader()
        writer.writerows(records)


@click.command()
@click.option("--dataset", type=click.Choice(sorted(DATASETS) + ["both"]), default="both",
              show_default=True, help="Table 2 (mnist), Table 3 (fashion) or both.")
@attack_options
@checkpoint_option
@data_dir_option
@validation_size_option
@click.option("--out", type=click.Path(file_okay=False), default="results", show_default=True,
              help="Folder for tableN_<dataset>_<attack>.{md,csv} and figure4_<dataset>_<attack>.png.")
def tables(dataset, attack, n, max_iterations, minimal, cw_inits, pgd_steps, pgd_step_size,
           pgd_restarts, pgd_loss, batch_size, seed, cache_dir, checkpoint, data_dir,
           validation_size, out):
    """The paper's Tables 2 (MNIST) and 3 (Fashion-MNIST) with its numbers alongside."""
    names = ["mnist", "fashion"] if dataset == "both" else [dataset]
    if checkpoint and len(names) > 1:
        raise BsattackError("--checkpoint needs a single --dataset (mnist or fashion)")
    settings = make_settings(attack, max_iterations, minimal, cw_inits, pgd_steps, pgd_step_size,
                             pgd_restarts, pgd_loss, batch_size, seed)
    for name in names:
        path = resolve_checkpoint(name, checkpoint)
        split = data.load(name, data_dir, validation_size, echo=click.echo)
        stem = os.path.join(out, f"table{paper_table(name)['table']}_{name}_{attack}")
        results = run_table(name, path, attack, n, settings, stem,
                            header_lines(path, n, settings), split=split, echo=click.echo,
                            cache_dir=cache_dir)
        alpha, beta = FIGURE4_SETTING[name]
        shown = next(r for r in results if (r.alpha, r.beta) == (alpha, beta))
        figure = figure4(shown, os.path.join(out, f"figure4_{name}_{attack}.png"))
        click.echo(f"wrote {stem}.md, {stem}.csv, {figure} (ε={get_spec(name).eps:g})")
