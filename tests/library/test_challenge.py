"""`evaluate`: run_attack.py's checks (shape, range, NaN, L∞ ≤ ε + 1e-4) and accuracy, plus
the refusals it adds (dtype, inf, pickles), on the fixture checkpoint and data (500 images)."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

import cli
from bsattack import challenge, models
from bsattack.datasets import get_spec
from bsattack.errors import BsattackError
from support import FIXTURE_VALIDATION_SIZE, ROOT

N = 500


@pytest.fixture(scope="module")
def clean(small_split):
    return small_split("mnist").test_x[:N].copy()


@pytest.fixture(scope="module")
def zero_pixel(clean):
    """(image 0, a pixel that is 0 in it): moving it up keeps the file in [0, 1]."""
    return 0, int(np.flatnonzero(clean[0] == 0)[0])


def evaluate(path, small_checkpoint, small_split, tmp_path):
    return challenge.evaluate(get_spec("mnist"), small_checkpoint("mnist"), path,
                              small_split("mnist"), N, tmp_path / "pred.npy", echo=lambda *_: None)


def refused(array_or_path, small_checkpoint, small_split, tmp_path):
    path = array_or_path
    if isinstance(array_or_path, np.ndarray):
        path = tmp_path / "attack.npy"
        np.save(path, array_or_path)
    with pytest.raises(BsattackError) as err:
        evaluate(path, small_checkpoint, small_split, tmp_path)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "pred.npy").exists()
    return str(err.value)


def test_clean_file_matches_accuracy_command(clean, small_checkpoint, small_split,
                                             fixture_data_dir, tmp_path):
    np.save(tmp_path / "attack.npy", clean)
    common = ["--dataset", "mnist", "--checkpoint", small_checkpoint("mnist"), "--data-dir",
              fixture_data_dir, "--validation-size", str(FIXTURE_VALIDATION_SIZE)]
    runs = [subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), *args], cwd=tmp_path,
                           capture_output=True, text=True)
            for args in (["evaluate", *common, "--attack-file", "attack.npy", "--n", str(N)],
                         ["accuracy", *common, "--n", str(N)])]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    printed = runs[0].stdout.split("Accuracy: ")[1].split("%")[0]
    assert f"{printed}%" in runs[1].stdout
    assert "Output saved at pred.npy" in runs[0].stdout
    pred = np.load(tmp_path / "pred.npy")
    assert pred.dtype == np.int64 and pred.shape == (N,)
    with tf.Graph().as_default(), models.new_session() as sess:   # independent argmax
        model = models.load(sess, get_spec("mnist"), small_checkpoint("mnist"))
        logits = sess.run(model.logits, {model.x01: clean})
    np.testing.assert_array_equal(pred, logits.argmax(1))
    labels = small_split("mnist").test_y[:N]
    assert printed == f"{100 * np.mean(pred == labels):.2f}"


@pytest.mark.parametrize("delta,ok", [(np.float32(0.3), True), (0.30009, True),
                                      (0.3002, False), (0.5, False)])
def test_budget_edge(clean, zero_pixel, small_checkpoint, small_split, tmp_path, delta, ok):
    x = clean.copy()
    image, pixel = zero_pixel
    x[image, pixel] = x[image, pixel] + delta          # float32 arithmetic, as a user would
    assert x.dtype == np.float32
    if ok:
        evaluate(_save(tmp_path, x), small_checkpoint, small_split, tmp_path)
        assert np.load(tmp_path / "pred.npy").shape == (N,)
    else:
        message = refused(x, small_checkpoint, small_split, tmp_path)
        assert f"maximum perturbation found: {np.abs(x - clean).max():.6f} (image 0)" in message
        assert "maximum allowed: 0.3001" in message and "1 of 500 images are over budget" in message


def test_over_budget_counts_images_and_excess(clean, small_checkpoint, small_split, tmp_path):
    x = clean.copy()
    rng = np.random.default_rng(0)
    moved = rng.choice(N, 7, replace=False)
    x[moved] = np.clip(x[moved] + rng.choice([-1, 1], (7, 784)) * 0.36, 0, 1)
    excess = np.abs(x.astype(np.float64) - clean).max(1) - 0.3
    over = excess > 1e-4
    message = refused(x, small_checkpoint, small_split, tmp_path)
    assert f"{over.sum()} of 500 images are over budget" in message
    assert f"by {excess[over].min():.6f} to {excess[over].max():.6f}" in message


@pytest.mark.parametrize("damage,reason", [
    ("short", "Invalid shape: expected (500,784), found (499,784)"),
    ("square", "Invalid shape: expected (500,784), found (500,28,28)"),
    ("nan", "contains NaN"),
    ("inf", "contains inf"),
    ("above", "Invalid pixel range. Expected [0, 1], found"),
    ("below", "Invalid pixel range. Expected [0, 1], found [-0.001"),
    ("complex", "wrong dtype complex64"),
    ("bool", "wrong dtype bool"),
    ("object", "pickled object"),
    ("pickle", "pickled object"),
    ("npz", "is a .npz archive"),
    ("garbage", "not a valid .npy file"),
])
def test_invalid_files_are_refused_with_reason(clean, small_checkpoint, small_split, tmp_path,
                                               damage, reason):
    x = clean.copy()
    path = tmp_path / "attack.npy"
    if damage == "short":
        x = x[:-1]
    elif damage == "square":
        x = x.reshape(N, 28, 28)
    elif damage == "nan":
        x[3, 5] = np.nan
    elif damage == "inf":
        x[3, 5] = np.inf
    elif damage == "above":
        x[3, 5] = 1.0002
    elif damage == "below":
        x[3, 5] = -0.001
    elif damage == "complex":
        x = x.astype(np.complex64)
    elif damage == "bool":
        x = x > 0.5
    elif damage == "object":
        # what np.save writes for an object array: a .npy header, then the pickled array
        payload = np.array([x, "payload"], dtype=object)
        with open(path, "wb") as handle:
            np.lib.format.write_array_header_1_0(
                handle, np.lib.format.header_data_from_array_1_0(payload))
            pickle.dump(payload, handle, protocol=3)
    elif damage == "pickle":
        path.write_bytes(pickle.dumps(x))
    elif damage == "npz":
        np.savez(path.with_suffix(".npz"), x=x)
        path = path.with_suffix(".npz")
    elif damage == "garbage":
        path.write_bytes(b"\x93NUMPY\x01\x00garbage")
    if damage not in ("object", "pickle", "npz", "garbage"):
        np.save(path, x)
    assert reason in refused(path, small_checkpoint, small_split, tmp_path)


def test_cli_refusal_is_one_line(clean, zero_pixel, small_checkpoint, fixture_data_dir, tmp_path):
    x = clean.copy()
    x[zero_pixel] += 0.3002
    np.save(tmp_path / "a.npy", x)
    result = CliRunner().invoke(cli.main, [
        "evaluate", "--checkpoint", small_checkpoint("mnist"), "--attack-file",
        str(tmp_path / "a.npy"), "--data-dir", fixture_data_dir, "--n", str(N),
        "--validation-size", str(FIXTURE_VALIDATION_SIZE), "--pred-out", str(tmp_path / "p.npy")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: maximum perturbation found: 0.3002")
    assert not (tmp_path / "p.npy").exists()


def test_cifar_rules_in_0_255_units():
    assert challenge.expected_shape(get_spec("cifar10")) == (10000, 32, 32, 3)
    assert challenge.expected_shape(get_spec("mnist")) == (10000, 784)
    rng = np.random.default_rng(1)
    clean = rng.integers(0, 256, (4, 32, 32, 3)).astype(np.float64)
    x = clean.copy()
    x[clean <= 247] += 8.0                                   # exactly ε = 8/255 in [0,1] units
    assert challenge.check_attack(x.astype(np.float32), clean, get_spec("cifar10")) == 8.0
    x[0, 0, 0, 0] = clean[0, 0, 0, 0] + (8.0002 if clean[0, 0, 0, 0] < 240 else -8.0002)
    with pytest.raises(BsattackError, match="1 of 4 images are over budget"):
        challenge.check_attack(x, clean, get_spec("cifar10"))
    with pytest.raises(BsattackError, match=r"Expected \[0, 255\]"):
        challenge.check_attack(np.full_like(clean, 255.0002), clean, get_spec("cifar10"))
    uint8 = clean.astype(np.uint8)                            # integer files are fine
    assert challenge.check_attack(uint8, clean, get_spec("cifar10")) == 0.0


def _save(tmp_path, x):
    np.save(tmp_path / "attack.npy", x)
    return tmp_path / "attack.npy"


@pytest.mark.slow
def test_full_challenge_file_on_shared_checkpoint(shared_dir, tmp_path):
    """The real format: 10,000 MNIST test images, the stand-in for the secret model."""
    from bsattack import data
    split = data.load(get_spec("mnist"), os.path.join(shared_dir, "data", "mnist"), download=False)
    checkpoint = os.path.join(shared_dir, "checkpoints", "mnist_adv")
    x = split.test_x.copy()
    pixel = int(np.flatnonzero(x[0] == 0)[0])
    x[0, pixel] += np.float32(0.3)
    np.save(tmp_path / "attack.npy", x)
    acc = challenge.evaluate(get_spec("mnist"), checkpoint, tmp_path / "attack.npy", split,
                             pred_out=tmp_path / "pred.npy", echo=lambda *_: None)
    assert acc == models.accuracy(get_spec("mnist"), checkpoint, x, split.test_y)
    x[0, pixel] += np.float32(0.0002)
    with pytest.raises(BsattackError, match="1 of 10000 images are over budget"):
        challenge.check_attack(x, split.test_x, get_spec("mnist"))


def crafted_header_file(path, shape, body=b"\0" * 64, dtype="<f4"):
    """A .npy whose header claims ``shape`` but whose data is only ``body``."""
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": dtype, "fortran_order": False,
                                                      "shape": shape})
        handle.write(body)
    return path


def test_header_claiming_a_huge_array_is_refused_before_allocating(small_checkpoint, small_split,
                                                                   tmp_path):
    path = crafted_header_file(tmp_path / "huge.npy", (10**9, 784))
    message = refused(path, small_checkpoint, small_split, tmp_path)
    assert "announces shape (1000000000,784)" in message and "holds 64 bytes" in message


def test_text_file_is_not_an_npy_file(small_checkpoint, small_split, tmp_path):
    path = tmp_path / "attack.npy"
    path.write_text("0.1, 0.2, 0.3\n" * 10)
    message = refused(path, small_checkpoint, small_split, tmp_path)
    assert "is not an .npy file" in message and "pickle" not in message


def test_unwritable_pred_out_fails_before_the_work(clean, small_checkpoint, fixture_data_dir,
                                                   tmp_path):
    """`evaluate --pred-out` that cannot be written: one line, before any accuracy is printed."""
    np.save(tmp_path / "a.npy", clean)
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder.npy").mkdir()
    for pred_out in ("/proc/nonexistent/p.npy", tmp_path / "file" / "p.npy",
                     tmp_path / "folder.npy", tmp_path / ("x" * 300 + ".npy")):
        result = CliRunner().invoke(cli.main, [
            "evaluate", "--checkpoint", small_checkpoint("mnist"), "--attack-file",
            str(tmp_path / "a.npy"), "--data-dir", fixture_data_dir, "--n", str(N),
            "--validation-size", str(FIXTURE_VALIDATION_SIZE), "--pred-out", str(pred_out)])
        assert result.exit_code != 0 and "Traceback" not in result.output, result.output
        assert "Accuracy" not in result.output
        assert [line for line in result.output.splitlines() if line.startswith("Error:")] \
            == [result.output.strip().splitlines()[-1]], result.output


# --- property-based: check_attack against a direct restatement of run_attack.py's rules ------
from hypothesis import given, settings, strategies as st          # noqa: E402
from hypothesis.extra import numpy as hnp                           # noqa: E402

CLEAN_SMALL = np.random.default_rng(3).random((4, 784)).astype(np.float32)
PIXEL = st.floats(-0.5, 1.5, width=32) | st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1.0])


def reference_verdict(x, clean):
    """run_attack.py's checks in its order, as plain numpy; None when the file is valid."""
    if x.shape != clean.shape:
        return "shape"
    values = x.astype(np.float64)
    if np.isnan(values).any() or np.isinf(values).any():
        return "range"
    if values.max() > 1.0001 or values.min() < -0.0001:
        return "range"
    if (np.abs(values - clean.astype(np.float64)).max(axis=1) > 0.3001).any():
        return "budget"
    return None


