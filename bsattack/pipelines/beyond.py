"""Beyond the paper: the blind-spot map (accuracy and success over a dense grid of the valid
(α, β) region, where the paper samples six points per data set), other natural shift families,
and the before/after comparison of blind-spot augmented training.  Every point or setting runs
through :func:`bsattack.experiment.run_many` (cached per image, so runs resume and share
points with ``tables``/``blindspot``); the tables and figures are drawn by
:mod:`bsattack.report.blindspot_map` and :mod:`bsattack.report.shift_table`.

The map's grid is α × (β as a fraction of its limit): β = f·(1 − α)/2 for fractions
f ∈ [-1, 1], so every point is valid, the edges β = ±(1 − α)/2 are on it (the paper's β ≠ 0
points sit on the upper edge), and α = 1 contributes the single point β = 0.

Accuracy of a setting may be measured on the first ``accuracy_n`` test images (a forward pass,
so it can use many more images than the attack; default: the attacked N).

Public API: ``grid``, ``even_grid``, ``run_map``, ``paper_settings``, ``accuracies``,
``run_settings``, ``countermeasure_row``.
"""
import numpy as np
import tensorflow as tf

from bsattack import models
from bsattack.errors import BsattackError
from bsattack.experiment import paper_grid, run_many
from bsattack.shift_verdicts import family_verdicts
from bsattack.shifts import DEFAULT_SHIFTS, ORIGINAL, BlindSpot, Shift, parse
from bsattack.transforms import to_01, to_pm, validate

DIGITS = 6     # α, β rounded so that grid points equal the paper's (e.g. 0.9, 0.05) exactly


def grid(alphas, fractions):
    """Sorted, de-duplicated valid (α, β, fraction) points: β = fraction·(1 − α)/2."""
    points = {}
    for alpha in alphas:
        if not 0 < alpha <= 1:
            raise BsattackError(f"grid alpha {alpha:g} is outside (0, 1]")
        for f in fractions:
            if not -1 <= f <= 1:
                raise BsattackError(f"beta fraction {f:g} is outside [-1, 1]")
            a = round(float(alpha), DIGITS)
            b = round(f * (1.0 - a) / 2.0, DIGITS) + 0.0     # + 0.0 turns -0.0 into 0.0
            validate(a, b)
            points.setdefault((a, b), 0.0 if a == 1 else float(f))
    return [(a, b, f) for (a, b), f in sorted(points.items())]


def even_grid(alpha_min=0.6, alpha_steps=9, beta_steps=5):
    """α evenly from ``alpha_min`` to 1; β fractions evenly over [-1, 1] (odd: includes 0)."""
    if alpha_steps < 2 or beta_steps < 1:
        raise BsattackError("the map needs --alpha-steps >= 2 and --beta-steps >= 1")
    fractions = np.linspace(-1, 1, beta_steps) if beta_steps > 1 else [0.0]
    return grid(np.linspace(alpha_min, 1.0, alpha_steps), fractions)


def run_map(dataset, checkpoint, points, n, settings, split, cache_dir, echo, on_point=None,
            executor=None):
    """Summaries (``BlindspotResult.summary()`` + ``beta_fraction``) of every grid point, all
    points handed to ``executor`` together; ``on_point(summaries so far)`` in grid order."""
    summaries = []

    def done(results):
        s = results[-1].summary()
        summaries.append({**s, "beta_fraction": points[len(summaries)][2]})
        echo(f"[{len(summaries)}/{len(points)}] α={s['alpha']:g} β={s['beta']:g}: accuracy "
             f"{100 * s['accuracy']:.2f}%, success @ε {100 * s['success_eps']:.2f}%")
        if on_point is not None:
            on_point(summaries)
    run_many(dataset, checkpoint, [(BlindSpot(a, b), settings) for a, b, _ in points], n, split,
             cache_dir=cache_dir, echo=echo, executor=executor, on_result=done)
    return summaries


