"""Figures 1-3 (success against the distance D, Eq. 2), Figure 5 (D of the original and the
scaled test set) and the Table 1 row (Eq. 3 K-L, success, accuracy) of one data set, computed
from the cached embeddings and attack results and written by :mod:`bsattack.report`.

``Context`` opens the data, the embeddings and the attack settings of one data set (its
:class:`bsattack.datasets.DatasetSpec`) and two resolved checkpoints once; each function takes
it and writes its files into ``ctx.out_dir``.  ``checkpoints['adv']`` is the adversarially
trained model (the one attacked, and the feature extractor h of panel a), ``'nat'`` the
naturally trained one (h of panel b).  The embeddings are always float32's (the distances
and divergences are results); only the attack takes ``precision``.
"""
import os

from bsattack import data, detect, measures, models, precision
from bsattack.embed import Embeddings
from bsattack.experiment import run_blindspot
from bsattack.outputs import check_writable_dir
from bsattack.paths import CACHE_DIR
from bsattack.progress import silent
from bsattack.report import blindspot_histogram, distance_figure, table1
from bsattack.shifts import BlindSpot


class Context:
    """Checkpoints ({'adv': path, 'nat': path}), data, embeddings, output folder and attack
    (its name and settings, an entry of :mod:`bsattack.attacks.registry`'s, or None, and the
    precision of its gradient oracle) of one data set, opened once, after the output and
    cache folders are checked."""

    def __init__(self, spec, checkpoints, data_dir, validation_size, out_dir=None,
                 cache_dir=CACHE_DIR, batch_size=500, attack=None, n=None, settings=None,
                 echo=print, progress=silent, precision="fp32"):
        if out_dir:
            check_writable_dir(out_dir, f"--out {out_dir}")
        if cache_dir:
            check_writable_dir(cache_dir, f"--cache-dir {cache_dir}")
        self.spec, self.checkpoints, self.out_dir = spec, checkpoints, out_dir
        self.cache_dir, self.batch_size = cache_dir, batch_size
        self.attack_name, self.n, self.settings = attack, n, settings
        self.precision = precision
        self.echo, self.progress = echo, progress
        self.split = data.load(spec, data_dir, validation_size, echo=echo)
        self._embeddings = {}

    def embeddings(self, extractor):
        if extractor not in self._embeddings:
            self._embeddings[extractor] = Embeddings(
                self.spec, self.checkpoints[extractor], self.split, self.cache_dir,
                self.batch_size, echo=self.echo, progress=self.progress)
        return self._embeddings[extractor]

    def digest(self, extractor):
        """The SHA-256 of ``extractor``'s checkpoint, as its embeddings are keyed."""
        return self.embeddings(extractor).file_key["checkpoint_sha256"]

    def attack(self):
        """Per-image results of the attack on the first n original test images (cached by
        :func:`bsattack.experiment.run_blindspot`, shared with `blindspot` / `tables`)."""
        return run_blindspot(self.spec, self.checkpoints["adv"], settings=self.settings,
                             n=self.n, split=self.split, cache_dir=self.cache_dir,
                             echo=self.echo, progress_for=self.progress,
                             precision=self.precision)


def _panel(extractor):
    return "a" if extractor == "adv" else "b"


def distance_figures(ctx, extractors, k, p, header):
    """Figures 1-3: one panel per extractor; returns {extractor: Association}."""
    result = ctx.attack()
    attacked, success = result.correct, result.success_eps
    dataset, number = ctx.spec.name, ctx.spec.paper.figure
    found = {}
    for extractor in extractors:
        all_d = measures.test_distances(ctx.embeddings(extractor), k=k, p=p)
        d = all_d[result.index]
        rows = distance_figure.bin_table(all_d, d, attacked, success)
        assoc = distance_figure.association(d, attacked, success)
        stem = os.path.join(ctx.out_dir, f"figure{number}{_panel(extractor)}_{dataset}_{extractor}")
        paths = distance_figure.write_panel(
            stem, rows, assoc, dataset, number, extractor, ctx.checkpoints[extractor],
            ctx.digest(extractor), ctx.checkpoints["adv"], ctx.attack_name, ctx.settings,
            result.eps, ctx.n, k, p, header + precision.header(ctx.precision))
        ctx.echo(f"{dataset} {extractor}: {assoc.successes}/{assoc.attacked} attacked images "
                 f"fooled; Spearman rho(D, success) = {assoc.spearman:.4f} "
                 f"(p = {assoc.p_value:.2g}), AUROC = {assoc.auroc:.4f} -> {', '.join(paths)}")
        found[extractor] = assoc
    return found


def histogram_figures(ctx, extractors, shown, k, p, header):
    """Figure 5: D of the original and the x' = αx + β test set, (α, β) = ``shown`` (None:
    the paper's for the data set), per extractor; returns {extractor: AUROC}."""
    transform = BlindSpot(*(shown or ctx.spec.paper.shown))
    alpha, beta = transform.alpha, transform.beta
    dataset = ctx.spec.name
    found = {}
    for extractor in extractors:
        emb = ctx.embeddings(extractor)
        original = measures.test_distances(emb, k=k, p=p)
        scaled = measures.test_distances(emb, transform, k=k, p=p)
        auc = detect.auroc(original, scaled)
        stem = os.path.join(ctx.out_dir, f"figure5{_panel(extractor)}_{dataset}_{extractor}")
        paths = blindspot_histogram.write_panel(
            stem, original, scaled, auc, dataset, extractor, ctx.checkpoints[extractor],
            ctx.digest(extractor), alpha, beta, k, p, header)
        ctx.echo(f"{dataset} {extractor} alpha={alpha:g} beta={beta:g}: mean D "
                 f"{original.mean():.4f} -> {scaled.mean():.4f}, AUROC {auc:.4f} -> "
                 f"{', '.join(paths)}")
        found[extractor] = auc
    return found


def table1_row(ctx, per_class, grid, seed, tsne, perplexity, header):
    """Table 1 for one data set (K-L with the adversarially trained h), written as
    table1_<dataset>.{md,csv,json}; returns the row."""
    results = measures.class_divergences(ctx.embeddings("adv"), per_class, seed, tsne, grid,
                                         perplexity, echo=ctx.echo)
    summary = ctx.attack().summary()
    accuracy = models.accuracy(ctx.spec, ctx.checkpoints["adv"], ctx.split.test_x,
                               ctx.split.test_y, ctx.batch_size)
    row = table1.row(ctx.spec, results, summary, accuracy, ctx.checkpoints["adv"],
                     len(ctx.split.test_y))
    stem = os.path.join(ctx.out_dir, f"table1_{ctx.spec.name}")
    paths = table1.write_row(stem, row, results, summary, ctx.settings, tsne, perplexity, seed,
                             per_class, grid, header + precision.header(ctx.precision))
    ctx.echo(f"{ctx.spec.name}: avg K-L {row['avg_kl']} (paper {row['paper_avg_kl']}), success "
             f"{row['success_pct']}% (paper {row['paper_success_pct']}%), accuracy "
             f"{row['accuracy_pct']}% (paper {row['paper_accuracy_pct']}%) -> {', '.join(paths)}")
    return row
