"""Distance to the training set: `embed`, `distance` (Figures 1-3), `blindspot-histogram`
(Figure 5), `kl` (Table 1) and `figures` (all of them for one data set).

``--checkpoint`` is always the adversarially trained model (the one attacked, and the feature
extractor h of panel a); ``--natural-checkpoint`` the naturally trained one (h of panel b)."""
import os
import shlex
import sys

import click

from bsattack import distance, divergence
from bsattack.commands.attack_options import attack_options, settings_from_options
from bsattack.datasets import PAPER_N
from bsattack.h5store import CACHE_DIR
from bsattack.options import (SEED, FiniteFloat, checkpoint_option, data_dir_option,
                              dataset_option, resolve_checkpoint, validation_size_option)
from bsattack.outputs import check_writable_dir

FIGURE_NUMBER = {"mnist": 1, "fashion": 2, "cifar10": 3}
# Figure 5 of the paper: the scaled test set shown for each data set
FIGURE5_TRANSFORM = {"mnist": (0.7, 0.0), "fashion": (0.9, 0.0)}

natural_checkpoint_option = click.option(
    "--natural-checkpoint", type=str, default=None,
    help="Naturally trained checkpoint (extractor of panel b) [default: the data set's].")
extractor_option = click.option(
    "--extractor", "extractors", type=click.Choice(["adv", "nat"]), multiple=True,
    default=["adv", "nat"], show_default=True,
    help="Feature extractor h: adversarially or naturally trained model (repeatable).")
out_dir_option = click.option("--out", "out_dir", type=click.Path(file_okay=False),
                              default="results", show_default=True, help="Output folder.")
k_option = click.option("--k", type=click.IntRange(min=1), default=distance.DEFAULT_K,
                        show_default=True, help="Nearest training points averaged in D (Eq. 2).")
p_option = click.option("--p", type=FiniteFloat(min=1), default=distance.DEFAULT_P,
                        show_default=True, help="The lp norm of D (Eq. 2).")
transform_option = click.option("--alpha", type=FiniteFloat(), default=None,
                                help="x' = αx + β of Figure 5 [default: the paper's, MNIST "
                                     "0.7, Fashion-MNIST 0.9].")
beta_option = click.option("--beta", type=FiniteFloat(), default=0.0, show_default=True,
                           help="β of Figure 5.")
per_class_option = click.option(
    "--per-class", type=click.IntRange(min=3), default=None,
    help="Subsample at most this many train and test points per class for t-SNE [default: all].")


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
tsne_seed_option = click.option("--tsne-seed", type=SEED, default=0, show_default=True,
                                help="Seed of t-SNE and of the per-class subsample.")


def command_line():
    return "python cli.py " + shlex.join(sys.argv[1:])


class Context:
    """Checkpoints, data, embeddings and attack settings of one data set, opened once."""

    def __init__(self, dataset, checkpoint, natural_checkpoint, data_dir, validation_size,
                 cache_dir=CACHE_DIR, batch_size=500, attack=None, n=None, **budget):
        from bsattack import data
        if cache_dir:
            check_writable_dir(cache_dir, f"--cache-dir {cache_dir}")
        self.dataset, self.cache_dir, self.batch_size = dataset, cache_dir, batch_size
        self.attack_name, self.n = attack, n
        self.settings = (settings_from_options({"attack": attack, "batch_size": batch_size,
                                                **budget}) if attack else None)
        self.checkpoints = {"adv": resolve_checkpoint(dataset, checkpoint),
                            "nat": resolve_checkpoint(dataset, natural_checkpoint, natural=True)}
        self.split = data.load(dataset, data_dir, validation_size, echo=click.echo)
        self._embeddings = {}

    def embeddings(self, extractor):
        from bsattack.embed import Embeddings
        if extractor not in self._embeddings:
            self._embeddings[extractor] = Embeddings(
                self.dataset, self.checkpoints[extractor], self.split, self.cache_dir,
                self.batch_size, echo=click.echo)
        return self._embeddings[extractor]

    def describe(self, extractor):
        digest = self.embeddings(extractor).file_key["checkpoint_sha256"]
        return f"extractor h: {self.checkpoints[extractor]} (sha256 {digest[:16]})"

    def attack(self):
        """Per-image results of the attack on the first n original test images (cached by
        :func:`bsattack.experiment.run_blindspot`, shared with `blindspot` / `tables`)."""
        from bsattack.experiment import run_blindspot
        return run_blindspot(self.dataset, self.checkpoints["adv"], settings=self.settings,
                             n=self.n, split=self.split,
                             cache_dir=self.cache_dir, echo=click.echo)


