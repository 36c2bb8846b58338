"""`blindspot`: one (α, β) setting of the blind-spot attack; `tables`: the paper's Tables 2–3
(the work is in :mod:`bsattack.pipelines.blindspot`)."""
import os

import click

from bsattack.commands.attack_options import attack_options, settings_from_options
from bsattack.commands.common import header_lines, progressbar
from bsattack.commands.options import (PAPER_TABLE_DATASETS, FiniteFloat, attacked_n_option,
                                       cache_dir_option, check_blind_spot, checkpoint_option,
                                       chosen_precision, data_dir_option, dataset_option,
                                       executor_from_options, executor_options, get_spec,
                                       precision_option, resolve_checkpoint,
                                       validation_size_option)
from bsattack.errors import BsattackError
from bsattack.report.costs import evaluations_line


def _run_options(command):
    """Options of both commands besides the attack's."""
    for option in reversed([attacked_n_option(), cache_dir_option, checkpoint_option,
                            data_dir_option, validation_size_option, executor_options,
                            precision_option()]):
        command = option(command)
    return attack_options(command)


@click.command()
@dataset_option()
@click.option("--alpha", type=FiniteFloat(), default=1.0, show_default=True,
              help="Scale α of x' = αx + β.")
@click.option("--beta", type=FiniteFloat(), default=0.0, show_default=True,
              help="Shift β (|β| ≤ (1-α)/2).")
@_run_options
@click.option("--out", type=click.Path(file_okay=False), default=os.path.join("results", "blindspot"),
              show_default=True, help="Folder for the CSV/JSON records and the figure.")
def blindspot(spec, alpha, beta, n, cache_dir, checkpoint, data_dir, validation_size,
              workers, ray_address, precision, out, **attack):
    """Attack x' = αx + β of the first N test images; print accuracy and success at ε, α·ε."""
    from bsattack.pipelines.blindspot import blindspot_setting
    check_blind_spot(alpha, beta)
    settings = settings_from_options(attack)
    path = resolve_checkpoint(spec, checkpoint)
    precision = chosen_precision(precision, click.echo)
    with executor_from_options(workers, ray_address) as executor:
        result, stem = blindspot_setting(
            spec, path, alpha, beta, settings, n, header_lines(path, n, settings, precision),
            out, data_dir, validation_size, cache_dir=cache_dir, executor=executor,
            echo=click.echo, progress_for=progressbar, precision=precision)
    s = result.summary()
    click.echo(f"{spec.name} α={alpha:g} β={beta:g} ({settings.name}, {path}): accuracy "
               f"{100 * s['accuracy']:.2f}% of {s['n']}; success over {s['attacked']} attacked: "
               f"{100 * s['success_eps']:.2f}% at ε={s['eps']:g}, "
               f"{100 * s['success_alpha_eps']:.2f}% at α·ε={s['alpha_eps']:g}")
    click.echo(f"wrote {stem}.csv, {stem}.json, {stem}.png")
    click.echo(evaluations_line([result]))


@click.command()
@click.option("--dataset", type=click.Choice(list(PAPER_TABLE_DATASETS) + ["both"]),
              default="both",
              show_default=True, help="Table 2 (mnist), Table 3 (fashion) or both.")
@_run_options
@click.option("--out", type=click.Path(file_okay=False), default="results", show_default=True,
              help="Folder for tableN_<dataset>_<attack>.{md,csv} and figure4_<dataset>_<attack>.png.")
def tables(dataset, n, cache_dir, checkpoint, data_dir, validation_size, workers, ray_address,
           precision, out, **attack):
    """The paper's Tables 2 (MNIST) and 3 (Fashion-MNIST) with its numbers alongside."""
    from bsattack.pipelines.blindspot import paper_tables
    specs = [get_spec(name) for name in
             (PAPER_TABLE_DATASETS if dataset == "both" else [dataset])]
    if checkpoint and len(specs) > 1:
        raise BsattackError("--checkpoint needs a single --dataset (mnist or fashion)")
    settings = settings_from_options(attack)
    checkpoints = [(spec, resolve_checkpoint(spec, checkpoint)) for spec in specs]
    precision = chosen_precision(precision, click.echo)

    def said(spec, stem, figure, results):
        click.echo(f"wrote {stem}.md, {stem}.csv, {figure} (ε={spec.eps:g})")
        click.echo(evaluations_line(results))

    with executor_from_options(workers, ray_address) as executor:
        paper_tables(checkpoints, settings, n,
                     lambda path: header_lines(path, n, settings, precision), out, data_dir,
                     validation_size, cache_dir=cache_dir, executor=executor, echo=click.echo,
                     progress_for=progressbar, precision=precision, on_table=said)
