"""The leaderboard page: the project's rows (:mod:`bsattack.pipelines.leaderboard`) and the
published MNIST / CIFAR10 challenge boards, which live in ``bsattack/leaderboards.json``
(transcribed from the challenge READMEs, with their source)."""
import json
import os

import numpy as np

from bsattack.display import checkpoint_label
from bsattack.report.tables import rate_with_interval

LEADERBOARDS_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                 "leaderboards.json")


def published(spec, path=LEADERBOARDS_PATH):
    """The published boards of the data set ``spec`` (source, threat model, white_box,
    black_box; ``leaderboards.json`` holds them under its name), or None when its challenge
    has none (Fashion-MNIST)."""
    with open(path) as handle:
        boards = json.load(handle)
    return boards.get(spec.name)


def evals_text(row):
    return "not recorded" if np.isnan(row.evals_per_image) else f"{row.evals_per_image:,.1f}"


def _accuracy(row, n):
    """The row's accuracy over the ``n`` images, in % with its Wilson 95% interval."""
    return rate_with_interval(int(round(row.accuracy * n)), n, unit="%")


def forward_text(row):
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
    lines += [f"| {r.attack} | {_accuracy(r, n)} | {r.largest_linf:.4f} | {evals_text(r)} |"
              + (f" {forward_text(r)} |" if forward else "") for r in rows]
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

