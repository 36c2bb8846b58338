"""MNIST-challenge model: variable names, restore, numpy forward pass, checkpoint errors."""
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from bsattack import models
from bsattack.datasets import get_spec
from bsattack.errors import BsattackError
from madry_models import checkpoint as ckpt
from madry_models.mnist import VARIABLE_NAMES, build_mnist, variable_shapes
from support.mnist_forward import numpy_forward

tf1 = tf.compat.v1


def test_official_variable_names_and_order():
    with tf.Graph().as_default():
        model = build_mnist()
        assert list(model.variables) == VARIABLE_NAMES
        assert [v.op.name for v in tf1.global_variables()] == VARIABLE_NAMES
        assert {k: v.shape.as_list() for k, v in model.variables.items()} == variable_shapes()
        assert model.embedding.shape.as_list() == [None, 1024]


def test_two_models_side_by_side_share_input(small_checkpoint):
    with tf.Graph().as_default(), models.new_session() as sess:
        x = tf1.placeholder(tf.float32, [None, 784])
        a = models.load(sess, get_spec("mnist"), small_checkpoint("mnist"), x, scope="adv")
        b = models.load(sess, get_spec("fashion"), small_checkpoint("fashion"), x, scope="nat")
        names = {v.op.name for v in tf1.global_variables()}
        assert "adv/Variable" in names and "nat/Variable" in names
        ref_a = np.load(os.path.join(small_checkpoint("mnist"), "reference_logits.npz"))
        la, lb = sess.run([a.logits, b.logits], {x: ref_a["images"]})
        np.testing.assert_allclose(la, ref_a["logits"], atol=1e-4)
        assert not np.allclose(la, lb)


@pytest.mark.parametrize("dataset", ["mnist", "fashion"])
def test_restored_logits_match_reference_and_numpy(dataset, small_checkpoint):
    path = small_checkpoint(dataset)
    ref = np.load(os.path.join(path, "reference_logits.npz"))
    with tf.Graph().as_default(), models.new_session() as sess:
        model = models.load(sess, get_spec(dataset), path)
        logits = sess.run(model.logits, {model.x01: ref["images"]})
    np.testing.assert_allclose(logits, ref["logits"], atol=1e-4)
    weights = ckpt.read_variables(path, VARIABLE_NAMES)
    np.testing.assert_allclose(logits, numpy_forward(weights, ref["images"]), atol=1e-4)


def test_resolve_prefix_without_index_file_takes_newest_step(small_checkpoint, tmp_path):
    src = small_checkpoint("mnist")
    for name in os.listdir(src):
        if name.startswith("checkpoint-300"):
            shutil.copy(os.path.join(src, name), tmp_path / name)
            shutil.copy(os.path.join(src, name), tmp_path / name.replace("-300", "-20"))
    assert ckpt.resolve_prefix(tmp_path) == str(tmp_path / "checkpoint-300")
    assert ckpt.resolve_prefix(tmp_path / "checkpoint-20") == str(tmp_path / "checkpoint-20")


def _copy_checkpoint(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_checkpoint_errors(small_checkpoint, tmp_path):
    with pytest.raises(BsattackError, match="not found"):
        ckpt.resolve_prefix(tmp_path / "missing" / "dir")
    with pytest.raises(BsattackError, match="no checkpoint in"):
        ckpt.resolve_prefix(tmp_path)
    # a data file cut in half
    broken = _copy_checkpoint(small_checkpoint("mnist"), tmp_path / "truncated")
    data_file = broken / "checkpoint-300.data-00000-of-00001"
    data_file.write_bytes(data_file.read_bytes()[:1000])
    with tf.Graph().as_default(), models.new_session() as sess:
        with pytest.raises(BsattackError, match="checkpoint-300"):
            models.load(sess, get_spec("mnist"), str(broken))
    # the full-width model against the narrow checkpoint: shape mismatch
    with tf.Graph().as_default(), models.new_session() as sess:
        model = build_mnist()
        with pytest.raises(BsattackError, match="Variable.*shape"):
            ckpt.restore(sess, small_checkpoint("mnist"), model.variables)


def _rewrite_checkpoint(src, dst, change):
    """A copy of checkpoint ``src`` in ``dst`` whose variables went through ``change(dict)``."""
    values = ckpt.read_variables(src, list(ckpt.variable_shapes(src)))
    change(values)
    os.makedirs(dst)
    with tf.Graph().as_default(), tf1.Session() as sess:
        variables = {n: tf1.Variable(v, name=n.replace("/", "_")) for n, v in values.items()}
        sess.run(tf1.global_variables_initializer())
        tf1.train.Saver(var_list=variables).save(sess, os.path.join(dst, "checkpoint"),
                                                 global_step=300, write_meta_graph=False)
    return str(dst)


def _load_error(path):
    with tf.Graph().as_default(), models.new_session() as sess:
        with pytest.raises(BsattackError) as err:
            models.load(sess, get_spec("mnist"), str(path))
    assert "\n" not in str(err.value)
    return str(err.value)


def test_scalar_variable_is_named_not_an_indexerror(small_checkpoint, tmp_path):
    path = _rewrite_checkpoint(small_checkpoint("mnist"), tmp_path / "scalar",
                               lambda v: v.__setitem__("Variable_5", np.float32(1)))
    message = _load_error(path)
    assert "'Variable_5' has shape []" in message and "rank 1" in message


def test_float64_variable_message_is_complete(small_checkpoint, tmp_path):
    path = _rewrite_checkpoint(
        small_checkpoint("mnist"), tmp_path / "f64",
        lambda v: v.__setitem__("Variable_7", v["Variable_7"].astype(np.float64)))
    message = _load_error(path)
    assert "'Variable_7' is stored as float64, the model expects float32" in message


def test_damaged_files_keep_tensorflows_cause(small_checkpoint, tmp_path):
    truncated = _copy_checkpoint(small_checkpoint("mnist"), tmp_path / "truncated")
    data_file = truncated / "checkpoint-300.data-00000-of-00001"
    data_file.write_bytes(data_file.read_bytes()[:1000])
    message = _load_error(truncated)
    assert "OUT_OF_RANGE" in message and "Read less bytes than requested" in message
    foreign = _copy_checkpoint(small_checkpoint("mnist"), tmp_path / "foreign")
    shutil.copy(os.path.join(small_checkpoint("fashion"), "checkpoint-300.index"),
                foreign / "checkpoint-300.index")
    message = _load_error(foreign)
    assert "DATA_LOSS" in message and "Checksum does not match" in message


def test_index_naming_a_missing_step_is_refused(small_checkpoint, tmp_path):
    folder = _copy_checkpoint(small_checkpoint("mnist"), tmp_path / "ck")
    (folder / "checkpoint").write_text('model_checkpoint_path: "checkpoint-500"\n')
    with pytest.raises(BsattackError) as err:
        ckpt.resolve_prefix(folder)
    assert "names checkpoint-500, which is not in" in str(err.value)
    assert "checkpoint-300" in str(err.value)
    (folder / "checkpoint").write_text("this is { not a text proto")
    with pytest.raises(BsattackError, match="unreadable index file"):
        ckpt.resolve_prefix(folder)
