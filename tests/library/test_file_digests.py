"""The data files' SHA-256 pair, computed once per version of a file and kept in the cache."""
import gzip
import hashlib
import json
import os

import pytest

from bsattack import file_digests, paths


@pytest.fixture
def counted(monkeypatch):
    """file_digests.compute, counting its calls."""
    calls = []
    real = file_digests.compute

    def compute(path):
        calls.append(path)
        return real(path)
    monkeypatch.setattr(file_digests, "compute", compute)
    return calls


def test_the_pair_is_the_files_and_its_contents_sha256(tmp_path):
    content = os.urandom(5000)
    packed = tmp_path / "a.gz"
    packed.write_bytes(gzip.compress(content))
    plain = tmp_path / "b"
    plain.write_bytes(content)
    cache = tmp_path / "cache"
    assert file_digests.digests(packed, cache) == (
        hashlib.sha256(packed.read_bytes()).hexdigest(), hashlib.sha256(content).hexdigest())
    assert file_digests.digests(plain, cache) == (hashlib.sha256(content).hexdigest(), None)


def test_a_file_is_hashed_once_until_it_changes(tmp_path, counted):
    path = tmp_path / "a.gz"
    path.write_bytes(gzip.compress(b"one"))
    cache = tmp_path / "cache"
    first = file_digests.digests(path, cache)
    assert file_digests.digests(path, cache) == first and len(counted) == 1
    path.write_bytes(gzip.compress(b"two"))             # same size, new content and time
    stamp = os.stat(path)
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
    second = file_digests.digests(path, cache)
    assert len(counted) == 2 and second != first
    assert second[1] == hashlib.sha256(b"two").hexdigest()


def test_an_unwritable_or_damaged_store_costs_only_a_recomputation(tmp_path, counted):
    path = tmp_path / "a"
    path.write_bytes(b"x")
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert file_digests.digests(path, blocked)[0] == hashlib.sha256(b"x").hexdigest()
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / file_digests.STORE_NAME).write_text("{damaged")
    assert file_digests.digests(path, cache)[0] == hashlib.sha256(b"x").hexdigest()
    assert len(counted) == 2
    assert json.loads((cache / file_digests.STORE_NAME).read_text())   # rewritten whole


def test_entries_of_removed_files_are_dropped(tmp_path):
    cache = tmp_path / "cache"
    gone, kept = tmp_path / "gone", tmp_path / "kept"
    gone.write_bytes(b"1")
    kept.write_bytes(b"2")
    file_digests.digests(gone, cache)
    gone.unlink()
    file_digests.digests(kept, cache)
    stored = json.loads((cache / file_digests.STORE_NAME).read_text())
    assert list(stored) == [os.path.realpath(kept)]


def test_loading_a_data_set_again_hashes_nothing(fixture_data_dir, tmp_path, monkeypatch,
                                                  counted):
    from bsattack import data
    from bsattack.datasets import get_spec
    monkeypatch.setattr(paths, "CACHE_DIR", str(tmp_path))
    data.load(get_spec("mnist"), fixture_data_dir, validation_size=100, download=False)
    assert len(counted) == len(get_spec("mnist").files)
    data.load(get_spec("mnist"), fixture_data_dir, validation_size=100, download=False)
    assert len(counted) == len(get_spec("mnist").files)
