"""H5Store: round trip, key mismatch, wrong shape, foreign and truncated files, checksums
(bit flips), missing datasets, cache paths that are folders or cannot be written."""
import os

import h5py
import numpy as np
import pytest

from bsattack.errors import BsattackError
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


def flip_byte(path, offset):
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))


def test_bit_flip_in_a_cached_array_is_detected_and_rebuilt(tmp_path):
    path = tmp_path / "c.h5"
    store = H5Store(path, {"ckpt": "abc"})
    a = np.linspace(0, 1, 1000, dtype=np.float32)
    store.put("chunk", {"linf": a, "ok": np.arange(5)}, key={"start": 0})
    with h5py.File(path, "r") as handle:
        offset = handle["chunk/linf"].id.get_offset()
    flip_byte(path, offset + 4 * 321 + 1)                 # one bit of linf[321]
    messages = []
    store = H5Store(path, {"ckpt": "abc"}, echo=messages.append)
    assert store.get("chunk", {"start": 0}) is None
    assert "fails its checksum in 'linf'" in messages[0] and "recomputing" in messages[0]
    store.put("chunk", {"linf": a, "ok": np.arange(5)}, key={"start": 0})   # the rebuild
    np.testing.assert_array_equal(store.get("chunk", {"start": 0})["linf"], a)


def test_group_missing_a_dataset_is_recomputed_not_a_keyerror(tmp_path):
    path = tmp_path / "c.h5"
    store = H5Store(path, {"ckpt": "abc"})
    store.put("chunk", {"linf": np.ones(3), "adversarial": np.zeros((3, 4))}, key={})
    with h5py.File(path, "a") as handle:
        del handle["chunk/adversarial"]
    messages = []
    assert H5Store(path, {"ckpt": "abc"}, echo=messages.append).get("chunk", {}) is None
    assert "lacks adversarial" in messages[0]


def test_group_written_before_checksums_is_still_read(tmp_path):
    path = tmp_path / "c.h5"
    H5Store(path, {"ckpt": "abc"}).put("old", {"a": np.arange(4)}, key={})
    with h5py.File(path, "a") as handle:                  # as the previous format wrote it
        del handle["old"].attrs["arrays"]
        del handle["old/a"].attrs["sha256"]
    np.testing.assert_array_equal(H5Store(path, {"ckpt": "abc"}).get("old", {})["a"],
                                  np.arange(4))


def test_cache_path_that_is_a_folder_is_one_line(tmp_path):
    (tmp_path / "c.h5").mkdir()
    with pytest.raises(BsattackError, match="is a folder"):
        H5Store(tmp_path / "c.h5", {})
    assert (tmp_path / "c.h5").is_dir()


def test_unwritable_cache_location_is_refused_before_work(tmp_path):
    (tmp_path / "file").write_text("x")
    for path in ("/proc/nonexistent/c.h5", tmp_path / "file" / "c.h5",
                 tmp_path / ("x" * 300) / "c.h5"):
        with pytest.raises(BsattackError, match="cannot write cache"):
            H5Store(path, {})


def test_corrupt_cache_that_cannot_be_removed_is_one_line(tmp_path, monkeypatch):
    """A read-only cache folder holding a damaged file (simulated: removing it fails)."""
    path = tmp_path / "c.h5"
    path.write_bytes(b"not hdf5")
    real_remove = os.remove

    def remove(p, *args, **kwargs):
        if os.fspath(p) == str(path):
            raise PermissionError(13, "Permission denied", str(p))
        return real_remove(p, *args, **kwargs)
    monkeypatch.setattr(os, "remove", remove)
    with pytest.raises(BsattackError, match="cannot be removed"):
        H5Store(path, {}, echo=lambda _: None)
    assert path.read_bytes() == b"not hdf5"
