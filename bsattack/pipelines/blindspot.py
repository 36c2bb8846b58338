"""`blindspot`: one (α, β) setting of the blind-spot attack; `tables`: the paper's Tables 2–3
(every setting of a data set's grid) and Figure 4.  Each takes the data set's spec and the
resolved checkpoint, checks its output folders before any work, and writes a setting's files
(JSON, CSV and figure; a table's Markdown, JSON and CSV) as one set: they replace the
previous set together or not at all (:func:`bsattack.atomic.staged`)."""
import os

from bsattack import atomic, data
from bsattack.experiment import run_blindspot, run_table
from bsattack.outputs import check_writable_dir, save_json
from bsattack.report.csvfile import write_csv
from bsattack.report.figure4 import figure4
from bsattack.report.tables import paper_table, write_table
from bsattack.shifts import BlindSpot


def check_output_folders(out, cache_dir):
    """``--out`` and ``--cache-dir`` (when given) can take new files."""
    check_writable_dir(out, "--out")
    if cache_dir:
        check_writable_dir(cache_dir, "--cache-dir")


def blindspot_setting(spec, checkpoint, alpha, beta, settings, n, header, out, data_dir=None,
                      validation_size=data.MADRY_VALIDATION_SIZE, cache_dir=None,
                      executor=None, echo=print, progress_for=None, precision="fp32"):
    """The attack ``settings`` on x' = αx + β of the first ``n`` test images; writes
    ``<out>/<data set>_<attack>_a<α>_b<β>.{json,csv,png}`` under ``header``.  Returns the
    :class:`bsattack.experiment.BlindSpotResult` and the files' stem."""
    check_output_folders(out, cache_dir)
    split = data.load(spec, data_dir, validation_size, echo=echo)
    result = run_blindspot(spec, checkpoint, BlindSpot(alpha, beta), settings, n, split=split,
                           cache_dir=cache_dir, echo=echo, progress_for=progress_for,
                           executor=executor, precision=precision)
    stem = os.path.join(out, f"{spec.name}_{settings.name}_a{alpha:g}_b{beta:g}")
    records = result.records()
    with atomic.staged():
        save_json(stem + ".json", {"header": header, "summary": result.summary(),
                                   "images": records})
        write_csv(stem + ".csv", records, list(records[0]), header)
        figure4(result, stem + ".png", header=header)
    return result, stem


def paper_tables(checkpoints, settings, n, header_for, out, data_dir=None,
                 validation_size=data.MADRY_VALIDATION_SIZE, cache_dir=None, executor=None,
                 echo=print, progress_for=None, precision="fp32", on_table=None):
    """Each data set's table of the paper: ``checkpoints`` [(spec, resolved checkpoint)];
    ``header_for(checkpoint)`` the header lines of its files.  The table files
    ``<out>/tableN_<data set>_<attack>.{md,json,csv}`` are rewritten as each setting
    completes (marked INCOMPLETE until the last), then Figure 4 of the paper's shown setting
    is drawn.  ``on_table(spec, stem, figure, results)`` after each data set; returns
    {data set name: its results}."""
    check_output_folders(out, cache_dir)
    found = {}
    for spec, checkpoint in checkpoints:
        name = spec.name
        split = data.load(spec, data_dir, validation_size, echo=echo)
        paper = paper_table(name)
        stem = os.path.join(out, f"table{paper['table']}_{name}_{settings.name}")
        header = header_for(checkpoint)
        grid = len(paper["rows"])

        def rewrite(results, name=name, stem=stem, header=header, grid=grid):
            s = results[-1].summary()
            echo(f"{name} α={s['alpha']:g} β={s['beta']:g}: accuracy "
                 f"{100 * s['accuracy']:.2f}%, success @ε {100 * s['success_eps']:.2f}%, "
                 f"@α·ε {100 * s['success_alpha_eps']:.2f}% ({s['attacked']} attacked, "
                 f"{s['grad_evals_per_attacked']:.0f} evaluations per image)")
            status = ([] if len(results) == grid
                      else [f"INCOMPLETE: {len(results)} of {grid} settings"])
            with atomic.staged():
                write_table(results, name, stem, header + status)

        results = run_table(spec, checkpoint, settings, n, split, on_setting=rewrite,
                            cache_dir=cache_dir, echo=echo, progress_for=progress_for,
                            executor=executor, precision=precision)
        shown = next(r for r in results if (r.alpha, r.beta) == spec.paper.shown)
        figure = figure4(shown, os.path.join(out, f"figure4_{name}_{settings.name}.png"),
                         header=header)
        found[name] = results
        if on_table:
            on_table(spec, stem, figure, results)
    return found
