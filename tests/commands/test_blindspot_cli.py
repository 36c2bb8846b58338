"""Success accounting of the blind-spot experiment vs a brute-force loop, its cache, and the
`blindspot` / `tables` commands (errors and an end-to-end run on the fixtures)."""
import csv
import json
import os

import click
import numpy as np
import pytest
from click.testing import CliRunner

from bsattack import experiment
from bsattack.attacks.cw import CWSettings
from bsattack.attacks.pgd import PGDSettings
from bsattack.attacks.worst import WorstSettings
from bsattack.commands.blindspot import tables
from bsattack.datasets import get_spec
from bsattack.shifts import BlindSpot
from cli import main
from support.plain_model import PlainModel

PGD = PGDSettings(steps=3, step_size=0.01, batch_size=64)
QUIET = dict(echo=lambda *_: None)


@pytest.fixture(scope="module")
def fashion(small_checkpoint, small_split):
    return small_checkpoint("fashion"), small_split("fashion")


def brute_force(plain, split, result, alpha, beta, eps):
    """The paper's accounting, image by image, from the stored adversarial examples."""
    attacked = hits_eps = hits_alpha = 0
    correct = 0
    for i in range(len(result.label)):
        x = (split.test_x[i].astype(np.float64) - 0.5) * alpha + beta
        label = split.test_y[i]
        if plain.predict(x.astype(np.float32))[0] != label:
            continue
        correct += 1
        attacked += 1
        adv = result.adversarial[i]
        fooled = plain.predict(adv)[0] != label
        dist = np.max(np.abs(adv.astype(np.float64) - x))
        hits_eps += fooled and dist <= eps + 1e-6
        hits_alpha += fooled and dist <= alpha * eps + 1e-6
    n = len(result.label)
    return correct / n, hits_eps / attacked, hits_alpha / attacked


@pytest.mark.parametrize("settings", [PGD, CWSettings(max_iterations=3, batch_size=20),
                                      WorstSettings(full=(PGD, CWSettings(max_iterations=2)),
                                                    cascade=())])
def test_accounting_matches_brute_force(fashion, tmp_path, settings):
    checkpoint, split = fashion
    n = 40 if settings.name == "pgd" else 20
    result = experiment.run_blindspot(get_spec("fashion"), checkpoint, BlindSpot(0.9, 0.05),
                                      settings, n, split=split, cache_dir=None, **QUIET)
    plain = PlainModel(get_spec("fashion"), checkpoint)
    assert result.transformed.shape == (n, 784)
    accuracy, success_eps, success_alpha = brute_force(plain, split, result, 0.9, 0.05, 0.1)
    s = result.summary()
    assert s["accuracy"] == pytest.approx(accuracy)
    assert s["success_eps"] == pytest.approx(success_eps)
    assert s["success_alpha_eps"] == pytest.approx(success_alpha)
    assert s["attacked"] == round(accuracy * n)
    assert s["success_eps"] >= s["success_alpha_eps"]
    assert (result.linf[~result.correct] == np.inf).all()


def test_cache_is_reused_and_invalidated(fashion, tmp_path, monkeypatch):
    checkpoint, split = fashion
    calls = []
    real = experiment._run_chunk

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)
    monkeypatch.setattr(experiment, "_run_chunk", counting)

    def run(alpha=0.9, beta=0.0, settings=PGD, n=30, chunk_size=20):
        return experiment.run_blindspot(get_spec("fashion"), checkpoint, BlindSpot(alpha, beta),
                                        settings, n, split=split, cache_dir=str(tmp_path),
                                        chunk_size=chunk_size, **QUIET)
    first = run()
    assert len(calls) == 2                                   # two chunks
    again = run()
    assert len(calls) == 2                                   # everything from the cache
    assert again.new_grad_evals == 0 and first.new_grad_evals == first.grad_evals.sum() > 0
    # what the result cost is read back with it: the chunks' compute time, not 0
    assert again.seconds == 0 and 0 < again.compute_seconds == first.compute_seconds
    assert first.compute_seconds == pytest.approx(first.seconds)
    np.testing.assert_array_equal(first.adversarial, again.adversarial)
    np.testing.assert_array_equal(first.success_eps, again.success_eps)
    run(n=40)                                                # resumes: only the new chunk
    assert len(calls) == 3
    run(beta=0.05)                                           # other (α, β)
    assert len(calls) == 5
    run(settings=PGDSettings(steps=4, step_size=0.01, batch_size=64))   # other budget
    assert len(calls) == 7
    run(settings=PGDSettings(steps=3, step_size=0.01, batch_size=32))   # other batch size
    assert len(calls) == 9
    run(settings=PGDSettings(steps=3, step_size=0.01, seed=1, batch_size=64))   # other seed
    assert len(calls) == 11


