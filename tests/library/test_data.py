"""IDX loading: values, the Madry split, validation errors, directory resolution."""
import gzip
import os
import struct

import numpy as np
import pytest

from bsattack import data, paths
from bsattack.datasets import get_spec
from bsattack.errors import BsattackError


def _idx_bytes(array):
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_read_idx_plain_and_gzip_agree(tmp_path):
    array = np.random.RandomState(0).randint(0, 256, (7, 28, 28))
    (tmp_path / "a").write_bytes(_idx_bytes(array))
    (tmp_path / "a.gz").write_bytes(gzip.compress(_idx_bytes(array)))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a", 3), array)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a.gz", 3), array)


def test_read_idx_errors(tmp_path):
    labels = np.arange(10)
    (tmp_path / "wrong_magic").write_bytes(b"\x00\x00\x08\x03" + _idx_bytes(labels)[4:])
    with pytest.raises(BsattackError, match="wrong magic number"):
        data.read_idx(tmp_path / "wrong_magic", 1)
    (tmp_path / "short").write_bytes(_idx_bytes(labels)[:-3])
    with pytest.raises(BsattackError, match="truncated"):
        data.read_idx(tmp_path / "short", 1)
    (tmp_path / "cut.gz").write_bytes(gzip.compress(_idx_bytes(labels))[:-10])
    with pytest.raises(BsattackError, match="corrupt or truncated gzip"):
        data.read_idx(tmp_path / "cut.gz", 1)


def test_madry_split_and_scaling(fixture_data_dir):
    folder = os.path.join(fixture_data_dir, "mnist")
    raw_train = data.read_idx(os.path.join(folder, "train-images-idx3-ubyte.gz"), 3)
    raw_labels = data.read_idx(os.path.join(folder, "train-labels-idx1-ubyte.gz"), 1)
    split = data.load(get_spec("mnist"), fixture_data_dir, validation_size=100, download=False)
    assert split.train_x.shape == (1000, 784) and split.train_x.dtype == np.float32
    np.testing.assert_allclose(split.train_x[0] * 255, raw_train[100].reshape(-1), atol=1e-4)
    np.testing.assert_array_equal(split.train_y, raw_labels[100:])
    assert split.test_x.shape == (500, 784) and 0 <= split.test_x.min() and split.test_x.max() <= 1
    other = data.load(get_spec("mnist"), fixture_data_dir, validation_size=0, download=False)
    assert other.train_x.shape[0] == 1100 and other.fingerprint != split.fingerprint


def test_missing_data_names_places_and_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    with pytest.raises(BsattackError) as err:
        data.load(get_spec("mnist"), str(tmp_path / "nowhere"), download=False)
    message = str(err.value)
    assert "nowhere" in message and "fetch-data mnist" in message and "\n" not in message


def test_env_variable_and_folder_aliases(fixture_data_dir, monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv(data.DATA_ENV, fixture_data_dir)
    assert data.locate(get_spec("fashion")) == os.path.join(fixture_data_dir, "fashion")


def test_files_that_are_no_published_ones_are_noted_once(fixture_data_dir, tmp_path,
                                                         monkeypatch):
    """The fixtures are no published files: one note naming all four, once per process;
    files whose content is the published one pass silently."""
    from bsattack import file_digests, idx_data
    monkeypatch.setattr(paths, "CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(idx_data, "_NOTED", set())
    spec = get_spec("mnist")
    lines = []
    data.load(spec, fixture_data_dir, validation_size=100, download=False, echo=lines.append)
    data.load(spec, fixture_data_dir, validation_size=100, download=False, echo=lines.append)
    assert len(lines) == 1 and lines[0].startswith("note: 4 of mnist's files in ")
    assert all(f.name in lines[0] for f in spec.files.values())
    real = file_digests.digests
    published = {f.name: (f.sha256, f.raw_sha256) for f in spec.files.values()}

    def as_published(path, cache_dir=None):
        return published.get(os.path.basename(path)) or real(path, cache_dir)
    monkeypatch.setattr(file_digests, "digests", as_published)
    monkeypatch.setattr(idx_data, "_NOTED", set())
    lines.clear()
    data.load(spec, fixture_data_dir, validation_size=100, download=False, echo=lines.append)
    assert lines == []
