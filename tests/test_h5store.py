"""H5Store: round trip, key mismatch, wrong shape, foreign and truncated files."""
import numpy as np

from bsattack.h5store import H5Store


def test_round_trip_and_key_checks(tmp_path):
    messages = []
    store = H5Store(tmp_path / "c.h5", {"ckpt": "abc"}, echo=messages.append)
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    store.put("test/alpha=0.9", {"a": a, "b": np.array([1, 2])}, key={"alpha": 0.9})
    got = store.get("test/alpha=0.9", {"alpha": 0.9}, shapes={"a": (3, 4)})
    np.testing.assert_array_equal(got["a"], a)
    assert store.get("test/alpha=0.9", {"alpha": 0.8}) is None
    assert store.get("test/alpha=0.9", {"alpha": 0.9}, shapes={"a": (4, 3)}) is None
    assert store.names("test") == ["test/alpha=0.9"]
    assert len(messages) == 2


def test_foreign_and_truncated_files_are_discarded(tmp_path):
    path = tmp_path / "c.h5"
    H5Store(path, {"ckpt": "abc"}).put("x", {"a": np.ones(3)}, key={})
    messages = []
    assert H5Store(path, {"ckpt": "other"}, echo=messages.append).get("x", {}) is None
    assert "another checkpoint" in messages[0]
    H5Store(path, {"ckpt": "abc"}).put("x", {"a": np.ones(3)}, key={})
    path.write_bytes(path.read_bytes()[:100])
    messages = []
    assert H5Store(path, {"ckpt": "abc"}, echo=messages.append).get("x", {}) is None
    assert "unreadable" in messages[0]
