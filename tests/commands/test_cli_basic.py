"""`cli.py accuracy` end to end, and its bad-input errors: one line, non-zero exit."""
import gzip
import os
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf

from support import ROOT
from bsattack.datasets import get_spec
from madry_models import checkpoint as ckpt
from madry_models.mnist import VARIABLE_NAMES

tf1 = tf.compat.v1


def run_cli(*args, env=None):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), *map(str, args)],
                            capture_output=True, text=True, env={**os.environ, **(env or {})})
    return result.returncode, result.stdout, result.stderr


def error_line(stderr):
    """The CLI's own message: the last line of stderr (TensorFlow may log before it)."""
    lines = [line for line in stderr.strip().splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_accuracy_command_matches_library(fixture_data_dir, small_checkpoint, small_split):
    split = small_split("mnist")
    from bsattack import models
    expected = models.accuracy(get_spec("mnist"), small_checkpoint("mnist"), split.test_x,
                               split.test_y)
    code, out, err = run_cli("accuracy", "--dataset", "mnist", "--checkpoint",
                             small_checkpoint("mnist"), "--data-dir", fixture_data_dir,
                             "--validation-size", 100)
    assert code == 0, err
    assert f"{100 * expected:.2f}%" in out and "/500 test images" in out


def test_missing_checkpoint_dir(fixture_data_dir, tmp_path):
    code, _, err = run_cli("accuracy", "--checkpoint", tmp_path / "nope", "--data-dir",
                           fixture_data_dir, "--validation-size", 100)
    assert code != 0 and "not found" in error_line(err)


def test_checkpoint_missing_a_variable(fixture_data_dir, small_checkpoint, tmp_path):
    weights = ckpt.read_variables(small_checkpoint("mnist"), VARIABLE_NAMES)
    with tf.Graph().as_default(), tf1.Session() as sess:
        kept = [tf1.Variable(v, name=n) for n, v in weights.items() if n != "Variable_5"]
        sess.run(tf1.global_variables_initializer())
        tf1.train.Saver(kept).save(sess, str(tmp_path / "checkpoint"), global_step=7)
    code, _, err = run_cli("accuracy", "--checkpoint", tmp_path, "--data-dir", fixture_data_dir,
                           "--validation-size", 100)
    assert code != 0 and "no variable 'Variable_5'" in error_line(err)


@pytest.mark.parametrize("damage", ["magic", "truncate"])
def test_bad_data_files(fixture_data_dir, small_checkpoint, tmp_path, damage):
    folder = tmp_path / "mnist"
    shutil.copytree(os.path.join(fixture_data_dir, "mnist"), folder)
    target = folder / "t10k-images-idx3-ubyte.gz"
    raw = target.read_bytes()
    if damage == "magic":
        content = bytearray(gzip.decompress(raw))
        content[3] = 0x01
        target.write_bytes(gzip.compress(bytes(content)))
    else:
        target.write_bytes(raw[: len(raw) // 2])
    code, _, err = run_cli("accuracy", "--checkpoint", small_checkpoint("mnist"), "--data-dir",
                           folder, "--validation-size", 100)
    line = error_line(err)
    assert code != 0 and "t10k-images" in line
    assert ("wrong magic number" in line) if damage == "magic" else ("truncated" in line)
