"""Beyond the paper: `blindspot-map` (the whole valid (α, β) region), `shifts` (other natural
shift families), `detectability` (AUROC of the Eq. 2 distance per shift) and `countermeasure`
(models trained with and without blind-spot augmentation, compared); the work is in
:mod:`bsattack.pipelines.beyond`, the tables and figures in :mod:`bsattack.report`."""
import os

import click

from bsattack.commands.attack_options import (attack_option_names, attack_options,
                                               settings_from_options)
from bsattack.commands.common import header_lines, progressbar
from bsattack.commands.options import (RESULTS_DIR, FiniteFloat, attacked_n_option,
                                       cache_dir_option, checkpoint_option, chosen_precision,
                                       data_dir_option, executor_from_options, executor_options,
                                       paper_dataset_option, precision_option,
                                       resolve_checkpoint, validation_size_option)

OUT_DEFAULT = os.path.join(RESULTS_DIR, "beyond")
out_option = click.option("--out", type=click.Path(file_okay=False), default=OUT_DEFAULT,
                          show_default=True, help="Folder for the tables and figures.")


def _floats(ctx, param, value):
    if not value:
        return None
    try:
        return [FiniteFloat().convert(v, param, ctx) for v in value.split(",")]
    except click.BadParameter:
        raise click.BadParameter("expected comma-separated finite numbers, e.g. 0.6,0.8,1") \
            from None