def context_options(func):
    """Data set, both checkpoints, data and the attack (its options as in `blindspot`)."""
    func = attack_options(func)
    for option in reversed([dataset_option(), checkpoint_option, natural_checkpoint_option,
                            data_dir_option, validation_size_option,
                            click.option("--n", "n", type=click.IntRange(min=1),
                                         default=PAPER_N, show_default=True,
                                         help="Attack the first N test images."),
                            click.option("--cache-dir", type=click.Path(file_okay=False),
                                         default=CACHE_DIR, show_default=True,
                                         help="Per-image results and embeddings (resumable).")]):
        func = option(func)
    return func


def embedding_options(func):
    """Data set, both checkpoints, data, cache folder and batch size."""
    for option in reversed([dataset_option(), checkpoint_option, natural_checkpoint_option,
                            data_dir_option, validation_size_option,
                            click.option("--cache-dir", type=click.Path(file_okay=False),
                                         default=CACHE_DIR, show_default=True,
                                         help="Folder of the HDF5 caches."),
                            click.option("--batch-size", type=click.IntRange(min=1), default=500,
                                         show_default=True, help="Images per session.run.")]):
        func = option(func)
    return func


def _xlabel(k, p):
    return f"D: mean l{p:g} distance to the {k} nearest training embeddings"


def _panel(extractor):
    return "a" if extractor == "adv" else "b"


def distance_figures(ctx, extractors, k, p, out_dir, header):
    """Figures 1-3: one panel per extractor; returns {extractor: Association}."""
    from bsattack import measures
    from bsattack.report import distance_figure
    result = ctx.attack()
    attack, n = ctx.attack_name, ctx.n
    attacked, success = result.correct, result.success_eps
    found = {}
    for extractor in extractors:
        all_d = measures.test_distances(ctx.embeddings(extractor), k=k, p=p)
        d = all_d[result.index]
        rows = distance_figure.bin_table(all_d, d, attacked, success)
        assoc = distance_figure.association(d, attacked, success)
        number = FIGURE_NUMBER.get(ctx.dataset, 0)
        stem = os.path.join(out_dir, f"figure{number}{_panel(extractor)}_{ctx.dataset}_{extractor}")
        title = (f"{ctx.dataset}, h = {'adversarially' if extractor == 'adv' else 'naturally'} "
                 f"trained model ({os.path.basename(ctx.checkpoints[extractor])})")
        note = (f"top: {attack.upper()} L∞ success at ε={result.eps:g} on the adversarially "
                f"trained model, {assoc.attacked} correctly classified of the first {n} test "
                f"images; Spearman ρ(D, success)={assoc.spearman:.3f}, AUROC={assoc.auroc:.3f}")
        lines = header + [f"attack: {ctx.settings.describe()} on {ctx.checkpoints['adv']}, first "
                          f"{n} test images, eps={result.eps:g}", ctx.describe(extractor),
                          f"spearman(D, success)={assoc.spearman:.4f} (p={assoc.p_value:.2g}); "
                          f"AUROC(D -> success)={assoc.auroc:.4f}"]
        paths = distance_figure.write(stem, rows, title, note, _xlabel(k, p), lines)
        click.echo(f"{ctx.dataset} {extractor}: {assoc.successes}/{assoc.attacked} attacked images "
                   f"fooled; Spearman rho(D, success) = {assoc.spearman:.4f} "
                   f"(p = {assoc.p_value:.2g}), AUROC = {assoc.auroc:.4f} -> {', '.join(paths)}")
        found[extractor] = assoc
    return found


def histogram_figures(ctx, extractors, alpha, beta, k, p, out_dir, header):
    """Figure 5: D of the original and the scaled test set, per extractor; returns AUROCs."""
    from bsattack import detect, measures, transforms
    from bsattack.report import blindspot_histogram
    if alpha is None:
        alpha, beta = FIGURE5_TRANSFORM.get(ctx.dataset, (0.9, 0.0))
    alpha, beta = transforms.validate(alpha, beta)
    found = {}
    for extractor in extractors:
        emb = ctx.embeddings(extractor)
        original = measures.test_distances(emb, k=k, p=p)
        scaled = measures.test_distances(emb, alpha, beta, k=k, p=p)
        auc = detect.auroc(original, scaled)
        stem = os.path.join(out_dir, f"figure5{_panel(extractor)}_{ctx.dataset}_{extractor}")
        title = (f"{ctx.dataset}: D of the original vs the scaled test set (α={alpha:g}, "
                 f"β={beta:g})\nh: {os.path.basename(ctx.checkpoints[extractor])}; "
                 f"AUROC of D as a detector of the scaling: {auc:.3f}")
        lines = header + [ctx.describe(extractor),
                          f"AUROC(D detects the transform)={auc:.4f}; mean D original "
                          f"{original.mean():.4f}, scaled {scaled.mean():.4f}"]
        paths = blindspot_histogram.write(stem, original, scaled, alpha, beta, title,
                                          _xlabel(k, p), lines)
        click.echo(f"{ctx.dataset} {extractor} alpha={alpha:g} beta={beta:g}: mean D "
                   f"{original.mean():.4f} -> {scaled.mean():.4f}, AUROC {auc:.4f} -> "
                   f"{', '.join(paths)}")
        found[extractor] = auc
    return found


