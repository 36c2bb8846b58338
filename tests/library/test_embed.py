"""Embedding cache: values equal the network's fc1 output, and stale caches are rebuilt."""
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from bsattack import models
from bsattack.datasets import get_spec
from bsattack.embed import Embeddings, group_name
from bsattack.errors import BsattackError
from bsattack.h5store import H5Store
from bsattack.shifts import BlindSpot
from madry_models import checkpoint as ckpt


@pytest.fixture
def mnist(small_checkpoint, small_split, tmp_path):
    messages = []

    def make(checkpoint=None):
        return Embeddings(get_spec("mnist"), checkpoint or small_checkpoint("mnist"),
                          small_split("mnist"), cache_dir=tmp_path, echo=messages.append)
    return make, messages


def test_embedding_times_last_layer_gives_reference_logits(mnist, small_checkpoint):
    make, _ = mnist
    emb = make().get("test")
    assert emb.shape == (500, 64) and emb.dtype == np.float32 and emb.min() >= 0   # ReLU
    weights = ckpt.read_variables(small_checkpoint("mnist"), ["Variable_6", "Variable_7"])
    ref = np.load(os.path.join(small_checkpoint("mnist"), "reference_logits.npz"))
    logits = emb[:20] @ weights["Variable_6"] + weights["Variable_7"]
    np.testing.assert_allclose(logits, ref["logits"], rtol=1e-4, atol=1e-4)


def test_transformed_split_is_the_network_on_scaled_images(mnist, small_checkpoint, small_split):
    make, _ = mnist
    got = make().get("test", BlindSpot(0.7, 0.1))
    scaled01 = 0.7 * (small_split("mnist").test_x.astype(np.float64) - 0.5) + 0.1 + 0.5
    graph = tf.Graph()
    with graph.as_default(), models.new_session(graph) as sess:
        model = models.load(sess, get_spec("mnist"), small_checkpoint("mnist"))
        want = sess.run(model.embedding, {model.x01: scaled01.astype(np.float32)})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert group_name("test", BlindSpot(0.7, 0.1)) == "test-alpha0.7-beta0.1"
    with pytest.raises(BsattackError, match="beta"):
        make().get("test", BlindSpot(0.9, 0.2))


def test_second_call_reads_the_cache(mnist, monkeypatch):
    make, messages = mnist
    first = make().get("train")
    monkeypatch.setattr(Embeddings, "_compute", lambda *a: pytest.fail("recomputed"))
    np.testing.assert_array_equal(make().get("train"), first)
    assert messages == []


def test_cache_of_another_checkpoint_is_rebuilt(mnist, small_checkpoint, small_split, tmp_path):
    make, messages = mnist
    mine, other = make(), make(small_checkpoint("fashion"))   # same architecture, other weights
    mine_values = mine.get("test")
    shutil.copyfile(mine.path, other.path)                    # e.g. a file renamed by hand
    got = make(small_checkpoint("fashion")).get("test")
    assert any("another checkpoint" in m for m in messages)
    fresh = Embeddings(get_spec("mnist"), small_checkpoint("fashion"), small_split("mnist"),
                       cache_dir=tmp_path / "fresh").get("test")
    np.testing.assert_array_equal(got, fresh)
    assert not np.array_equal(got, mine_values)


def test_truncated_file_is_rebuilt(mnist):
    make, messages = mnist
    first = make()
    want = first.get("test")
    with open(first.path, "r+b") as handle:
        handle.truncate(os.path.getsize(first.path) // 2)
    np.testing.assert_array_equal(make().get("test"), want)
    assert any("unreadable" in m for m in messages)


def test_group_of_the_wrong_shape_is_rebuilt(mnist):
    make, messages = mnist
    emb = make()
    want = emb.get("test")
    key = {"part": "test", "alpha": 1.0, "beta": 0.0, "n": 500}
    H5Store(emb.path, emb.file_key).put("test", {"embedding": want[:10]}, key)
    np.testing.assert_array_equal(make().get("test"), want)
    assert any("wrong shape" in m for m in messages)



def test_a_cache_made_at_another_batch_size_is_not_served(small_checkpoint, small_split,
                                                          tmp_path, monkeypatch):
    """Batched float32 convolutions round differently: the batch-1 embeddings are computed,
    not read from the batch-500 cache; the default batch's file name is the one it had."""
    spec, checkpoint, split = get_spec("mnist"), small_checkpoint("mnist"), small_split("mnist")
    default = Embeddings(spec, checkpoint, split, cache_dir=tmp_path)
    default.get("test")
    one = Embeddings(spec, checkpoint, split, cache_dir=tmp_path, batch_size=1)
    assert one.path != default.path and "batch_size" not in default.file_key
    computed = []
    real = Embeddings._compute
    monkeypatch.setattr(Embeddings, "_compute",
                        lambda self, *a: computed.append(self.batch_size) or real(self, *a))
    one.get("test")
    Embeddings(spec, checkpoint, split, cache_dir=tmp_path, batch_size=1).get("test")
    assert computed == [1]
