"""--precision on every command that attacks, embeds or trains: the option and its refusals,
auto's one line, precision through the challenge attacks, the figures, the beyond-the-paper
commands and reproduce, bf16 and fp32 caches apart (float32 keys as before), and a bf16 oracle's
"fooled" counted only where the float32 network agrees."""
import json
import os

import click
import numpy as np
import pytest
from click.testing import CliRunner

from bsattack import challenge_attack, models, precision
from bsattack.pipelines import leaderboard
from bsattack.report.leaderboard import render
from bsattack.attacks.fgsm import FGSMSettings
from bsattack.attacks.model import Model
from bsattack.attacks.pgd import PGDSettings
from bsattack.cli import main
from bsattack.datasets import DATASETS, get_spec
from bsattack.commands.options import chosen_precision
from bsattack.parallel import LocalExecutor
from bsattack.pipelines import beyond, figures
from bsattack.progress import silent
from bsattack.report import readme
from support import FIXTURE_VALIDATION_SIZE

QUIET = dict(echo=lambda *_: None)
COMMANDS = ["attack", "leaderboard", "reproduce", "figures", "distance", "kl",
            "blindspot-histogram", "embed", "blindspot-map", "shifts", "detectability",
            "countermeasure", "train", "blindspot", "tables"]


def error_lines(output):
    return [line for line in output.splitlines() if line.startswith("Error:")]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_precision_and_refuses_a_bad_one(command):
    runner = CliRunner()
    shown = runner.invoke(main, [command, "--help"])
    assert shown.exit_code == 0 and "--precision [fp32|bf16|auto]" in shown.output
    refused = runner.invoke(main, [command, "--precision", "fp16"])
    assert refused.exit_code != 0
    assert len(error_lines(refused.output)) == 1 and "--precision" in refused.output


def test_bf16_without_native_bfloat16_runs_and_is_recorded_as_fp32(monkeypatch):
    """Where TensorFlow would not rewrite the graph, a bf16 run's arithmetic is float32's:
    it runs, caches and is labelled as fp32, and says so in one line."""
    monkeypatch.setattr(precision, "_gpu_capability", lambda: None)
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2", "fma"})
    said = []
    assert chosen_precision("bf16", said.append) == "fp32"
    [line] = said
    assert line.startswith("--precision bf16: fp32 (this CPU has no native bfloat16")
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx512_bf16"})
    assert chosen_precision("bf16", said.append) == "bf16" and len(said) == 1


def test_float32_only_commands_refuse_bf16_and_take_auto_as_fp32(tmp_path):
    said = []
    assert chosen_precision("auto", said.append, "why") == "fp32"
    assert said == ["--precision auto: fp32 (why)"]
    assert chosen_precision("fp32", said.append, "why") == "fp32" and len(said) == 1
    runner = CliRunner()
    for args in (["train", "--eps", "0.1", "--out", str(tmp_path / "run")], ["embed"],
                 ["blindspot-histogram"]):
        refused = runner.invoke(main, [*args, "--precision", "bf16"])
        assert refused.exit_code == 1, refused.output
        [line] = error_lines(refused.output)
        assert line.startswith("Error: --precision bf16: ") and "float32" in line
    assert not (tmp_path / "run").exists()


def test_auto_says_what_it_chose(monkeypatch, tmp_path, fixture_data_dir, small_checkpoint):
    monkeypatch.setattr(precision, "_gpu_capability", lambda: None)
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2"})
    out = tmp_path / "a.npy"
    done = CliRunner().invoke(main, [
        "attack", "--dataset", "mnist", "--checkpoint", small_checkpoint("mnist"),
        "--data-dir", fixture_data_dir, "--validation-size", FIXTURE_VALIDATION_SIZE,
        "--n", "20", "--attack", "fgsm", "--cache-dir", str(tmp_path / "c"), "--out", str(out),
        "--precision", "auto"])
    assert done.exit_code == 0, done.output
    assert "--precision auto: fp32 (no native bfloat16 on this CPU)" in done.output.splitlines()
    assert np.load(out).shape == (20, 784)


class Counting(LocalExecutor):
    """This process's executor, counting the chunks it computes."""

    def __init__(self):
        super().__init__()
        self.jobs = []

    def run(self, jobs, on_done):
        jobs = list(jobs)
        self.jobs += jobs
        super().run(jobs, on_done)


def test_challenge_caches_of_bf16_and_fp32_are_apart(tmp_path, small_checkpoint, small_split):
    settings = PGDSettings(steps=3, step_size=0.01)
    # float32 keys are those before precisions (test_cache_keys's literal)
    assert challenge_attack.label(settings, "fp32") == "pgd-15d20afc5183"
    assert challenge_attack.group_key(settings, "fp32") == settings.key()
    assert challenge_attack.group_key(settings, "bf16") == {**settings.key(),
                                                            "precision": "bf16"}
    checkpoint, split = small_checkpoint("mnist"), small_split("mnist")
    fgsm = FGSMSettings()
    executor = Counting()
    try:
        def run(p):
            before = len(executor.jobs)
            challenge_attack.adversarial_examples(fgsm, get_spec("mnist"), checkpoint, split, 20,
                                                  cache_dir=str(tmp_path), executor=executor,
                                                  precision=p, **QUIET)
            return [j.precision for j in executor.jobs[before:]]
        assert run("fp32") == ["fp32"]
        assert run("bf16") == ["bf16"]          # not read from the float32 chunk
        assert run("bf16") == [] and run("fp32") == []
    finally:
        executor.close()


