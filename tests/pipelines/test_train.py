"""`train`: official checkpoint layout, resume with the same step and Adam state, init-from,
weights-only export, refusals; on the fixture data with a narrow network."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

import cli
from bsattack.train import BatchSchedule
from madry_models import checkpoint as ckpt
from madry_models.mnist import VARIABLE_NAMES
from support.mnist_forward import numpy_forward

WIDTHS = "8,16,64"
ADAM_NAMES = [f"{n}/Adam{s}" for n in VARIABLE_NAMES for s in ("", "_1")]


def run_train(out, data_dir, *extra, eps="0.1", steps=4, save_every=2, k=3):
    args = ["train", "--dataset", "fashion", "--eps", eps, "--out", str(out), "--steps",
            str(steps), "--save-every", str(save_every), "--k", str(k), "--data-dir", data_dir,
            "--validation-size", "100", "--widths", WIDTHS, *extra]
    return CliRunner().invoke(cli.main, args)


def stored(path):
    names = ckpt.variable_shapes(path)
    return ckpt.read_variables(path, list(names))


def test_adversarial_training_writes_the_official_layout_that_accuracy_loads(
        tmp_path, fixture_data_dir, small_split):
    out = tmp_path / "adv"
    result = run_train(out, fixture_data_dir)
    assert result.exit_code == 0, result.output
    index = (out / "checkpoint").read_text()
    assert 'model_checkpoint_path: "checkpoint-4"' in index and str(tmp_path) not in index
    assert {"checkpoint-2.index", "checkpoint-4.index", "checkpoint-4.meta"} <= set(os.listdir(out))
    values = stored(out)
    assert set(values) == set(VARIABLE_NAMES + ADAM_NAMES +
                              ["beta1_power", "beta2_power", "global_step"])
    assert values["global_step"] == 4
    np.testing.assert_allclose(values["beta1_power"], 0.9 ** 5, rtol=1e-6)   # 4 Adam steps done
    log = json.loads((out / "train_log.json").read_text())
    assert [h["step"] for h in log["history"]] == [2, 4]
    assert all(0 <= h["nat_acc"] <= 1 and 0 <= h["adv_acc"] <= 1 for h in log["history"])

    result = CliRunner().invoke(cli.main, ["accuracy", "--dataset", "fashion", "--checkpoint",
                                           str(out), "--data-dir", fixture_data_dir,
                                           "--validation-size", "100"])
    assert result.exit_code == 0, result.output
    split = small_split("fashion")
    correct = int(np.sum(numpy_forward(values, split.test_x).argmax(1) == split.test_y))
    assert f"({correct}/500 test images)" in result.output


def test_resume_continues_at_the_same_step_with_the_same_adam_state(tmp_path, fixture_data_dir):
    """Natural training is deterministic given the batches, so 2 steps + resume to 4 must equal
    4 uninterrupted steps in every variable, Adam slots included; starting again from the
    weights only (--init-from, fresh Adam) must not."""
    whole, split_run, fresh = tmp_path / "whole", tmp_path / "split", tmp_path / "fresh"
    assert run_train(whole, fixture_data_dir, eps="0", steps=4).exit_code == 0
    assert run_train(split_run, fixture_data_dir, eps="0", steps=2).exit_code == 0
    first = stored(split_run)
    result = run_train(split_run, fixture_data_dir, "--resume", eps="0", steps=4)
    assert result.exit_code == 0, result.output
    assert "from step 2 to 4" in result.output
    log = json.loads((split_run / "train_log.json").read_text())
    assert log["runs"][1]["resumed_from"] == "checkpoint-2" and log["runs"][1]["start_step"] == 2
    a, b = stored(whole), stored(split_run)
    assert b["global_step"] == 4
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-5, atol=1e-7, err_msg=name)
    assert not np.allclose(first["Variable_4/Adam_1"], b["Variable_4/Adam_1"])  # slots moved on

    result = run_train(fresh, fixture_data_dir, "--init-from", str(split_run / "checkpoint-2"),
                       eps="0", steps=4)
    assert result.exit_code == 0, result.output
    c = stored(fresh)
    assert c["global_step"] == 4
    np.testing.assert_allclose(c["beta1_power"], 0.9 ** 3, rtol=1e-6)         # 2 fresh steps
    assert not np.allclose(c["Variable_4/Adam"], a["Variable_4/Adam"])


def test_refusals_are_one_line(tmp_path, fixture_data_dir, small_checkpoint):
    out = tmp_path / "run"
    assert run_train(out, fixture_data_dir, eps="0", steps=2).exit_code == 0
    cases = {"--resume": run_train(out, fixture_data_dir, eps="0", steps=4),
             "other settings (eps)": run_train(out, fixture_data_dir, "--resume", eps="0.2",
                                               steps=4),
             "exclude each other": run_train(tmp_path / "w", fixture_data_dir, "--init-from",
                                             small_checkpoint("fashion"), "--resume", eps="0",
                                             steps=4)}
    for expected, result in cases.items():
        assert result.exit_code == 1 and expected in result.output
        assert result.output.count("\n") == 1 and result.output.startswith("Error:")


def test_export_weights_drops_optimizer_state(tmp_path, fixture_data_dir, small_checkpoint,
                                               small_split):
    src = small_checkpoint("fashion")
    result = CliRunner().invoke(cli.main, ["export-weights", "--dataset", "fashion", src,
                                           str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    values = stored(tmp_path / "w")
    assert set(values) == set(VARIABLE_NAMES + ["global_step"])
    assert values["global_step"] == 300 and os.path.exists(tmp_path / "w" / "checkpoint-300.index")
    original = ckpt.read_variables(src, VARIABLE_NAMES)
    for name in VARIABLE_NAMES:
        np.testing.assert_array_equal(values[name], original[name])
    result = CliRunner().invoke(cli.main, ["export-weights", "--dataset", "fashion", src,
                                           str(tmp_path / "w")])
    assert result.exit_code == 1 and "already holds" in result.output


def test_batch_schedule_is_a_per_epoch_permutation_and_a_function_of_step():
    schedule = BatchSchedule(n=10, batch_size=4, seed=7)
    batches = [schedule.indices(step) for step in range(5)]     # 20 positions = 2 epochs
    flat = np.concatenate(batches)
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:]) == list(range(10))
    np.testing.assert_array_equal(flat[:10], np.random.RandomState(7).permutation(10))
    again = BatchSchedule(n=10, batch_size=4, seed=7)
    np.testing.assert_array_equal(again.indices(3), batches[3])  # no dependence on history
    assert not np.array_equal(BatchSchedule(10, 4, 8).indices(0), batches[0])


def test_non_finite_options_and_bad_seeds_are_refused_before_any_work(tmp_path, fixture_data_dir):
    """`train --lr nan` used to save all-NaN weights, `--eps nan` to train naturally, both
    with exit 0; `--seed -1` failed with a traceback."""
    cases = [("--lr", "nan"), ("--lr", "inf"), ("--a", "nan"), ("--seed", "-1"),
             ("--seed", str(2**32))]
    for option, value in cases:
        out = tmp_path / f"{option[2:]}{value}"
        result = run_train(out, fixture_data_dir, option, value)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert f"Invalid value for '{option}'" in result.output
        assert not out.exists()
    for eps in ("nan", "-inf", "1e999"):
        result = run_train(tmp_path / "eps", fixture_data_dir, eps=eps)
        assert result.exit_code == 2 and "Invalid value for '--eps'" in result.output
    assert not (tmp_path / "eps").exists()
    result = run_train(tmp_path / "top", fixture_data_dir, "--seed", str(2**32 - 1), eps="0",
                       steps=2)
    assert result.exit_code == 0, result.output       # the largest seed numpy takes runs


def test_diverging_training_stops_and_the_log_stays_strict_json(tmp_path, fixture_data_dir):
    """A learning rate so large the loss overflows: an error naming the step, no NaN weights
    saved after the last checkpoint, train_log.json strict JSON."""
    out = tmp_path / "div"
    result = run_train(out, fixture_data_dir, "--lr", "1e38", eps="0", steps=6, save_every=1)
    assert result.exit_code == 1 and "training diverged at step" in result.output, result.output
    log_text = (out / "train_log.json").read_text() if (out / "train_log.json").exists() else "{}"
    log = json.loads(log_text, parse_constant=lambda c: pytest.fail(f"bare {c} in the log"))
    for entry in log.get("history", []):
        values = stored(out / entry["checkpoint"])
        assert all(np.isfinite(values[n]).all() for n in VARIABLE_NAMES), entry


def test_unwritable_out_is_refused_before_training(tmp_path, fixture_data_dir):
    (tmp_path / "file").write_text("x")
    for out in ("/proc/nonexistent/run", tmp_path / "file" / "run",
                tmp_path / ("x" * 300) / "run"):
        result = run_train(out, fixture_data_dir, eps="0", steps=2)
        assert result.exit_code == 1 and "cannot write the training folder" in result.output, \
            result.output
        assert result.output.count("\n") == 1


def test_batch_schedule_accepts_the_largest_seed():
    schedule = BatchSchedule(n=10, batch_size=8, seed=2**32 - 1)
    assert sorted(np.concatenate([schedule.indices(0), schedule.indices(1)])[:10]) == \
        list(range(10))