def fields_equal(a, b):
    """Record for record and byte for byte."""
    assert a.records() == b.records()
    for name in ("prediction", "adv_prediction", "linf", "adversarial", "transformed",
                 "grad_evals", "found_by"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
        if x.dtype != object:
            assert x.tobytes() == y.tobytes(), name


@pytest.mark.parametrize("settings", [PGDSettings(steps=4, step_size=0.01, batch_size=7),
                                      CWSettings(max_iterations=2, batch_size=7)])
def test_a_longer_run_extends_a_shorter_one_exactly(fashion, tmp_path, settings):
    """n = 20 then n = 40 on one cache gives, byte for byte, what a fresh n = 40 gives
    (per-image randomness is keyed by the test index)."""
    checkpoint, split = fashion

    def run(n, cache, s=settings):
        return experiment.run_blindspot(get_spec("fashion"), checkpoint, BlindSpot(0.9, 0.05), s, n,
                                        split=split, cache_dir=str(tmp_path / cache),
                                        chunk_size=8, **QUIET)
    run(20, "grown")
    grown, fresh = run(40, "grown"), run(40, "fresh")
    fields_equal(grown, fresh)
    assert grown.new_grad_evals < fresh.new_grad_evals == fresh.grad_evals.sum()
    # another batch size (its own cache key) gives the same records here (success, L∞,
    # evaluations); C&W's Adam may move pixels of float-rounding-sized gradient differently,
    # so not the bytes
    other_batch = type(settings)(**{**settings.__dict__, "batch_size": 3})
    assert run(40, "batch3", other_batch).records() == fresh.records()
    assert fresh.success_eps[fresh.correct].any()


def test_an_interrupted_run_resumes_to_the_same_records(fashion, tmp_path, monkeypatch):
    checkpoint, split = fashion
    settings = PGDSettings(steps=4, step_size=0.01, batch_size=7)

    def run(cache):
        return experiment.run_blindspot(get_spec("fashion"), checkpoint, BlindSpot(0.9, 0.0),
                                        settings, 30, split=split, cache_dir=str(tmp_path / cache),
                                        chunk_size=10, **QUIET)
    fresh = run("fresh")
    real, calls = experiment._run_chunk, []

    def killed(model, payload):
        calls.append(int(payload["ids"][0]))                 # the chunk's first test index
        if len(calls) == 2:
            raise KeyboardInterrupt                          # killed in the second chunk
        return real(model, payload)
    monkeypatch.setattr(experiment, "_run_chunk", killed)
    with pytest.raises(KeyboardInterrupt):
        run("resumed")
    resumed = run("resumed")
    assert calls == [0, 10, 10, 20]                          # chunk 0 came from the cache
    fields_equal(resumed, fresh)


@pytest.mark.parametrize("args,fragment", [
    (["--alpha", "1.2"], "alpha must be in (0, 1]"),
    (["--alpha", "0.9", "--beta", "0.2"], "|beta| must be <= (1 - alpha)/2 = 0.05"),
    (["--n", "0"], "'--n': 0 is not in the range x>=1"),
    (["--n", "-5"], "'--n': -5 is not in the range x>=1"),
    (["--cw-inits", "gray,foo"], "C&W starts gray,foo: give distinct ones from gray,noise"),
    (["--cw-inits", "gray,gray"], "C&W starts gray,gray: give distinct ones from gray,noise"),
    (["--cw-inits", ","], "C&W starts (none): give distinct ones from gray,noise"),
    (["--attack", "pgd", "--max-iterations", "5"], "--max-iterations applies to the cw attack"),
    (["--alpha", "nan"], "--alpha"),
])
def test_bad_input_is_one_clear_line(args, fragment):
    result = CliRunner().invoke(main, ["blindspot", *args])
    assert result.exit_code != 0
    lines = [line for line in result.output.strip().splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and fragment in lines[0], result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_more_images_than_the_test_set(fashion, fixture_data_dir):
    checkpoint, _ = fashion
    result = CliRunner().invoke(main, ["blindspot", "--dataset", "fashion", "--n", "501",
                                       "--checkpoint", checkpoint, "--data-dir", fixture_data_dir,
                                       "--validation-size", "100"])
    assert result.exit_code == 1
    assert "Error: --n 501 is more than the 500 test images" in result.output


def test_blindspot_and_tables_commands_end_to_end(fashion, fixture_data_dir, tmp_path):
    checkpoint, split = fashion
    common = ["--dataset", "fashion", "--attack", "pgd", "--pgd-steps", "3", "--n", "30",
              "--checkpoint", checkpoint, "--data-dir", fixture_data_dir,
              "--validation-size", "100", "--cache-dir", str(tmp_path / "cache")]
    out = tmp_path / "one"
    result = CliRunner().invoke(main, ["blindspot", "--alpha", "0.9", "--beta", "0.05",
                                       "--out", str(out), *common])
    assert result.exit_code == 0, result.output
    stem = str(out / "fashion_pgd_a0.9_b0.05")
    with open(stem + ".json") as handle:
        record = json.load(handle)
    images = record["images"]
    assert len(images) == 30
    attacked = [r for r in images if r["correct"]]
    rate = np.mean([r["success_eps"] for r in attacked])
    assert record["summary"]["success_eps"] == pytest.approx(rate)
    assert f"{100 * rate:.2f}% at ε=0.1" in result.output
    assert all(r["prediction"] == r["label"] for r in attacked)
    with open(stem + ".csv") as handle:
        rows = [line for line in handle.read().splitlines() if not line.startswith("#")]
    assert len(list(csv.DictReader(rows))) == 30
    assert os.path.getsize(stem + ".png") > 0

    result = CliRunner().invoke(main, ["tables", "--out", str(tmp_path / "tables"), *common])
    assert result.exit_code == 0, result.output
    table = (tmp_path / "tables" / "table3_fashion_pgd.csv").read_text().splitlines()
    data_rows = list(csv.DictReader([line for line in table if not line.startswith("#")]))
    assert [(float(r["alpha"]), float(r["beta"])) for r in data_rows] == [
        (1.0, 0.0), (0.95, 0.0), (0.95, 0.025), (0.9, 0.0), (0.9, 0.05)]
    shown = next(r for r in data_rows if r["beta"] == "0.05")
    assert float(shown["pgd_success_eps"]) == pytest.approx(100 * rate, abs=0.006)  # same cache
    assert "evaluations" in result.output or "from the cache" in result.output
    assert shown["paper_success_eps"] == "62.60"
    assert any(line.startswith("# command: ") for line in table)
    assert os.path.exists(tmp_path / "tables" / "figure4_fashion_pgd.png")
    page = (tmp_path / "tables" / "table3_fashion_pgd.md").read_text()
    assert "INCOMPLETE" not in page
    # the page's accuracy and success cells: the CSV's rates with closed-form Wilson intervals
    cells = [line.split(" | ") for line in page.splitlines() if line.startswith("| 0.9 | 0.05")]
    n, correct = len(images), len(attacked)
    fooled = int(round(rate * correct))
    z = 1.959963984540054

    def wilson(k, m):
        centre, half = (k + z * z / 2) / (m + z * z), z / (m + z * z) * np.sqrt(
            k * (m - k) / m + z * z / 4)
        return f"[{100 * (centre - half):.1f}, {100 * (centre + half):.1f}]"
    assert cells and cells[0][2] == f"{float(shown['accuracy']):.2f} {wilson(correct, n)}"
    assert f"{float(shown['pgd_success_eps']):.2f} {wilson(fooled, correct)}" in cells[0]


def test_cw_inits_option_reaches_the_attack(fashion, fixture_data_dir, tmp_path):
    """--cw-inits picks the C&W starts and their order, and they key the cache."""
    checkpoint, _ = fashion
    records = {}
    for inits in ("noise,gray", "gray"):
        out = tmp_path / inits.replace(",", "_")
        result = CliRunner().invoke(main, [
            "blindspot", "--dataset", "fashion", "--attack", "cw", "--max-iterations", "2",
            "--n", "12", "--cw-inits", inits, "--checkpoint", checkpoint,
            "--data-dir", fixture_data_dir, "--validation-size", "100",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(out)])
        assert result.exit_code == 0, result.output
        with open(out / "fashion_cw_a1_b0.json") as handle:
            records[inits] = json.load(handle)
    assert records["gray"]["summary"]["settings"]["inits"] == ["gray"]
    assert records["noise,gray"]["summary"]["settings"]["inits"] == ["noise", "gray"]
    assert len(list((tmp_path / "cache").rglob("*.h5"))) == 2     # one cache file each


def test_tables_invoked_like_reproduce_does(fashion, fixture_data_dir, tmp_path):
    """`reproduce` runs `tables` through ctx.invoke, which hands option defaults over raw."""
    checkpoint, _ = fashion

    @click.command()
    @click.pass_context
    def parent(ctx):
        ctx.invoke(tables, dataset="fashion", attack="cw", n=6, max_iterations=1,
                   checkpoint=checkpoint, data_dir=fixture_data_dir, validation_size=100,
                   cache_dir=str(tmp_path / "cache"), out=str(tmp_path))

    result = CliRunner().invoke(parent)
    assert result.exit_code == 0, result.output
    assert "starts gray+noise" in (tmp_path / "table3_fashion_cw.md").read_text()
