"""The project's attacks next to the published MNIST / CIFAR10 challenge leaderboards.

The published entries live in ``leaderboards.json`` (transcribed from the challenge READMEs,
with their source); the project's rows are accuracies of one checkpoint under
:mod:`bsattack.challenge_attack`'s attacks on the first ``n`` test images, each adversarial
set first passing the challenge's own validity checks (:func:`challenge.check_attack`).
"""
import json
import os
from dataclasses import dataclass

import numpy as np

from bsattack.display import checkpoint_label, display_path

# the networks and the challenge code (TensorFlow) are imported where used, so that the row
# names load without them (every --help lists them)
LEADERBOARDS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "leaderboards.json")
ROWS = {          # row name -> the attack options that make it
    "pgd": {"attack": "pgd", "pgd_loss": "xent"},
    "pgd-cw": {"attack": "pgd", "pgd_loss": "cw"},
    "cw": {"attack": "cw"},
    "apgd": {"attack": "apgd", "apgd_loss": "ce"},
    "apgd-dlr": {"attack": "apgd", "apgd_loss": "dlr"},
    "apgd-t": {"attack": "apgd-t"},
    "square": {"attack": "square"},
    "autoattack": {"attack": "autoattack"},
    "worst": {"attack": "worst"},
    "worst-square": {"attack": "worst", "worst_square_queries": 5000},
}


def published(spec, path=LEADERBOARDS_PATH):
    """The published boards of the data set ``spec`` (source, threat model, white_box,
    black_box; ``leaderboards.json`` holds them under its name), or None when its challenge
    has none (Fashion-MNIST)."""
    with open(path) as handle:
        boards = json.load(handle)
    return boards.get(spec.name)


@dataclass(frozen=True)
class Row:
    attack: str
    accuracy: float      # in [0, 1]
    largest_linf: float  # in file units
    evals_per_image: float = 0.0   # gradient evaluations per image (NaN: not recorded)
    forward_per_image: float = None   # forward-only evaluations per image (None: the attack
                                      # makes no forward queries)


def project_rows(spec, checkpoint, split, n, attacks, echo, progress_for, cache_dir=None,
                 executor=None, precision="fp32"):
    """Natural accuracy, then the accuracy under each of ``attacks`` ([(row name, settings)])
    on the first ``n`` test images; the attacks' chunks run on ``executor`` (default: this
    process), their gradient oracle in ``precision``, every accuracy by the float32 network.
    ``progress_for(length, label)`` returns a progress bar (a context manager with
    ``update(k)``)."""
    from bsattack import challenge, challenge_attack, models
    rules = spec.challenge
    clean_file, labels = challenge.clean_test_images(split, spec, n)
    natural = models.predict(spec, checkpoint, split.test_x[:n], rules.batch_size)
    rows = [Row("no attack (natural accuracy)", float(np.mean(natural == labels)), 0.0)]
    for name, settings in attacks:
        with progress_for(n, name) as bar:
            examples = challenge_attack.adversarial_examples(
                settings, spec, checkpoint, split, n, cache_dir=cache_dir, echo=echo,
                progress=bar.update, executor=executor, precision=precision)
        adv = examples.adversarial
        largest = challenge.check_attack(challenge_attack.to_file_units(spec, adv),
                                         clean_file, spec)
        predictions = models.predict(spec, checkpoint, adv, rules.batch_size)
        rows.append(Row(f"{name}: {settings.describe()}",
                        float(np.mean(predictions == labels)), largest,
                        examples.evals_per_image,
                        examples.forward_per_image if settings.uses_forward_queries else None))
        forward = ("" if rows[-1].forward_per_image is None
                   else f", {_forward(rows[-1])} forward evaluations")
        echo(f"{name}: {100 * rows[-1].accuracy:.2f}% ({_evals(rows[-1])} gradient evaluations"
             f"{forward} per image)")
    return rows


def save_summary(path, spec, checkpoint, n, rows, command, precision="fp32"):
    """The rows as JSON (accuracy as correct images of ``n``), for the report."""
    from bsattack.outputs import save_json
    from bsattack.precision import header
    save_json(path, {"kind": "leaderboard", "dataset": spec.name,
                     "header": [f"command: {command}"] + header(precision),
                     "checkpoint": display_path(checkpoint), "n": n,
                     "rows": [_summary_row(r, n) for r in rows]})


def _summary_row(row, n):
    summary = {"attack": row.attack, "correct": int(round(row.accuracy * n)),
               "accuracy": row.accuracy, "largest_linf": row.largest_linf,
               "evals_per_image": row.evals_per_image}
    if row.forward_per_image is not None:
        summary["forward_evals_per_image"] = row.forward_per_image
    return summary


def _evals(row):
    return "not recorded" if np.isnan(row.evals_per_image) else f"{row.evals_per_image:,.1f}"


def _accuracy(accuracy, n):
    """The accuracy in % with its Wilson 95% interval over the ``n`` images."""
    from bsattack.stats import wilson
    share = wilson(int(round(accuracy * n)), n)
    return f"{100 * share.value:.2f}% [{100 * share.low:.1f}, {100 * share.high:.1f}]"


def _forward(row):
    return "—" if row.forward_per_image is None else f"{row.forward_per_image:,.1f}"


def render(spec, checkpoint, n, rows, command=None, precision="fp32"):
    """Markdown: the project's rows (a column of forward evaluations when an attack makes
    forward queries; their precision when not fp32), then the published white-box and
    black-box boards as published, with sources (kept apart: the project's rows may measure
    another network)."""
    from bsattack.precision import header
    boards = published(spec)
    forward = any(r.forward_per_image is not None for r in rows)
    eps = spec.challenge.eps
    lines = [f"# {spec.name} challenge leaderboard and this project's attacks", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    for line in header(precision):
        lines += [f"{line.capitalize()}.", ""]
    lines += [f"**This project's rows come from checkpoint {checkpoint_label(checkpoint)}**, "
              f"evaluated on the first {n} {spec.name} test images at L∞ ε = {eps:g} (file "
              f"units), with the challenge's validity checks. The published rows are accuracies "
              f"of the challenge's secret model on all 10,000 test images: unless that "
              f"checkpoint is the official secret model, the two sets of rows measure different "
              f"networks.", "",
              "| attack (this project) | accuracy [Wilson 95%] | largest L∞ "
              "| gradient evaluations per image |"
              + (" forward evaluations per image |" if forward else ""),
              "| --- | --- | --- | --- |" + (" --- |" if forward else "")]
    lines += [f"| {r.attack} | {_accuracy(r.accuracy, n)} | {r.largest_linf:.4f} | {_evals(r)} |"
              + (f" {_forward(r)} |" if forward else "") for r in rows]
    if boards is None:
        lines += ["", f"No published leaderboard exists for {spec.name}."]
        return "\n".join(lines) + "\n"
    for kind in ("white_box", "black_box"):
        board = boards[kind]
        entries = sorted(board["entries"], key=lambda e: e["accuracy"])
        lines += ["", f"## Published {kind.replace('_', '-')} leaderboard: {board['model']}", "",
                  f"Threat model: {boards['threat_model']}. Source: {boards['source']}.", "",
                  "| # | attack | submitter | accuracy | date |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {e['rank']} | {e['attack']} | {e['submitter']} | {e['accuracy']:.2f}% | "
                  f"{e['date']} |" for e in entries]
    return "\n".join(lines) + "\n"

