"""CIFAR10-challenge path: official variable names and shapes, checkpoint round trips, an
independent numpy forward pass, safe readers for both official batch formats, fetch-data,
and the CLI on a synthetic checkpoint and synthetic data."""
import dataclasses
import hashlib
import json
import os
import pickle
import re
import tarfile

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

import cli
from bsattack import cifar_data, data, datasets, models, paths
from bsattack.datasets import get_spec
from bsattack.errors import BsattackError
from bsattack.shifts import BlindSpot
from support import FIXTURES
from support.cifar_synthetic import numpy_forward, python_batch_bytes, write_dataset
from madry_models import checkpoint as ckpt
from madry_models.cifar10 import build_cifar10, variable_shapes

tf1 = tf.compat.v1
SMALL = os.path.join(FIXTURES, "checkpoints", "cifar10_small")
SMALL_WIDTHS = (4, 8, 12, 16)


def official_layout():
    """{name: shape} from tests/fixtures/cifar10_official_variables.txt (written from the
    facts of cifar10_challenge/model.py and third-party weight-copy scripts)."""
    layout = {}
    with open(os.path.join(FIXTURES, "cifar10_official_variables.txt")) as handle:
        for line in handle:
            if line.strip() and not line.startswith("#"):
                name, shape = line.split()
                layout[name] = [int(d) for d in shape.split(",")]
    return layout


# --- model ----------------------------------------------------------------------------------
def test_every_variable_name_and_shape_matches_the_official_checkpoint():
    layout = official_layout()
    assert len(layout) == 157
    with tf.Graph().as_default():
        model = build_cifar10()
        built = {name: var.shape.as_list() for name, var in model.variables.items()}
        assert built == layout
        assert {v.op.name: v.shape.as_list() for v in tf1.global_variables()} == layout
        trainable = {v.op.name for v in tf1.trainable_variables()}
        assert trainable == {n for n in layout if "moving_" not in n}
        assert model.embedding.shape.as_list() == [None, 640]
        assert model.logits.shape.as_list() == [None, 10]
    assert sum(int(np.prod(s)) for s in layout.values()) == 45_924_346


def test_scoped_models_keep_official_keys():
    with tf.Graph().as_default():
        x = tf1.placeholder(tf.float32, [None, 32, 32, 3])
        adv = build_cifar10(x, scope="adv", widths=SMALL_WIDTHS)
        nat = build_cifar10(x, scope="nat", widths=SMALL_WIDTHS)
        assert list(adv.variables) == list(nat.variables) == list(variable_shapes(SMALL_WIDTHS))
        assert adv.variables["logit/DW"].op.name == "adv/logit/DW"
        assert nat.variables["unit_last/BatchNorm/moving_mean"].op.name == \
            "nat/unit_last/BatchNorm/moving_mean"


def test_fixture_checkpoint_matches_reference_and_numpy_forward():
    ref = np.load(os.path.join(SMALL, "reference_logits.npz"))
    with tf.Graph().as_default(), models.new_session() as sess:
        model = models.load(sess, get_spec("cifar10"), SMALL)
        logits, embedding = sess.run([model.logits, model.embedding], {model.x01: ref["images"]})
    np.testing.assert_allclose(logits, ref["logits"], rtol=1e-4, atol=1e-4)
    weights = ckpt.read_variables(SMALL, list(variable_shapes(SMALL_WIDTHS)))
    np_logits, np_embedding = numpy_forward(weights, ref["images"])
    np.testing.assert_allclose(logits, np_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(embedding, np_embedding, rtol=1e-4, atol=1e-5)
    assert len(set(np.argmax(np_logits, 1))) > 2          # a fixture that tells images apart


def _save_random(prefix_dir, widths, seed, images):
    """Random weights (BN statistics too) saved with the official names; returns logits."""
    rng = np.random.RandomState(seed)
    with tf.Graph().as_default(), tf1.Session() as sess:
        tf1.set_random_seed(seed)
        model = build_cifar10(widths=widths)
        sess.run(tf1.global_variables_initializer())
        for name, var in model.variables.items():
            if "/BatchNorm/" in name:
                var.load(rng.uniform(0.5, 1.5, var.shape.as_list()), sess)
        tf1.train.Saver(var_list=model.variables).save(sess, os.path.join(prefix_dir, "checkpoint"),
                                                       global_step=1)
        return sess.run(model.logits, {model.x01: images})


@pytest.mark.parametrize("widths", [SMALL_WIDTHS, pytest.param((16, 160, 320, 640),
                                                                marks=pytest.mark.slow)])
def test_saved_checkpoint_restores_identical_logits_in_a_fresh_graph(tmp_path, widths):
    images = np.random.RandomState(1).uniform(0, 1, (3, 32, 32, 3)).astype(np.float32)
    before = _save_random(tmp_path, widths, seed=3, images=images)
    assert sorted(ckpt.variable_shapes(tmp_path)) == sorted(variable_shapes(widths))
    with tf.Graph().as_default(), models.new_session() as sess:
        model = models.load(sess, get_spec("cifar10"), str(tmp_path))
        after = sess.run(model.logits, {model.x01: images})
    np.testing.assert_array_equal(after, before)


# --- data -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt,style", [("python", "py2"), ("python", "p2"), ("python", "p5"),
                                       ("binary", None)])
