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

Every function takes the data set's :class:`bsattack.datasets.DatasetSpec` and resolved
checkpoint paths.  The commands call one of ``blindspot_map``, ``shifts``, ``detectability``,
``countermeasure``: each checks the output and cache folders, loads the data, runs and writes
its files, and returns what it wrote.

Public API: ``grid``, ``even_grid``, ``run_map``, ``paper_settings``, ``accuracies``,
``run_settings``, ``countermeasure_row``, ``blindspot_map``, ``shifts``, ``detectability``,
``countermeasure``.
"""
import os

import numpy as np
import tensorflow as tf

from bsattack import data, models
from bsattack.detect import distance_aurocs
from bsattack.errors import BsattackError
from bsattack.experiment import paper_grid, run_many
from bsattack.outputs import check_writable_dir
from bsattack.progress import silent
from bsattack.report import blindspot_map as map_report
from bsattack.report import countermeasure as countermeasure_report
from bsattack.report import shift_table
from bsattack.shift_verdicts import family_verdicts, shift_rows
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


def run_map(spec, checkpoint, points, n, settings, split, cache_dir, echo, on_point=None,
            executor=None, precision="fp32"):
    """Summaries (``BlindspotResult.summary()`` + ``beta_fraction``) of every grid point, all
    points handed to ``executor`` together, the attack's gradient oracle in ``precision``;
    ``on_point(summaries so far)`` in grid order."""
    summaries = []

    def done(results):
        s = results[-1].summary()
        summaries.append({**s, "beta_fraction": points[len(summaries)][2]})
        echo(f"[{len(summaries)}/{len(points)}] α={s['alpha']:g} β={s['beta']:g}: accuracy "
             f"{100 * s['accuracy']:.2f}%, success @ε {100 * s['success_eps']:.2f}%")
        if on_point is not None:
            on_point(summaries)
    run_many(spec, checkpoint, [(BlindSpot(a, b), settings) for a, b, _ in points], n, split,
             cache_dir=cache_dir, echo=echo, executor=executor, on_result=done,
             precision=precision)
    return summaries


def paper_settings(spec, shift_specs=(), with_paper=True):
    """The original, the paper's (α, β) points (``with_paper``) and the shifts
    ('family:strength' specs; default: :data:`bsattack.shifts.DEFAULT_SHIFTS`)."""
    shifts = [parse(s) for s in shift_specs] if shift_specs else list(DEFAULT_SHIFTS)
    paper = [t for t in paper_grid(spec) if not t.is_original] if with_paper else []
    return [ORIGINAL] + paper + shifts


def accuracies(spec, checkpoint, settings, images01, labels, batch_size=500):
    """{name: accuracy} of ``checkpoint`` on each setting's (a :mod:`bsattack.shifts`
    transform) shifted ``images01``, in one session."""
    graph = tf.compat.v1.Graph()
    out = {}
    with graph.as_default(), models.new_session(graph) as sess:
        model = models.load(sess, spec, checkpoint)
        for s in settings:
            x = to_01(s(to_pm(images01)))
            predictions = models.run_batched(sess, model.predictions, model.x01, x, batch_size)
            out[s.name] = float(np.mean(predictions == labels))
    return out


def strength(setting):
    """The table's strength cell: a :class:`bsattack.shifts.Shift`'s strength, else ''."""
    return f"{setting.strength:g}" if isinstance(setting, Shift) else ""


def run_settings(spec, checkpoint, settings, n, attack_settings, split, cache_dir, echo,
                 accuracy_n=None, executor=None, precision="fp32"):
    """{label: summary} of every setting (the original first), through ``run_many`` (the
    attack's gradient oracle in ``precision``); ``accuracy`` (and ``accuracy_n``) from the
    first ``accuracy_n`` test images when given (float32 forward passes)."""
    big = (accuracies(spec, checkpoint, settings, split.test_x[:accuracy_n],
                      split.test_y[:accuracy_n]) if accuracy_n else {})
    out = {}

    def done(results):
        s = settings[len(out)]
        summary = results[-1].summary()
        echo(f"[{len(out) + 1}/{len(settings)}] {spec.name} {s.name}: accuracy "
             f"{100 * summary['accuracy']:.2f}%, success @ε {100 * summary['success_eps']:.2f}%")
        if big:
            summary.update(accuracy=big[s.name], accuracy_attacked_n=summary["accuracy"])
        out[s.name] = {**summary, "setting": s.name, "family": s.family,
                       "strength": strength(s), "accuracy_n": accuracy_n or n}
    run_many(spec, checkpoint, [(s, attack_settings) for s in settings], n, split,
             cache_dir=cache_dir, echo=echo, executor=executor, on_result=done,
             precision=precision)
    return out


def countermeasure_row(name, given, spec, path, split, summaries, rows):
    """One model's row of the countermeasure table from its map ``summaries`` and shift
    table rows: natural accuracy (whole test set), robust accuracy, map means and worst point,
    the shift families it has blind spots in; ``given`` is the checkpoint as the user named it."""
    base = next(s for s in summaries if (s["alpha"], s["beta"]) == (1.0, 0.0))
    shifted = [s for s in summaries if s["alpha"] < 1]
    if not shifted:
        raise BsattackError("the countermeasure map needs grid points with α < 1")
    mean = lambda key: sum(s[key] for s in shifted) / len(shifted)   # noqa: E731
    worst = max(shifted, key=lambda s: s["success_eps"])
    blind = family_verdicts(rows)
    return {"model": name, "checkpoint": given,
            "natural_accuracy_10k": models.accuracy(spec, path, split.test_x, split.test_y),
            "accuracy_n": base["accuracy"], "success_eps": base["success_eps"],
            "robust_accuracy": base["accuracy"] * (1 - base["success_eps"]),
            "map_mean_accuracy": mean("accuracy"), "map_mean_success_eps": mean("success_eps"),
            "map_mean_success_alpha_eps": mean("success_alpha_eps"),
            "map_worst": f"{100 * worst['success_eps']:.1f} at α={worst['alpha']:g} "
                         f"β={worst['beta']:g}",
            "shift_blind_spots": "; ".join(f"{f}: {', '.join(v)}" for f, v in blind.items() if v)
                                 or "none"}


def _split(spec, data_dir, validation_size, out, cache_dir, echo):
    """The data split, after the output and cache folders are checked."""
    check_writable_dir(out, f"--out {out}")
    check_writable_dir(cache_dir, f"--cache-dir {cache_dir}")
    os.makedirs(out, exist_ok=True)
    return data.load(spec, data_dir, validation_size, echo=echo)


def _map(spec, checkpoint, model, points, n, attack, settings, split, cache_dir, stem, header,
         echo, executor=None, precision="fp32"):
    """The map's summaries, its CSV (rewritten after every point) and PNG at ``stem``."""
    csv_path = stem + ".csv"
    summaries = run_map(
        spec, checkpoint, points, n, settings, split, cache_dir, echo,
        on_point=lambda done: map_report.write_csv(done, csv_path, header), executor=executor,
        precision=precision)
    png = map_report.plot(summaries, spec.name, stem + ".png",
                          map_report.title(spec.name, model, attack, n), header)
    return summaries, [csv_path, png]


def blindspot_map(spec, checkpoint, points, n, attack, settings, data_dir, validation_size,
                  cache_dir, out, header, echo=print, executor=None, precision="fp32"):
    """`blindspot-map`: ``blindspot_map_<dataset>_<attack>`` .csv and .png in ``out``;
    returns their paths."""
    split = _split(spec, data_dir, validation_size, out, cache_dir, echo)
    stem = os.path.join(out, f"blindspot_map_{spec.name}_{attack}")
    return _map(spec, checkpoint, os.path.basename(checkpoint.rstrip(os.sep)), points, n,
                attack, settings, split, cache_dir, stem, header, echo, executor, precision)[1]


def _shift_rows(spec, checkpoint, settings_list, n, settings, split, cache_dir, accuracy_n,
                echo, executor=None, precision="fp32"):
    return shift_rows(run_settings(spec, checkpoint, settings_list, n, settings, split,
                                   cache_dir, echo, min(accuracy_n, len(split.test_x)),
                                   executor, precision))


def shifts(spec, checkpoint, shift_specs, n, attack, settings, accuracy_n, data_dir,
           validation_size, cache_dir, out, header, echo=print, executor=None,
           precision="fp32"):
    """`shifts`: the original, the paper's points and the shifts, with their verdicts, as
    ``shifts_<dataset>_<attack>`` .md and .csv in ``out``; returns the stem."""
    split = _split(spec, data_dir, validation_size, out, cache_dir, echo)
    rows = _shift_rows(spec, checkpoint, paper_settings(spec, shift_specs), n, settings, split,
                       cache_dir, accuracy_n, echo, executor, precision)
    return shift_table.write_table(rows, os.path.join(out, f"shifts_{spec.name}_{attack}"),
                                   header)


def detectability(spec, checkpoint, extractors, shift_specs, n, attack, settings, accuracy_n,
                  n_detect, k, data_dir, validation_size, cache_dir, out, header, echo=print,
                  progress=silent, precision="fp32"):
    """`detectability`: the shift table with the AUROC of the Eq. 2 distance (k neighbours,
    the first ``n_detect`` test images) under each extractor of ``extractors`` ({name:
    checkpoint}) as ``detectability_<dataset>_<attack>`` .md and .csv; returns the stem.
    ``precision`` is the attack's; the embeddings behind the AUROCs are float32's."""
    settings_list = paper_settings(spec, shift_specs)
    split = _split(spec, data_dir, validation_size, out, cache_dir, echo)
    rows = _shift_rows(spec, checkpoint, settings_list, n, settings, split, cache_dir,
                       accuracy_n, echo, precision=precision)
    for name, extractor in extractors.items():
        aurocs = distance_aurocs(spec, extractor, split, settings_list, n_detect, k,
                                 cache_dir=cache_dir, echo=echo, progress=progress)
        for r in rows:
            r[f"auroc_{name}"] = aurocs.get(r["setting"], "")
    return shift_table.write_table(rows, os.path.join(out, f"detectability_{spec.name}_{attack}"),
                                   header + [shift_table.auroc_header(k, n_detect, extractors)],
                                   extra_columns=tuple(f"auroc_{name}" for name in extractors))


def countermeasure(spec, models_, points, shift_specs, n, attack, settings, accuracy_n,
                   data_dir, validation_size, cache_dir, out, header_for, echo=print,
                   precision="fp32"):
    """`countermeasure`: per model of ``models_`` ((name, as given, checkpoint path)) its map
    and shift table, and the before/after table ``countermeasure_<dataset>_<attack>`` .md and
    .csv (rewritten after every model); ``header_for(checkpoint)`` is a file's header.
    Returns the stem of the table."""
    settings_list = paper_settings(spec, shift_specs, with_paper=False)
    split = _split(spec, data_dir, validation_size, out, cache_dir, echo)
    stem_all = os.path.join(out, f"countermeasure_{spec.name}_{attack}")
    rows = []
    for name, given, path in models_:
        header = header_for(path)
        stem = os.path.join(out, f"countermeasure_{spec.name}_{name}")
        summaries, written = _map(spec, path, f"{name} ({given})", points, n, attack, settings,
                                  split, cache_dir, stem + "_map", header, echo,
                                  precision=precision)
        echo(f"wrote {', '.join(written)}")
        table_rows = _shift_rows(spec, path, settings_list, n, settings, split, cache_dir,
                                 accuracy_n, echo, precision=precision)
        echo(f"wrote {shift_table.write_table(table_rows, stem + '_shifts', header)}.md/.csv")
        rows.append(countermeasure_row(name, given, spec, path, split, summaries, table_rows))
        common = [h for h in header if not h.startswith("checkpoint:")]
        countermeasure_report.write(rows, stem_all,
                                    common + [f"map grid: {len(points)} (α, β) points"])
    return stem_all