@settings(max_examples=150, deadline=None)
@given(delta=hnp.arrays(np.float32, (4, 784), elements=st.floats(-0.3125, 0.3125, width=32)),
       pixels=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 783), PIXEL), max_size=3),
       shape=st.sampled_from([(4, 784), (3, 784), (4, 28, 28), (784, 4)]))
def test_check_attack_agrees_with_the_reference_rules(delta, pixels, shape):
    x = np.clip(CLEAN_SMALL + delta, 0, 1).astype(np.float32)
    for i, j, value in pixels:
        x[i, j] = value
    x = x[:shape[0]] if shape == (3, 784) else x.reshape(shape)
    want = reference_verdict(x, CLEAN_SMALL)
    if want is None:
        largest = challenge.check_attack(x, CLEAN_SMALL, get_spec("mnist"))
        assert largest == pytest.approx(np.abs(x.astype(np.float64) - CLEAN_SMALL).max())
        return
    with pytest.raises(BsattackError) as err:
        challenge.check_attack(x, CLEAN_SMALL, get_spec("mnist"))
    text = str(err.value)
    assert "\n" not in text
    assert {"shape": "Invalid shape", "range": "Invalid pixel range",
            "budget": "maximum perturbation found"}[want] in text


@settings(max_examples=60, deadline=None)
@given(dtype=st.sampled_from(["<f4", "<f8", "<i2", "|u1", ">f4", "<c8", "|b1", "<U3", "<M8[s]"]),
       shape=st.tuples(st.integers(0, 5), st.integers(0, 5)),
       cut=st.integers(-3, 3))
def test_load_attack_file_checks_dtype_and_size(tmp_path_factory, dtype, shape, cut):
    """Any header/body mismatch is refused in one line; a consistent file loads exactly when
    its dtype is a real number type."""
    path = tmp_path_factory.mktemp("npy") / "a.npy"
    array = np.zeros(shape, dtype=dtype)
    np.save(path, array)
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw) + cut] if cut < 0 else raw + b"\0" * cut)
    if cut == 0 and np.dtype(dtype).kind in "fiu":
        loaded = challenge.load_attack_file(path)
        assert loaded.dtype == np.dtype(dtype) and loaded.shape == shape
        return
    with pytest.raises(BsattackError) as err:
        challenge.load_attack_file(path)
    assert "\n" not in str(err.value)