def test_both_official_formats_load_in_file_order(tmp_path, fmt, style):
    train_x, train_y, test_x, test_y = write_dataset(tmp_path / "d", fmt, style=style)
    split = data.load(get_spec("cifar10"), str(tmp_path / "d"), download=False)
    assert split.train_x.shape == (40, 32, 32, 3) and split.train_x.dtype == np.float32
    assert split.test_x.shape == (12, 32, 32, 3)
    np.testing.assert_array_equal(np.rint(split.train_x * 255).astype(np.uint8), train_x)
    np.testing.assert_array_equal(np.rint(split.test_x * 255).astype(np.uint8), test_x)
    np.testing.assert_array_equal(split.train_y, train_y)
    np.testing.assert_array_equal(split.test_y, test_y)
    assert split.train_y.dtype == np.int64


def test_official_folder_name_below_data_dir_and_pixel_layout(tmp_path):
    images = np.zeros((1, 32, 32, 3), np.uint8)
    images[0, 1, 2] = (10, 20, 30)                      # pixel (row 1, col 2): R, G, B
    raw = python_batch_bytes(images, [7])
    row = pickle.loads(raw, encoding="bytes")[b"data"][0]   # rows: 1024 R, 1024 G, 1024 B
    assert (row[32 + 2], row[1024 + 32 + 2], row[2048 + 32 + 2]) == (10, 20, 30)
    folder = tmp_path / "cifar-10-batches-py"
    write_dataset(folder)
    (folder / "test_batch").write_bytes(raw)
    split = data.load(get_spec("cifar10"), str(tmp_path), download=False)
    assert split.source == str(folder)
    np.testing.assert_array_equal(split.test_x[0, 1, 2] * 255, [10, 20, 30])
    assert split.test_y.tolist() == [7]


