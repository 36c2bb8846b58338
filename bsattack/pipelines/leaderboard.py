"""`leaderboard`: the project's attacks on one checkpoint, next to the published MNIST /
CIFAR10 challenge leaderboards (rendered by :mod:`bsattack.report.leaderboard`).

The project's rows are accuracies of one checkpoint under
:mod:`bsattack.challenge_attack`'s attacks on the first ``n`` test images, each adversarial
set first passing the challenge's own validity checks (:func:`challenge.check_attack`).
"""
import os
from dataclasses import dataclass

import numpy as np

from bsattack import atomic
from bsattack.display import display_path
from bsattack.outputs import check_writable_file, save_json, save_text
from bsattack.report.leaderboard import evals_text, forward_text, render

# the networks and the challenge code (TensorFlow) are imported where used, so that the row
# names load without them (every --help lists them)
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
                   else f", {forward_text(rows[-1])} forward evaluations")
        echo(f"{name}: {100 * rows[-1].accuracy:.2f}% ({evals_text(rows[-1])} gradient evaluations"
             f"{forward} per image)")
    return rows


def save_summary(path, spec, checkpoint, n, rows, command, precision="fp32"):
    """The rows as JSON (accuracy as correct images of ``n``), for the report."""
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




def leaderboard(spec, checkpoint, attacks, n, data_dir, validation_size, out, command,
                echo, progress_for, cache_dir=None, executor=None, precision="fp32"):
    """The leaderboard page of ``attacks`` ([(row name, settings)]) on the first ``n`` (None:
    all) test images, returned as Markdown; with ``out``, also written there with its JSON
    summary beside it (``out`` checked before any work, the two files replacing the previous
    ones together)."""
    from bsattack import data
    if out:
        check_writable_file(out, "--out")
    split = data.load(spec, data_dir, validation_size, echo=echo)
    n = n or len(split.test_x)
    found = project_rows(spec, checkpoint, split, n, attacks, echo=echo,
                         progress_for=progress_for, cache_dir=cache_dir, executor=executor,
                         precision=precision)
    text = render(spec, checkpoint, n, found, command=command, precision=precision)
    if out:
        with atomic.staged():
            save_text(out, text)
            save_summary(os.path.splitext(out)[0] + ".json", spec, checkpoint, n, found,
                         command, precision)
    return text
