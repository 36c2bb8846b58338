"""Distance to the training set: `embed`, `distance` (Figures 1-3), `blindspot-histogram`
(Figure 5), `kl` (Table 1) and `figures` (all of them for one data set); the work is in
:mod:`bsattack.pipelines.figures`.

``--checkpoint`` is always the adversarially trained model (the one attacked, and the feature
extractor h of panel a); ``--natural-checkpoint`` the naturally trained one (h of panel b)."""
import click

from bsattack.commands.attack_options import (attack_option_names, attack_options,
                                               settings_from_options)
from bsattack.commands.common import command_line, progressbar
from bsattack.commands.options import (RESULTS_DIR, SEED, FiniteFloat, attacked_n_option,
                                       batch_size_option, cache_dir_option, checkpoint_option,
                                       chosen_precision, data_dir_option, dataset_option,
                                       grid_option, k_option, p_option, perplexity_option,
                                       precision_option, resolve_checkpoint, tsne_option,
                                       validation_size_option)

natural_checkpoint_option = click.option(
    "--natural-checkpoint", type=str, default=None,
    help="Naturally trained checkpoint (extractor of panel b) [default: the data set's].")
extractor_option = click.option(
    "--extractor", "extractors", type=click.Choice(["adv", "nat"]), multiple=True,
    default=["adv", "nat"], show_default=True,
    help="Feature extractor h: adversarially or naturally trained model (repeatable).")
out_dir_option = click.option("--out", "out_dir", type=click.Path(file_okay=False),
                              default=RESULTS_DIR, show_default=True, help="Output folder.")
transform_option = click.option("--alpha", type=FiniteFloat(), default=None,
                                help="x' = αx + β of Figure 5 [default: the paper's, MNIST "
                                     "0.7, Fashion-MNIST 0.9].")
beta_option = click.option("--beta", type=FiniteFloat(), default=0.0, show_default=True,
                           help="β of Figure 5.")
per_class_option = click.option(
    "--per-class", type=click.IntRange(min=3), default=None,
    help="Subsample at most this many train and test points per class for t-SNE [default: all].")
EMBEDDINGS_FLOAT32 = ("the embeddings h(x) are always float32 (the distances and divergences "
                      "computed on them are results)")


tsne_seed_option = click.option("--tsne-seed", type=SEED, default=0, show_default=True,
                                help="Seed of t-SNE and of the per-class subsample.")


def context_options(func):
    """Data set, both checkpoints, data, cache and the attack (its options and precision as
    in `blindspot`)."""
    func = attack_options(func)
    for option in reversed([dataset_option(), checkpoint_option, natural_checkpoint_option,
                            data_dir_option, validation_size_option, attacked_n_option(),
                            cache_dir_option,
                            precision_option("Embeddings h(x) and every prediction in the "
                                             "results are float32's; only the attack uses bf16 "
                                             "(blindspot-histogram attacks nothing: it refuses "
                                             "bf16).")]):
        func = option(func)
    return func


def embedding_options(func):
    """Data set, both checkpoints, data, cache folder, batch size and precision (float32
    only)."""
    for option in reversed([dataset_option(), checkpoint_option, natural_checkpoint_option,
                            data_dir_option, validation_size_option, cache_dir_option,
                            batch_size_option,
                            precision_option("Embeddings h(x) are always float32: bf16 is "
                                             "refused, auto picks fp32.")]):
        func = option(func)
    return func


def _context(spec, checkpoint, natural_checkpoint, precision, attack=None, batch_size=500,
             seed=0, embeddings_only=False, **opts):
    """The pipeline's :class:`Context` from the options: the data set's spec, both
    checkpoints resolved, the attack's settings and precision (as in `blindspot`; float32
    only for a command that only embeds)."""
    from bsattack.pipelines.figures import Context
    precision = chosen_precision(precision, click.echo,
                                 EMBEDDINGS_FLOAT32 if embeddings_only else None)
    checkpoints = {"adv": resolve_checkpoint(spec, checkpoint, echo=click.echo),
                   "nat": resolve_checkpoint(spec, natural_checkpoint, natural=True,
                                             echo=click.echo, option="--natural-checkpoint")}
    budget = {k: opts.pop(k) for k in attack_option_names() if k in opts}
    settings = (settings_from_options({"attack": attack, "batch_size": batch_size,
                                       "seed": seed, **budget}) if attack else None)
    return Context(spec, checkpoints, **opts, batch_size=batch_size, attack=attack,
                   settings=settings, echo=click.echo, progress=progressbar,
                   precision=precision)


@click.command()
@embedding_options
@extractor_option
def embed(extractors, **opts):
    """Compute (or check) the cached embeddings h(x) of the train and test sets."""
    ctx = _context(embeddings_only=True, **opts)
    for extractor in extractors:
        emb = ctx.embeddings(extractor)
        for part in ("train", "test"):
            values = emb.get(part)
            click.echo(f"{extractor} {part}: {values.shape[0]} x {values.shape[1]} embeddings")
        click.echo(f"cache: {emb.path}")


@click.command("distance", short_help="Figures 1-3: attack success rate and histogram against the distance D (Eq. 2).")
@context_options
@extractor_option
@k_option
@p_option
@out_dir_option
def distance_command(extractors, k, p, out_dir, **opts):
    """Figures 1-3: attack success rate and histogram against the distance D (Eq. 2)."""
    from bsattack.pipelines.figures import distance_figures
    distance_figures(_context(out_dir=out_dir, **opts), extractors, k, p, [command_line()])


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
    from bsattack.pipelines.figures import histogram_figures
    shown = None if alpha is None else (alpha, beta)
    histogram_figures(_context(out_dir=out_dir, embeddings_only=True, **opts), extractors,
                      shown, k, p, [command_line()])


def divergence_options(command):
    """The Table 1 K-L options (t-SNE subsample, grid, seed, implementation, perplexity) and
    the output folder."""
    for option in reversed([per_class_option, grid_option, tsne_seed_option, tsne_option,
                            perplexity_option, out_dir_option]):
        command = option(command)
    return command


@click.command(short_help="Table 1 row: average K-L divergence (Eq. 3), attack success and test accuracy.")
@context_options
@divergence_options
def kl(per_class, grid, tsne_seed, tsne, perplexity, out_dir, **opts):
    """Table 1 row: average K-L divergence (Eq. 3), attack success and test accuracy."""
    from bsattack.pipelines.figures import table1_row
    table1_row(_context(out_dir=out_dir, **opts), per_class, grid, tsne_seed, tsne, perplexity,
               [command_line()])


@click.command()
@context_options
@k_option
@p_option
@divergence_options
def figures(k, p, per_class, grid, tsne_seed, tsne, perplexity, out_dir, **opts):
    """Figures 1-3 and 5 (both extractors) and the Table 1 row of one data set."""
    from bsattack.pipelines.figures import distance_figures, histogram_figures, table1_row
    ctx = _context(out_dir=out_dir, **opts)
    header = [command_line()]
    distance_figures(ctx, ("adv", "nat"), k, p, header)
    histogram_figures(ctx, ("adv", "nat"), None, k, p, header)
    table1_row(ctx, per_class, grid, tsne_seed, tsne, perplexity, header)