class _WritesFile:
    """A pickle payload: unpickling it with the stock pickle module creates ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return exec, (f"open({self.path!r}, 'w').write('pwned')",)


def _malicious_batches(marker):
    good = python_batch_bytes(np.zeros((2, 32, 32, 3), np.uint8), [1, 2])
    batch = pickle.loads(good, encoding="bytes")
    nested = {**batch, b"data": _WritesFile(marker)}
    in_object_array = {**batch, b"labels": np.array([_WritesFile(marker)], dtype=object)}
    return {"whole file": pickle.dumps(_WritesFile(marker), protocol=2),
            "as the data": pickle.dumps(nested, protocol=2),
            "in an object array": pickle.dumps(in_object_array, protocol=2)}


@pytest.mark.parametrize("case", ["whole file", "as the data", "in an object array"])
def test_pickle_with_code_is_refused_and_nothing_runs(tmp_path, case):
    marker = tmp_path / "marker.txt"
    raw = _malicious_batches(marker)[case]
    pickle.loads(raw)                                   # the payload is real: stock pickle runs it
    assert marker.exists()
    marker.unlink()
    folder = tmp_path / "d"
    write_dataset(folder)
    (folder / "data_batch_3").write_bytes(raw)
    with pytest.raises(BsattackError) as err:
        data.load(get_spec("cifar10"), str(folder), download=False)
    message = str(err.value)
    assert "refused" in message and "data_batch_3" in message and "\n" not in message
    assert not marker.exists()


def test_non_integer_or_malformed_arrays_are_refused(tmp_path):
    batch = pickle.loads(python_batch_bytes(np.zeros((2, 32, 32, 3), np.uint8), [1, 2]),
                         encoding="bytes")
    cases = {"object": {**batch, b"data": np.array([1, 2], dtype=object)},
             "float": {**batch, b"data": np.zeros((2, 3072), np.float32)},
             "list of str": {**batch, b"labels": ["a", "b"]},
             "missing data": {b"labels": [1, 2]}}
    for name, value in cases.items():
        path = tmp_path / name
        path.write_bytes(pickle.dumps(value, protocol=2))
        with pytest.raises(BsattackError, match="refused|expected|keys|integers"):
            cifar_data.read_python_batch(str(path))
    raw = bytearray(pickle.dumps(batch, protocol=2))
    short = raw.replace(b"\x00" * 6144, b"\x00" * 6000, 1)   # array bytes shorter than its shape
    (tmp_path / "short").write_bytes(bytes(short))
    with pytest.raises(BsattackError, match="refused"):
        cifar_data.read_python_batch(str(tmp_path / "short"))


def test_binary_errors(tmp_path):
    folder = tmp_path / "d"
    write_dataset(folder, "binary")
    path = folder / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(BsattackError, match="whole number of 3073-byte"):
        data.load(get_spec("cifar10"), str(folder), download=False)
    record = bytes([12]) + bytes(3072)
    path.write_bytes(record)
    with pytest.raises(BsattackError, match="labels outside 0..9"):
        data.load(get_spec("cifar10"), str(folder), download=False)


def test_missing_data_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DATA_DIR", str(tmp_path / "project"))
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    with pytest.raises(BsattackError) as err:
        data.load(get_spec("cifar10"), str(tmp_path / "nowhere"), download=False)
    assert "\n" not in str(err.value) and "fetch-data cifar10" in str(err.value)


def test_fetch_data_cifar10_checks_sha256_and_unpacks(tmp_path, monkeypatch):
    write_dataset(tmp_path / "src" / "cifar-10-batches-py")
    served = tmp_path / "served"
    served.mkdir()
    archive = served / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        handle.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    spec = datasets.get_spec("cifar10")

    def use(sha):
        files = {"archive": dataclasses.replace(spec.files["archive"], sha256=sha)}
        monkeypatch.setitem(datasets.DATASETS, "cifar10", dataclasses.replace(
            spec, base_url=served.as_uri() + "/", files=files))

    runner = CliRunner()
    use("0" * 64)
    result = runner.invoke(cli.main, ["fetch-data", "cifar10", "--dest", str(tmp_path / "bad")])
    assert result.exit_code == 1 and "checksum mismatch" in result.output
    assert not (tmp_path / "bad" / "cifar-10-batches-py").exists()
    use(digest)
    dest = tmp_path / "good"
    result = runner.invoke(cli.main, ["fetch-data", "cifar10", "--dest", str(dest)])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(dest)) == ["cifar-10-batches-py"]   # the archive is removed
    split = data.load(get_spec("cifar10"), str(dest), download=False)
    assert split.train_x.shape == (40, 32, 32, 3)
    archive.unlink()                                            # second run: nothing to download
    assert runner.invoke(cli.main, ["fetch-data", "cifar10", "--dest", str(dest)]).exit_code == 0


# --- CLI end to end -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic_cifar(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py"
    arrays = write_dataset(folder, per_batch=8, n_test=40, seed=5)
    return str(folder.parent), arrays


def test_accuracy_command_on_synthetic_checkpoint_and_data(synthetic_cifar):
    folder, (_, _, test_x, test_y) = synthetic_cifar
    result = CliRunner().invoke(cli.main, ["accuracy", "--dataset", "cifar10", "--checkpoint",
                                           SMALL, "--data-dir", folder, "--batch-size", "16"])
    assert result.exit_code == 0, result.output
    weights = ckpt.read_variables(SMALL, list(variable_shapes(SMALL_WIDTHS)))
    logits, _ = numpy_forward(weights, test_x.astype(np.float32) / 255.0)
    correct = int(np.sum(np.argmax(logits, 1) == test_y))
    assert re.search(rf"\({correct}/40 test images\)", result.output), result.output


def test_embed_command_caches_the_global_average_pool(synthetic_cifar, tmp_path):
    from bsattack.embed import Embeddings
    folder, (train_x, _, test_x, _) = synthetic_cifar
    result = CliRunner().invoke(cli.main, ["embed", "--dataset", "cifar10", "--checkpoint", SMALL,
                                           "--natural-checkpoint", SMALL, "--extractor", "adv",
                                           "--data-dir", folder,
                                           "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    weights = ckpt.read_variables(SMALL, list(variable_shapes(SMALL_WIDTHS)))
    split = data.load(get_spec("cifar10"), folder, download=False)
    cached = Embeddings(get_spec("cifar10"), SMALL, split, str(tmp_path), echo=lambda *_: None)
    scaled = 0.9 * (test_x.astype(np.float64) / 255 - 0.5) + 0.5      # x' = αx + β in [-0.5, 0.5]
    for got, images in [(cached.get("train"), train_x / 255.0),
                        (cached.get("test"), test_x / 255.0),
                        (cached.get("test", BlindSpot(0.9, 0.0)), scaled)]:
        np.testing.assert_allclose(got, numpy_forward(weights, images)[1], rtol=1e-4, atol=1e-5)


def test_pgd_attack_command_on_cifar(synthetic_cifar, tmp_path, monkeypatch):
    """20-step PGD at ε = 8 (pixel units) through the challenge `attack` command; the file is
    checked against the clean pixels and re-scored with the numpy forward pass."""
    from bsattack import challenge_attack
    monkeypatch.setattr(challenge_attack, "CACHE_DIR", str(tmp_path / "cache"))
    folder, (_, _, test_x, test_y) = synthetic_cifar
    out = tmp_path / "attack.npy"
    result = CliRunner().invoke(cli.main, ["attack", "--dataset", "cifar10", "--checkpoint", SMALL,
                                           "--data-dir", folder, "--attack", "pgd", "--out",
                                           str(out)])
    assert result.exit_code == 0, result.output
    adv = np.load(out)
    assert adv.shape == (40, 32, 32, 3) and adv.min() >= 0 and adv.max() <= 255
    assert np.abs(adv - test_x.astype(np.float64)).max() <= 8 + 1e-3
    weights = ckpt.read_variables(SMALL, list(variable_shapes(SMALL_WIDTHS)))
    clean = np.argmax(numpy_forward(weights, test_x / 255.0)[0], 1) == test_y
    attacked = np.argmax(numpy_forward(weights, adv / 255.0)[0], 1) == test_y
    match = re.search(r"accuracy of .* on it: ([\d.]+)%", result.output)
    assert abs(float(match.group(1)) - 100 * attacked.mean()) < 2.6     # one image at most
    assert attacked.sum() < clean.sum()


def test_flat_input_gives_the_same_logits():
    ref = np.load(os.path.join(SMALL, "reference_logits.npz"))
    with tf.Graph().as_default(), models.new_session() as sess:
        flat = tf1.placeholder(tf.float32, [None, 3072])
        model = models.load(sess, get_spec("cifar10"), SMALL, x01=flat)
        logits = sess.run(model.logits, {flat: ref["images"].reshape(len(ref["images"]), -1)})
    np.testing.assert_allclose(logits, ref["logits"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("attack", [
    ["--attack", "pgd", "--pgd-steps", "20", "--pgd-step-size", str(2 / 255)],
    ["--attack", "cw", "--max-iterations", "20"],
    ["--attack", "cw", "--cw-variant", "reference", "--max-iterations", "20"],
    ["--attack", "apgd", "--apgd-iterations", "20"]])
def test_blindspot_command_on_cifar(synthetic_cifar, tmp_path, attack):
    """The blind-spot experiment at ε = 8/255 on x' = 0.9x: accuracy equals the numpy forward
    pass on the transformed images; every success is misclassified within its threshold."""
    folder, (_, _, test_x, test_y) = synthetic_cifar
    out = tmp_path / "out"
    result = CliRunner().invoke(cli.main, [
        "blindspot", "--dataset", "cifar10", "--checkpoint", SMALL, "--data-dir", folder,
        "--alpha", "0.9", "--n", "20", *attack, "--cache-dir", str(tmp_path / "c"),
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    (record,) = [f for f in os.listdir(out) if f.endswith(".json")]
    with open(out / record) as handle:
        run = json.load(handle)
    summary, images = run["summary"], run["images"]
    assert summary["eps"] == pytest.approx(8 / 255)
    assert summary["alpha_eps"] == pytest.approx(0.9 * 8 / 255)
    weights = ckpt.read_variables(SMALL, list(variable_shapes(SMALL_WIDTHS)))
    scaled = 0.9 * (test_x[:20] / 255.0 - 0.5) + 0.5
    correct = np.argmax(numpy_forward(weights, scaled)[0], 1) == test_y[:20]
    assert [im["correct"] for im in images] == correct.tolist()
    assert summary["attacked"] == correct.sum()
    for im in images:
        if im["success_eps"]:
            assert im["linf"] <= 8 / 255 + 1e-4 and im["adv_prediction"] != im["label"]
    assert any(im["success_eps"] for im in images)
