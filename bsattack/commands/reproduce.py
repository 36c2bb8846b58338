"""`reproduce`: every table and figure of the paper (and the leaderboard comparison) into one
folder, by invoking the project's own commands (looked up by name in the CLI group, so this
module imports no other command module) with one set of sizes.

Each step's outputs carry the command line that made them; the cached per-image results
(cache/) make a rerun resume where an interrupted one stopped, and a full run reuses none of
a quick run's results (their settings differ, so do their cache keys).
"""
import os
from dataclasses import dataclass

import click

from bsattack.commands.common import command_line
from bsattack.commands.options import (DATASETS, PAPER_TABLE_DATASETS, RESULTS_DIR,
                                       chosen_precision, data_dir_option, executor_options,
                                       get_spec, precision_option, resolve_checkpoint,
                                       validation_size_option)
from bsattack.pipelines.reproduce import Run


@dataclass(frozen=True)
class Sizes:
    """Sample sizes and attack budgets of one reproduction run."""
    table_n: int            # images per (α, β) setting; the worst case runs C&W and PGD-100 on
                            # all of them (their own columns), then APGD on what they leave;
                            # C&W's α = 1 run is also behind Figures 1-2 and Table 1
    per_class: int          # t-SNE subsample per class (0: all)
    leaderboard_n: int      # test images for the leaderboard (0: all 10,000)
    leaderboard_restarts: int


FULL = Sizes(table_n=2000, per_class=0, leaderboard_n=0, leaderboard_restarts=10)
QUICK = Sizes(table_n=200, per_class=150, leaderboard_n=200, leaderboard_restarts=1)


def checkpoint_options(command):
    """``--NAME-checkpoint`` and ``--NAME-natural-checkpoint`` for every data set reproduced."""
    for name in reversed(PAPER_TABLE_DATASETS):
        spec = DATASETS[name]
        command = click.option(f"--{name}-natural-checkpoint", default=spec.natural_checkpoint,
                               show_default=True)(command)
        command = click.option(f"--{name}-checkpoint", default=spec.default_checkpoint,
                               show_default=True,
                               help=f"Adversarially trained {name} model.")(command)
    return command


@click.command()
@click.option("--quick", is_flag=True,
              help="Small sizes (200 images per setting); results go to <out>/quick.")
@click.option("--datasets", default=",".join(PAPER_TABLE_DATASETS), show_default=True,
              help="Comma-separated data sets to reproduce.")
@checkpoint_options
@data_dir_option
@validation_size_option
@click.option("--out", type=click.Path(file_okay=False), default=RESULTS_DIR, show_default=True)
@click.option("--skip-leaderboard", is_flag=True, help="Leave out the leaderboard comparison.")
@click.option("--report-only", is_flag=True,
              help="Only render <out>/README.md and the tables' Markdown again from the "
                   "summaries already there.")
@executor_options
@precision_option("Every prediction and accuracy in the results is float32's, and so are the "
                  "embeddings.")
@click.pass_context
def reproduce(ctx, quick, datasets, data_dir, validation_size, out, skip_leaderboard,
              report_only, workers, ray_address, precision, **checkpoint_args):
    """Tables 1-3, Figures 1, 2, 4, 5 and the MNIST leaderboard comparison, in one go, and
    the results page README.md with the paper's claims checked."""
    root = ctx.find_root()
    tables, figures, leaderboard = (root.command.get_command(root, name)
                                    for name in ("tables", "figures", "leaderboard"))
    sizes = QUICK if quick else FULL
    out = os.path.join(out, "quick") if quick else out
    run = Run(out, command_line(), echo=click.echo)
    if report_only:
        click.echo(f"wrote {run.write_report(rerender_tables=True)}")
        return
    names = [name.strip() for name in datasets.split(",") if name.strip()]
    for name in names:
        if name not in PAPER_TABLE_DATASETS:
            known = ", ".join(PAPER_TABLE_DATASETS)
            raise click.BadParameter(f"'{name}' (reproduce knows {known})",
                                     param_hint="--datasets")
    specs = [get_spec(name) for name in names]
    # each data set's (adversarially, naturally trained) checkpoints, resolved once; errors
    # name the option (natural models are the *natural* options)
    checkpoints = [(spec, tuple(
        resolve_checkpoint(spec, checkpoint_args[f"{spec.name}_{kind}"],
                           natural=kind == "natural_checkpoint", echo=click.echo,
                           option=f"--{spec.name}-{kind.replace('_', '-')}")
        for kind in ("checkpoint", "natural_checkpoint"))) for spec in specs]
    precision = chosen_precision(precision, click.echo)
    run.environment(checkpoints, data_dir, validation_size, precision)
    for spec, (adv, nat) in checkpoints:
        name = spec.name
        with run.step(f"{name}: Table {spec.paper.table} (C&W L∞, PGD-100, worst case)",
                      evals_from=f"table{spec.paper.table}_{name}_worst.json"):
            ctx.invoke(tables, dataset=name, checkpoint=adv, data_dir=data_dir,
                       validation_size=validation_size, out=out, attack="worst",
                       n=sizes.table_n, workers=workers, ray_address=ray_address,
                       precision=precision)
        with run.step(f"{name}: Figures {spec.paper.figure} and 5, Table 1 row"):
            ctx.invoke(figures, spec=spec, checkpoint=adv, natural_checkpoint=nat,
                       data_dir=data_dir, validation_size=validation_size, attack="worst",
                       n=sizes.table_n, per_class=sizes.per_class or None, out_dir=out,
                       precision=precision)
    for spec, (adv, _) in checkpoints:
        if spec.name != "mnist" or skip_leaderboard:
            continue
        with run.step("mnist: leaderboard comparison"):
            ctx.invoke(leaderboard, spec=spec, checkpoint=adv, data_dir=data_dir,
                       validation_size=validation_size, n=sizes.leaderboard_n or None,
                       pgd_restarts=sizes.leaderboard_restarts, workers=workers,
                       ray_address=ray_address, precision=precision,
                       out=os.path.join(out, "leaderboard_mnist.md"))
    run.finish()
    click.echo(f"reproduce: outputs in {out}; results page {run.write_report()}")
