"""`reproduce`: every table and figure of the paper (and the leaderboard comparison) into one
folder, by invoking the project's own commands with one set of sizes.

Each step's outputs carry the command line that made them; the cached per-image results
(cache/) make a rerun resume where an interrupted one stopped, and a full run reuses none of
a quick run's results (their settings differ, so do their cache keys).
"""
import os
from dataclasses import dataclass

import click

from bsattack.options import data_dir_option, validation_size_option


@dataclass(frozen=True)
class Sizes:
    """Sample sizes and attack budgets of one reproduction run."""
    pgd_n: int              # images per (α, β) setting for PGD
    pgd_steps: int
    cw_n: int               # images per (α, β) setting for C&W L∞; also behind the success
                            # panels of Figures 1-2 and Table 1 (the α = 1 run, shared)
    cw_iterations: int      # Adam steps per loss constant (li_attack.py: 1000)
    per_class: int          # t-SNE subsample per class (0: all)
    leaderboard_n: int      # test images for the leaderboard (0: all 10,000)
    leaderboard_restarts: int


FULL = Sizes(pgd_n=2000, pgd_steps=100, cw_n=2000, cw_iterations=100,
             per_class=0, leaderboard_n=0, leaderboard_restarts=10)
QUICK = Sizes(pgd_n=300, pgd_steps=40, cw_n=100, cw_iterations=20,
              per_class=150, leaderboard_n=200, leaderboard_restarts=1)
PGD_STEP_SIZE = {"mnist": 0.01, "fashion": 0.01}   # Madry's a; 100 steps cover 0.3 three times


@click.command()
@click.option("--quick", is_flag=True,
              help="Small sizes (about 15 min on 2 cores); results go to <out>/quick.")
@click.option("--datasets", default="mnist,fashion", show_default=True,
              help="Comma-separated data sets to reproduce.")
@click.option("--mnist-checkpoint", default="mnist_secret", show_default=True,
              help="Adversarially trained MNIST model (the paper: the challenge's secret one).")
@click.option("--mnist-natural-checkpoint", default="mnist_natural", show_default=True)
@click.option("--fashion-checkpoint", default="fashion_adv", show_default=True)
@click.option("--fashion-natural-checkpoint", default="fashion_nat", show_default=True)
@data_dir_option
@validation_size_option
@click.option("--out", type=click.Path(file_okay=False), default="results", show_default=True)
@click.option("--skip-leaderboard", is_flag=True, help="Leave out the leaderboard comparison.")
@click.pass_context
def reproduce(ctx, quick, datasets, mnist_checkpoint, mnist_natural_checkpoint,
              fashion_checkpoint, fashion_natural_checkpoint, data_dir, validation_size, out,
              skip_leaderboard):
    """Tables 1-3, Figures 1, 2, 4, 5 and the MNIST leaderboard comparison, in one go."""
    from bsattack.commands.blindspot import tables
    from bsattack.commands.challenge import leaderboard
    from bsattack.commands.distance import figures
    sizes = QUICK if quick else FULL
    out = os.path.join(out, "quick") if quick else out
    checkpoints = {"mnist": (mnist_checkpoint, mnist_natural_checkpoint),
                   "fashion": (fashion_checkpoint, fashion_natural_checkpoint)}
    names = [name.strip() for name in datasets.split(",") if name.strip()]
    for name in names:
        if name not in checkpoints:
            raise click.BadParameter(f"'{name}' (reproduce knows mnist, fashion)",
                                     param_hint="--datasets")
    for name in names:
        adv, nat = checkpoints[name]
        click.echo(f"== {name}: Table {'2' if name == 'mnist' else '3'} (PGD, then C&W L∞)")
        common = dict(dataset=name, checkpoint=adv, data_dir=data_dir,
                      validation_size=validation_size, out=out)
        ctx.invoke(tables, attack="pgd", n=sizes.pgd_n, pgd_steps=sizes.pgd_steps,
                   pgd_step_size=PGD_STEP_SIZE[name], **common)
        ctx.invoke(tables, attack="cw", n=sizes.cw_n, max_iterations=sizes.cw_iterations,
                   **common)
        click.echo(f"== {name}: Figures 1/2 and 5, Table 1 row")
        ctx.invoke(figures, dataset=name, checkpoint=adv, natural_checkpoint=nat,
                   data_dir=data_dir, validation_size=validation_size, attack="cw", n=sizes.cw_n,
                   max_iterations=sizes.cw_iterations, per_class=sizes.per_class or None,
                   out_dir=out)
    if "mnist" in names and not skip_leaderboard:
        click.echo("== mnist: leaderboard comparison")
        ctx.invoke(leaderboard, dataset="mnist", checkpoint=checkpoints["mnist"][0],
                   data_dir=data_dir, validation_size=validation_size,
                   n=sizes.leaderboard_n or None,
                   restarts=sizes.leaderboard_restarts, cw_iterations=sizes.cw_iterations,
                   out=os.path.join(out, "leaderboard_mnist.md"))
    click.echo(f"reproduce: outputs in {out}")