def table1_row(ctx, per_class, grid, seed, tsne, perplexity, out_dir, header):
    """Table 1 for one data set (K-L with the adversarially trained h), written as
    table1_<dataset>.{md,csv}; returns the row."""
    from bsattack import measures, models
    from bsattack.report import table1
    results = measures.class_divergences(ctx.embeddings("adv"), per_class, seed, tsne, grid,
                                         perplexity, echo=click.echo)
    summary = ctx.attack().summary()
    accuracy = models.accuracy(ctx.dataset, ctx.checkpoints["adv"], ctx.split.test_x,
                               ctx.split.test_y, ctx.batch_size)
    row = table1.row(ctx.dataset, results, summary, accuracy, ctx.checkpoints["adv"])
    lines = header + [f"K-L: t-SNE ({tsne}, perplexity {perplexity:g}, seed {seed}) of "
                      f"{'all' if per_class is None else f'at most {per_class}'} train/test "
                      f"points per class, KDE Scott, {grid}x{grid} grid",
                      f"attack: {ctx.settings.describe()}",
                      "per-class K-L: " + ", ".join(f"{r.label}:{r.kl.value:.4f}" for r in results)]
    paths = table1.write(os.path.join(out_dir, f"table1_{ctx.dataset}"), [row], lines)
    click.echo(f"{ctx.dataset}: avg K-L {row['avg_kl']} (paper {row['paper_avg_kl']}), success "
               f"{row['success_pct']}% (paper {row['paper_success_pct']}%), accuracy "
               f"{row['accuracy_pct']}% (paper {row['paper_accuracy_pct']}%) -> {', '.join(paths)}")
    return row


@click.command()
@embedding_options
@extractor_option
def embed(extractors, **opts):
    """Compute (or check) the cached embeddings h(x) of the train and test sets."""
    ctx = Context(**opts)
    for extractor in extractors:
        emb = ctx.embeddings(extractor)
        for part in ("train", "test"):
            values = emb.get(part)
            click.echo(f"{extractor} {part}: {values.shape[0]} x {values.shape[1]} embeddings")
        click.echo(f"cache: {emb.path}")


@click.command("distance")
@context_options
@extractor_option
@k_option
@p_option
@out_dir_option
def distance_command(extractors, k, p, out_dir, **opts):
    """Figures 1-3: attack success rate and histogram against the distance D (Eq. 2)."""
    check_writable_dir(out_dir, f"--out {out_dir}")
    distance_figures(Context(**opts), extractors, k, p, out_dir, [command_line()])


@click.command("blindspot-histogram")
@context_options
@extractor_option
@transform_option
@beta_option
@k_option
@p_option
@out_dir_option
def blindspot_histogram_command(extractors, alpha, beta, k, p, out_dir, **opts):
    """Figure 5: histograms of D for the original and the scaled test set, and their AUROC."""
    check_writable_dir(out_dir, f"--out {out_dir}")
    histogram_figures(Context(**opts), extractors, alpha, beta, k, p, out_dir, [command_line()])


@click.command()
@context_options
@per_class_option
@grid_option
@tsne_seed_option
@tsne_option
@perplexity_option
@out_dir_option
def kl(per_class, grid, tsne_seed, tsne, perplexity, out_dir, **opts):
    """Table 1 row: average K-L divergence (Eq. 3), attack success and test accuracy."""
    check_writable_dir(out_dir, f"--out {out_dir}")
    table1_row(Context(**opts), per_class, grid, tsne_seed, tsne, perplexity, out_dir,
               [command_line()])


@click.command()
@context_options
@k_option
@p_option
@per_class_option
@grid_option
@tsne_seed_option
@tsne_option
@perplexity_option
@out_dir_option
def figures(k, p, per_class, grid, tsne_seed, tsne, perplexity, out_dir, **opts):
    """Figures 1-3 and 5 (both extractors) and the Table 1 row of one data set."""
    check_writable_dir(out_dir, f"--out {out_dir}")
    ctx = Context(**opts)
    header = [command_line()]
    distance_figures(ctx, ("adv", "nat"), k, p, out_dir, header)
    histogram_figures(ctx, ("adv", "nat"), None, 0.0, k, p, out_dir, header)
    table1_row(ctx, per_class, grid, tsne_seed, tsne, perplexity, out_dir, header)