def grid_options(command):
    options = [
        click.option("--alpha-min", type=FiniteFloat(0, 1, min_open=True), default=0.6,
                     show_default=True, help="Smallest α of the even grid."),
        click.option("--alpha-steps", type=click.IntRange(min=2), default=9, show_default=True,
                     help="α values from --alpha-min to 1."),
        click.option("--beta-steps", type=click.IntRange(min=1), default=5, show_default=True,
                     help="β values per α, evenly over [-(1-α)/2, (1-α)/2]."),
        click.option("--alphas", callback=_floats, default=None,
                     help="Explicit α grid, e.g. 0.6,0.7,0.8,0.9,1 (overrides the even one)."),
        click.option("--beta-fractions", callback=_floats, default=None,
                     help="Explicit β grid as fractions of (1-α)/2, e.g. -1,0,1."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def shift_option(command):
    command = click.option(
        "--accuracy-n", type=click.IntRange(min=1), default=2000, show_default=True,
        help="Measure accuracy (the blind-spot criterion) on the first N test images (at most "
             "the test set); success is measured on the first --n.")(command)
    return click.option("--shift", "shift_specs", multiple=True, metavar="FAMILY:STRENGTH",
                        help="A shift to test (repeatable; e.g. rotate:10, blur:0.5, gamma:2, "
                             "translate-x:-1, invert:1) [default: the standard set].")(command)


def _points(alpha_min, alpha_steps, beta_steps, alphas, beta_fractions):
    from bsattack.pipelines import beyond
    if alphas or beta_fractions:
        return beyond.grid(alphas or [alpha_min + (1 - alpha_min) * i / (alpha_steps - 1)
                                      for i in range(alpha_steps)],
                           beta_fractions if beta_fractions is not None else [-1, 0, 1])
    return beyond.even_grid(alpha_min, alpha_steps, beta_steps)


ATTACK_KEYS = tuple(attack_option_names())


def experiment_options(with_checkpoint=True):
    """Data set, attack budget and precision, checkpoint, data and output options of every
    command here."""
    def apply(command):
        decorators = [paper_dataset_option(), attacked_n_option(), cache_dir_option,
                      attack_options(default_attack="pgd"),
                      precision_option("Every accuracy and prediction in the results is "
                                       "float32's, and so are detectability's embeddings.")]
        decorators += [checkpoint_option] if with_checkpoint else []
        decorators += [data_dir_option, validation_size_option, out_option]
        for decorator in reversed(decorators):
            command = decorator(command)
        return command
    return apply


def _prepare(opts):
    """(data set spec, attack settings, resolved checkpoint or None, precision) from the
    shared options."""
    spec = opts["spec"]
    settings = settings_from_options({k: opts[k] for k in ATTACK_KEYS})
    path = resolve_checkpoint(spec, opts["checkpoint"]) if "checkpoint" in opts else None
    return spec, settings, path, chosen_precision(opts["precision"], click.echo)


def _common(opts):
    """The keyword arguments every pipeline call here shares."""
    return {key: opts[key] for key in ("data_dir", "validation_size", "cache_dir", "out")}


@click.command("blindspot-map")
@experiment_options()
@grid_options
@executor_options
def blindspot_map_command(**o):
    """Accuracy and success at ε and α·ε over a dense grid of the valid (α, β) region:
    heat-maps (PNG, paper's points circled) and CSV; resumable (each point is cached)."""
    from bsattack.pipelines import beyond
    points = _points(o["alpha_min"], o["alpha_steps"], o["beta_steps"], o["alphas"],
                     o["beta_fractions"])
    spec, settings, path, precision = _prepare(o)
    n = o["n"]
    click.echo(f"{len(points)} grid points × first {n} test images ({o['attack']})")
    header = header_lines(path, n, settings, precision) + [f"grid: {len(points)} (α, β) points"]
    with executor_from_options(o["workers"], o["ray_address"]) as executor:
        written = beyond.blindspot_map(spec, path, points, n, o["attack"], settings,
                                       header=header, echo=click.echo, executor=executor,
                                       precision=precision, **_common(o))
    click.echo(f"wrote {', '.join(written)}")


@click.command("shifts")
@experiment_options()
@shift_option
@executor_options
def shifts_command(**o):
    """Accuracy and success at ε under other natural shifts (gamma, blur, translation,
    rotation, inversion) and the paper's (α, β) points; which are blind spots."""
    from bsattack.pipelines import beyond
    spec, settings, path, precision = _prepare(o)
    with executor_from_options(o["workers"], o["ray_address"]) as executor:
        stem = beyond.shifts(spec, path, o["shift_specs"], o["n"], o["attack"], settings,
                             o["accuracy_n"],
                             header=header_lines(path, o["n"], settings, precision),
                             echo=click.echo, executor=executor, precision=precision,
                             **_common(o))
    click.echo(f"wrote {stem}.md/.csv")


@click.command("detectability", short_help="AUROC of the Eq. 2 distance as a detector of each shift, next to its rise in attack success.")
@experiment_options()
@shift_option
@click.option("--n-detect", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Test images per side (original / shifted) of the AUROC.")
@click.option("--k", type=click.IntRange(min=1), default=5, show_default=True,
              help="Neighbours in Eq. 2.")
@click.option("--adv-extractor", default=None, help="Adversarially trained h [default: the "
              "attacked checkpoint].")
@click.option("--nat-extractor", default=None, help="Naturally trained h [default: the data "
              "set's natural checkpoint].")
def detectability_command(**o):
    """AUROC of the Eq. 2 distance (adversarial and natural h) as a detector of each shift,
    next to the shift's rise in attack success (the paper's Figure 5, as numbers)."""
    from bsattack.pipelines import beyond
    spec, settings, path, precision = _prepare(o)
    # the attacked checkpoint, resolved once already, is the default adversarial extractor
    extractors = {"adv": resolve_checkpoint(spec, o["adv_extractor"], option="--adv-extractor")
                  if o["adv_extractor"] else path,
                  "nat": resolve_checkpoint(spec, o["nat_extractor"], natural=True,
                                            option="--nat-extractor")}
    stem = beyond.detectability(spec, path, extractors, o["shift_specs"], o["n"], o["attack"],
                                settings, o["accuracy_n"], o["n_detect"], o["k"],
                                header=header_lines(path, o["n"], settings, precision),
                                echo=click.echo, progress=progressbar, precision=precision,
                                **_common(o))
    click.echo(f"wrote {stem}.md/.csv")


def _model(ctx, param, values):
    models_ = []
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"expected NAME=CHECKPOINT, got '{value}'")
        models_.append((name, path))
    if len({n for n, _ in models_}) != len(models_):
        raise click.BadParameter("model names must differ")
    return models_


@click.command("countermeasure")
@experiment_options(with_checkpoint=False)
@click.option("--model", "model_specs", multiple=True, required=True, callback=_model,
              metavar="NAME=CHECKPOINT",
              help="A model to compare (repeatable), e.g. before=fashion_adv "
                   "control=runs/x/checkpoint-40188 augmented=runs/y/checkpoint-40188.")
@grid_options
@shift_option
def countermeasure_command(**o):
    """Before/after table of blind-spot augmented training: natural accuracy (full test set),
    PGD robust accuracy, the blind-spot map and the shift families, per model."""
    from bsattack.pipelines import beyond
    points = _points(o["alpha_min"], o["alpha_steps"], o["beta_steps"], o["alphas"],
                     o["beta_fractions"])
    spec, settings, _, precision = _prepare(o)
    models_ = [(name, given, resolve_checkpoint(spec, given, option="--model"))
               for name, given in o["model_specs"]]
    stem = beyond.countermeasure(spec, models_, points, o["shift_specs"], o["n"], o["attack"],
                                 settings, o["accuracy_n"],
                                 header_for=lambda path: header_lines(path, o["n"], settings,
                                                                      precision),
                                 echo=click.echo, precision=precision, **_common(o))
    click.echo(f"wrote {stem}.md/.csv")
