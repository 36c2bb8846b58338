"""`blindspot`: one (α, β) setting of the blind-spot attack; `tables`: the paper's Tables 2–3."""
import os

import click

from bsattack.commands.attack_options import attack_options, settings_from_options
from bsattack.commands.common import header_lines, progressbar
from bsattack.datasets import PAPER_N, PAPER_TABLE_DATASETS
from bsattack.errors import BsattackError
from bsattack.paths import CACHE_DIR
from bsattack.commands.options import (FiniteFloat, checkpoint_option, data_dir_option,
                                      dataset_option, executor_from_options, executor_options,
                                      chosen_precision, get_spec, precision_option,
                                      resolve_checkpoint, validation_size_option)



def _run_options(command):
    """Options of both commands besides the attack's."""
    for option in reversed([
            click.option("--n", "n", type=click.IntRange(min=1), default=PAPER_N,
                         show_default=True, help="Attack the first N test images."),
            click.option("--cache-dir", type=click.Path(file_okay=False), default=CACHE_DIR,
                         show_default=True, help="Per-image results (resumable)."),
            checkpoint_option, data_dir_option, validation_size_option, executor_options,
            precision_option()]):
        command = option(command)
    return attack_options(command)


def _evaluations_line(results):
    """What the attacks run now cost: evaluations (forward-only ones beside the gradient ones
    when there are any), attack time (summed over workers) and the network's raw rate.  A
    composite's result includes its members' costs."""
    spent = sum(r.new_grad_evals for r in results)
    forward = sum(r.new_forward_evals for r in results)
    seconds = sum(r.seconds for r in results)
    rates = [r.raw_rate for r in results if r.new_grad_evals]
    if not spent and not forward:
        return "all results came from the cache (no gradient evaluations now)"
    queries = f" and {forward:,} forward evaluations" if forward else ""
    if not spent:
        return f"0 gradient evaluations{queries} in {seconds:.0f} s"
    return (f"{spent:,} gradient evaluations{queries} in {seconds:.0f} s ({spent / seconds:,.0f}/s"
            f"{' gradient evaluations' if forward else ''}; the network's raw forward+backward "
            f"rate here: {min(rates):,.0f}-{max(rates):,.0f}/s)")


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
    from bsattack import data
    from bsattack.experiment import run_blindspot
    from bsattack.outputs import check_writable_dir
    from bsattack.report.figure4 import figure4
    from bsattack.shifts import BlindSpot

    transform = BlindSpot(alpha, beta)
    settings = settings_from_options(attack)
    check_writable_dir(out, "--out")
    if cache_dir:
        check_writable_dir(cache_dir, "--cache-dir")
    path = resolve_checkpoint(spec, checkpoint)
    precision = chosen_precision(precision, click.echo)
    split = data.load(spec, data_dir, validation_size, echo=click.echo)
    with executor_from_options(workers, ray_address) as executor:
        result = run_blindspot(spec, path, transform, settings, n, split=split,
                               cache_dir=cache_dir, echo=click.echo, progress_for=progressbar,
                               executor=executor, precision=precision)
    s = result.summary()
    click.echo(f"{spec.name} α={alpha:g} β={beta:g} ({settings.name}, {path}): accuracy "
               f"{100 * s['accuracy']:.2f}% of {s['n']}; success over {s['attacked']} attacked: "
               f"{100 * s['success_eps']:.2f}% at ε={s['eps']:g}, "
               f"{100 * s['success_alpha_eps']:.2f}% at α·ε={s['alpha_eps']:g}")
    stem = os.path.join(out, f"{spec.name}_{settings.name}_a{alpha:g}_b{beta:g}")
    header = header_lines(path, n, settings, precision)
    _write_records(result, stem, header)
    figure4(result, stem + ".png", header=header)
    click.echo(f"wrote {stem}.csv, {stem}.json, {stem}.png")
    click.echo(_evaluations_line([result]))


def _write_records(result, stem, header):
    from bsattack.outputs import save_json
    from bsattack.report.csvfile import write_csv
    records = result.records()
    save_json(stem + ".json", {"header": header, "summary": result.summary(),
                               "images": records})
    write_csv(stem + ".csv", records, list(records[0]), header)


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
    from bsattack.outputs import check_writable_dir

    specs = [get_spec(name) for name in
             (PAPER_TABLE_DATASETS if dataset == "both" else [dataset])]
    if checkpoint and len(specs) > 1:
        raise BsattackError("--checkpoint needs a single --dataset (mnist or fashion)")
    settings = settings_from_options(attack)
    check_writable_dir(out, "--out")
    if cache_dir:
        check_writable_dir(cache_dir, "--cache-dir")
    paths = [resolve_checkpoint(spec, checkpoint) for spec in specs]   # before any work
    precision = chosen_precision(precision, click.echo)
    with executor_from_options(workers, ray_address) as executor:
        for spec, path in zip(specs, paths):
            _table(spec, path, n, cache_dir, data_dir, validation_size, out, settings,
                   executor, precision)


def _table(spec, path, n, cache_dir, data_dir, validation_size, out, settings, executor,
           precision):
    """One data set's table: its files rewritten as each setting completes, then Figure 4."""
    from bsattack import data
    from bsattack.experiment import run_table
    from bsattack.report.figure4 import figure4
    from bsattack.report.tables import paper_table, write_table

    name = spec.name
    split = data.load(spec, data_dir, validation_size, echo=click.echo)
    stem = os.path.join(out, f"table{paper_table(name)['table']}_{name}_{settings.name}")
    header = header_lines(path, n, settings, precision)
    grid = len(paper_table(name)["rows"])

    def rewrite(results):
        s = results[-1].summary()
        click.echo(f"{name} α={s['alpha']:g} β={s['beta']:g}: accuracy "
                   f"{100 * s['accuracy']:.2f}%, success @ε {100 * s['success_eps']:.2f}%, "
                   f"@α·ε {100 * s['success_alpha_eps']:.2f}% ({s['attacked']} attacked, "
                   f"{s['grad_evals_per_attacked']:.0f} evaluations per image)")
        status = ([] if len(results) == grid
                  else [f"INCOMPLETE: {len(results)} of {grid} settings"])
        write_table(results, name, stem, header + status)

    results = run_table(spec, path, settings, n, split, on_setting=rewrite, cache_dir=cache_dir,
                        echo=click.echo, progress_for=progressbar, executor=executor,
                        precision=precision)
    alpha, beta = spec.paper.shown
    shown = next(r for r in results if (r.alpha, r.beta) == (alpha, beta))
    figure = figure4(shown, os.path.join(out, f"figure4_{name}_{settings.name}.png"),
                     header=header)
    click.echo(f"wrote {stem}.md, {stem}.csv, {figure} (ε={spec.eps:g})")
    click.echo(_evaluations_line(results))