def paper_settings(dataset, shift_specs=(), with_paper=True):
    """The original, the paper's (α, β) points (``with_paper``) and the shifts
    ('family:strength' specs; default: :data:`bsattack.shifts.DEFAULT_SHIFTS`)."""
    shifts = [parse(s) for s in shift_specs] if shift_specs else list(DEFAULT_SHIFTS)
    paper = [t for t in paper_grid(dataset) if not t.is_original] if with_paper else []
    return [ORIGINAL] + paper + shifts


def accuracies(dataset, checkpoint, settings, images01, labels, batch_size=500):
    """{name: accuracy} of ``checkpoint`` on each setting's (a :mod:`bsattack.shifts`
    transform) shifted ``images01``, in one session."""
    graph = tf.compat.v1.Graph()
    out = {}
    with graph.as_default(), models.new_session(graph) as sess:
        model = models.load(sess, dataset, checkpoint)
        for s in settings:
            x = to_01(s(to_pm(images01)))
            predictions = models.run_batched(sess, model.predictions, model.x01, x, batch_size)
            out[s.name] = float(np.mean(predictions == labels))
    return out


def strength(setting):
    """The table's strength cell: a :class:`bsattack.shifts.Shift`'s strength, else ''."""
    return f"{setting.strength:g}" if isinstance(setting, Shift) else ""


def run_settings(dataset, checkpoint, settings, n, attack_settings, split, cache_dir, echo,
                 accuracy_n=None, executor=None):
    """{label: summary} of every setting (the original first), through ``run_many``;
    ``accuracy`` (and ``accuracy_n``) from the first ``accuracy_n`` test images when given."""
    big = (accuracies(dataset, checkpoint, settings, split.test_x[:accuracy_n],
                      split.test_y[:accuracy_n]) if accuracy_n else {})
    out = {}

    def done(results):
        s = settings[len(out)]
        summary = results[-1].summary()
        echo(f"[{len(out) + 1}/{len(settings)}] {dataset} {s.name}: accuracy "
             f"{100 * summary['accuracy']:.2f}%, success @ε {100 * summary['success_eps']:.2f}%")
        if big:
            summary.update(accuracy=big[s.name], accuracy_attacked_n=summary["accuracy"])
        out[s.name] = {**summary, "setting": s.name, "family": s.family,
                       "strength": strength(s), "accuracy_n": accuracy_n or n}
    run_many(dataset, checkpoint, [(s, attack_settings) for s in settings], n, split,
             cache_dir=cache_dir, echo=echo, executor=executor, on_result=done)
    return out


def countermeasure_row(name, spec, dataset, path, split, summaries, shift_rows):
    """One model's row of the countermeasure table from its map ``summaries`` and shift
    table rows: natural accuracy (whole test set), robust accuracy, map means and worst point,
    the shift families it has blind spots in."""
    base = next(s for s in summaries if (s["alpha"], s["beta"]) == (1.0, 0.0))
    shifted = [s for s in summaries if s["alpha"] < 1]
    if not shifted:
        raise BsattackError("the countermeasure map needs grid points with α < 1")
    mean = lambda key: sum(s[key] for s in shifted) / len(shifted)   # noqa: E731
    worst = max(shifted, key=lambda s: s["success_eps"])
    blind = family_verdicts(shift_rows)
    return {"model": name, "checkpoint": spec,
            "natural_accuracy_10k": models.accuracy(dataset, path, split.test_x, split.test_y),
            "accuracy_n": base["accuracy"], "success_eps": base["success_eps"],
            "robust_accuracy": base["accuracy"] * (1 - base["success_eps"]),
            "map_mean_accuracy": mean("accuracy"), "map_mean_success_eps": mean("success_eps"),
            "map_mean_success_alpha_eps": mean("success_alpha_eps"),
            "map_worst": f"{100 * worst['success_eps']:.1f} at α={worst['alpha']:g} "
                         f"β={worst['beta']:g}",
            "shift_blind_spots": "; ".join(f"{f}: {', '.join(v)}" for f, v in blind.items() if v)
                                 or "none"}
