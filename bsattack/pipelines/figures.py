"""Figures 1-3 (success against the distance D, Eq. 2), Figure 5 (D of the original and the
scaled test set) and the Table 1 row (Eq. 3 K-L, success, accuracy) of one data set, computed
from the cached embeddings and attack results and written by :mod:`bsattack.report`.

``Context`` opens the data, both checkpoints, their embeddings and the attack settings once;
each function takes it and writes its files.  ``--checkpoint`` is always the adversarially
trained model (the one attacked, and the feature extractor h of panel a), the natural one is
h of panel b.
"""
import os

from bsattack import data, detect, measures, models
from bsattack.datasets import get_spec
from bsattack.embed import Embeddings
from bsattack.experiment import run_blindspot
from bsattack.manifest import resolve_checkpoint
from bsattack.outputs import save_json
from bsattack.paths import CACHE_DIR
from bsattack.progress import silent
from bsattack.report import blindspot_histogram, distance_figure, table1
from bsattack.shifts import BlindSpot


class Context:
    """Checkpoints, data, embeddings and attack settings (an entry of
    :mod:`bsattack.attacks.registry`'s settings, or None) of one data set, opened once."""

    def __init__(self, dataset, checkpoint, natural_checkpoint, data_dir, validation_size,
                 cache_dir=CACHE_DIR, batch_size=500, attack=None, n=None, settings=None,
                 echo=print, progress=silent):
        self.dataset, self.cache_dir, self.batch_size = dataset, cache_dir, batch_size
        self.attack_name, self.n, self.settings = attack, n, settings
        self.echo, self.progress = echo, progress
        self.checkpoints = {"adv": resolve_checkpoint(dataset, checkpoint, echo=echo),
                            "nat": resolve_checkpoint(dataset, natural_checkpoint, natural=True,
                                                      echo=echo)}
        self.split = data.load(dataset, data_dir, validation_size, echo=echo)
        self._embeddings = {}

    def embeddings(self, extractor):
        if extractor not in self._embeddings:
            self._embeddings[extractor] = Embeddings(
                self.dataset, self.checkpoints[extractor], self.split, self.cache_dir,
                self.batch_size, echo=self.echo, progress=self.progress)
        return self._embeddings[extractor]

    def describe(self, extractor):
        digest = self.embeddings(extractor).file_key["checkpoint_sha256"]
        return f"extractor h: {self.checkpoints[extractor]} (sha256 {digest[:16]})"

    def attack(self):
        """Per-image results of the attack on the first n original test images (cached by
        :func:`bsattack.experiment.run_blindspot`, shared with `blindspot` / `tables`)."""
        return run_blindspot(self.dataset, self.checkpoints["adv"], settings=self.settings,
                             n=self.n, split=self.split, cache_dir=self.cache_dir,
                             echo=self.echo, progress_for=self.progress)


def _xlabel(k, p):
    return f"D: mean l{p:g} distance to the {k} nearest training embeddings"


def _panel(extractor):
    return "a" if extractor == "adv" else "b"


def distance_figures(ctx, extractors, k, p, out_dir, header):
    """Figures 1-3: one panel per extractor; returns {extractor: Association}."""
    result = ctx.attack()
    attack, n = ctx.attack_name, ctx.n
    attacked, success = result.correct, result.success_eps
    found = {}
    for extractor in extractors:
        all_d = measures.test_distances(ctx.embeddings(extractor), k=k, p=p)
        d = all_d[result.index]
        rows = distance_figure.bin_table(all_d, d, attacked, success)
        assoc = distance_figure.association(d, attacked, success)
        number = get_spec(ctx.dataset).paper.figure
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
        save_json(stem + ".json", {
            "kind": "distance", "dataset": ctx.dataset, "extractor": extractor,
            "figure": number, "header": lines, "eps": result.eps, "n": n,
            "attacked": assoc.attacked, "successes": assoc.successes,
            "spearman": assoc.spearman, "p_value": assoc.p_value, "auroc": assoc.auroc})
        ctx.echo(f"{ctx.dataset} {extractor}: {assoc.successes}/{assoc.attacked} attacked images "
                 f"fooled; Spearman rho(D, success) = {assoc.spearman:.4f} "
                 f"(p = {assoc.p_value:.2g}), AUROC = {assoc.auroc:.4f} -> {', '.join(paths)}")
        found[extractor] = assoc
    return found


def histogram_figures(ctx, extractors, transform, k, p, out_dir, header):
    """Figure 5: D of the original and the ``transform``ed (None: the paper's for the data set)
    test set, per extractor; returns {extractor: AUROC}."""
    transform = transform or BlindSpot(*get_spec(ctx.dataset).paper.shown)
    alpha, beta = transform.alpha, transform.beta
    found = {}
    for extractor in extractors:
        emb = ctx.embeddings(extractor)
        original = measures.test_distances(emb, k=k, p=p)
        scaled = measures.test_distances(emb, transform, k=k, p=p)
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
        save_json(stem + ".json", {
            "kind": "histogram", "dataset": ctx.dataset, "extractor": extractor,
            "header": lines, "alpha": alpha, "beta": beta, "auroc": auc,
            "n_original": len(original), "n_scaled": len(scaled),
            "mean_original": float(original.mean()), "mean_scaled": float(scaled.mean())})
        ctx.echo(f"{ctx.dataset} {extractor} alpha={alpha:g} beta={beta:g}: mean D "
                 f"{original.mean():.4f} -> {scaled.mean():.4f}, AUROC {auc:.4f} -> "
                 f"{', '.join(paths)}")
        found[extractor] = auc
    return found


def table1_row(ctx, per_class, grid, seed, tsne, perplexity, out_dir, header):
    """Table 1 for one data set (K-L with the adversarially trained h), written as
    table1_<dataset>.{md,csv}; returns the row."""
    results = measures.class_divergences(ctx.embeddings("adv"), per_class, seed, tsne, grid,
                                         perplexity, echo=ctx.echo)
    summary = ctx.attack().summary()
    accuracy = models.accuracy(ctx.dataset, ctx.checkpoints["adv"], ctx.split.test_x,
                               ctx.split.test_y, ctx.batch_size)
    row = table1.row(ctx.dataset, results, summary, accuracy, ctx.checkpoints["adv"])
    lines = header + [f"K-L: t-SNE ({tsne}, perplexity {perplexity:g}, seed {seed}) of "
                      f"{'all' if per_class is None else f'at most {per_class}'} train/test "
                      f"points per class, KDE Scott, {grid}x{grid} grid",
                      f"attack: {ctx.settings.describe()}",
                      "per-class K-L: " + ", ".join(f"{r.label}:{r.kl.value:.4f}" for r in results)]
    stem = os.path.join(out_dir, f"table1_{ctx.dataset}")
    paths = table1.write(stem, [row], lines)
    save_json(stem + ".json", {
        "kind": "table1", "dataset": ctx.dataset, "header": lines, "row": row,
        "attacked": summary["attacked"],
        "successes": int(round(summary["success_eps"] * summary["attacked"]))
        if summary["attacked"] else 0,
        "per_class_kl": {str(r.label): r.kl.value for r in results}})
    ctx.echo(f"{ctx.dataset}: avg K-L {row['avg_kl']} (paper {row['paper_avg_kl']}), success "
             f"{row['success_pct']}% (paper {row['paper_success_pct']}%), accuracy "
             f"{row['accuracy_pct']}% (paper {row['paper_accuracy_pct']}%) -> {', '.join(paths)}")
    return row