class _OracleSaysFooled:
    """A bf16 model whose gradient oracle claims every image misclassified (logits of the next
    class); its forward passes are the real model's (float32)."""

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name):
        return getattr(self.model, name)

    def value_and_grad(self, x, labels, loss="xent", targets=None):
        value, grad, logits = self.model.value_and_grad(x, labels, loss, targets)
        claimed = np.zeros_like(logits)
        claimed[np.arange(len(x)), (np.asarray(labels) + 1) % logits.shape[1]] = 1
        return value, grad, claimed


def test_a_bf16_leaderboard_row_counts_only_what_float32_confirms(small_checkpoint, small_split,
                                                                  tmp_path):
    checkpoint, split = small_checkpoint("mnist"), small_split("mnist")
    n = 50
    real = Model(get_spec("mnist"), checkpoint, "bf16")
    executor = LocalExecutor()
    asked = []

    def get(dataset, path, p):
        asked.append(p)
        return _OracleSaysFooled(real)
    executor.models.get = get
    try:
        rows = leaderboard.project_rows(
            get_spec("mnist"), checkpoint, split, n,
            [("pgd", PGDSettings(steps=5, step_size=0.01))], progress_for=silent,
            cache_dir=str(tmp_path), executor=executor, precision="bf16", **QUIET)
        examples = challenge_attack.adversarial_examples(
            PGDSettings(steps=5, step_size=0.01), get_spec("mnist"), checkpoint, split, n,
            cache_dir=str(tmp_path), precision="bf16", **QUIET)   # the cached chunk
    finally:
        executor.close()
        real.close()
    assert set(asked) == {"bf16"}
    # the oracle stopped every image at its random start as "fooled"; the row is float32's
    confirmed = models.predict(get_spec("mnist"), checkpoint, examples.adversarial)
    accuracy = float(np.mean(confirmed == split.test_y[:n]))
    assert rows[1].evals_per_image == 1          # "fooled" at the first evaluation
    assert rows[1].accuracy == accuracy and accuracy > 0.5


def test_leaderboard_files_state_a_precision_other_than_fp32():
    rows = [leaderboard.Row("no attack (natural accuracy)", 0.9, 0.0)]
    fashion, checkpoint = get_spec("fashion"), "tests/fixtures/checkpoints/fashion_small"
    plain = render(fashion, checkpoint, 10, rows)
    assert render(fashion, checkpoint, 10, rows, precision="fp32") == plain
    mixed = render(fashion, checkpoint, 10, rows, precision="bf16")
    assert "Precision: gradients in bf16, predictions in fp32." in mixed
    assert precision.header("fp32") == []


def test_the_attack_of_figures_and_beyond_takes_the_precision(monkeypatch, fixture_data_dir,
                                                              small_checkpoint):
    seen = []
    monkeypatch.setattr(figures, "run_blindspot", lambda *a, **k: seen.append(k["precision"]))
    monkeypatch.setattr(beyond, "run_many", lambda *a, **k: seen.append(k["precision"]))
    spec, ckpt = get_spec("mnist"), small_checkpoint("mnist")
    figures.Context(spec, {"adv": ckpt, "nat": ckpt}, fixture_data_dir, FIXTURE_VALIDATION_SIZE,
                    cache_dir=None, precision="bf16", **QUIET).attack()
    beyond.run_map(spec, ckpt, [(0.9, 0.0, 0.0)], 1, None, None, None, print, precision="bf16")
    beyond.run_settings(spec, ckpt, [], 1, None, None, None, print, precision="bf16")
    assert seen == ["bf16"] * 3


def test_reproduce_passes_precision_to_its_steps_and_records_it(tmp_path, fixture_data_dir,
                                                                small_checkpoint, monkeypatch):
    from bsattack.commands.reproduce import reproduce
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx512_bf16"})   # bf16 is kept
    seen = {}

    def step(name):
        def record(**kw):
            seen[name] = kw["precision"]
            if name == "tables":
                with open(os.path.join(kw["out"], "table3_fashion_worst.json"), "w") as f:
                    json.dump({"cells": []}, f)
        return click.Command(name, callback=record)

    group = click.Group(commands={"reproduce": reproduce, "tables": step("tables"),
                                  "figures": step("figures"),
                                  "leaderboard": step("leaderboard")})
    ckpt = small_checkpoint("fashion")
    done = CliRunner().invoke(group, [
        "reproduce", "--datasets", "fashion", "--data-dir", fixture_data_dir,
        "--validation-size", FIXTURE_VALIDATION_SIZE, "--fashion-checkpoint", ckpt,
        "--fashion-natural-checkpoint", ckpt, "--out", str(tmp_path), "--precision", "bf16"])
    assert done.exit_code == 0, done.output
    assert seen == {"tables": "bf16", "figures": "bf16"}
    record = json.load(open(tmp_path / readme.RECORD))
    assert record["environment"]["precision"] == "bf16"
    page = open(tmp_path / "README.md").read()
    assert "- precision of the attacks: gradients in bf16, predictions in fp32" in page
    # a float32 run's page is the page of a record from before precisions
    record["environment"]["precision"] = "fp32"
    as_fp32 = readme.render(str(tmp_path), {"run": [record]}, DATASETS.values())
    del record["environment"]["precision"]
    assert readme.render(str(tmp_path), {"run": [record]}, DATASETS.values()) == as_fp32
    assert "precision of the attacks" not in as_fp32
