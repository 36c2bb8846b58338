"""bsattack.atomic: one file replaced whole, a staged set replaced together or not at all."""
import os

import pytest

from bsattack import atomic


def _write(path, text):
    atomic.write_atomic(str(path), lambda handle: handle.write(text), "w")


def _listing(folder):
    return sorted(os.listdir(folder))


def test_outside_a_staged_block_a_write_replaces_its_file_at_once(tmp_path):
    _write(tmp_path / "a.txt", "old")
    _write(tmp_path / "a.txt", "new")
    assert (tmp_path / "a.txt").read_text() == "new" and _listing(tmp_path) == ["a.txt"]


def test_a_staged_set_appears_only_when_the_block_ends(tmp_path):
    for name in ("a.json", "a.csv"):
        _write(tmp_path / name, "old " + name)
    with atomic.staged():
        _write(tmp_path / "a.json", "new a.json")
        _write(tmp_path / "a.csv", "new a.csv")
        _write(tmp_path / "a.png", "new a.png")
        # inside the block: the previous files unchanged, the new ones under temporary names
        assert (tmp_path / "a.json").read_text() == "old a.json"
        assert not (tmp_path / "a.png").exists() and len(_listing(tmp_path)) == 5
    assert _listing(tmp_path) == ["a.csv", "a.json", "a.png"]
    assert all((tmp_path / n).read_text() == "new " + n for n in _listing(tmp_path))


def test_an_error_in_the_block_keeps_the_previous_set_and_leaves_no_temporary_file(tmp_path):
    for name in ("a.json", "a.csv"):
        _write(tmp_path / name, "old " + name)

    def fail(handle):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        with atomic.staged():
            _write(tmp_path / "a.json", "new")
            _write(tmp_path / "a.csv", "new")
            atomic.write_atomic(str(tmp_path / "a.png"), fail, "w")
    assert _listing(tmp_path) == ["a.csv", "a.json"]
    assert [(tmp_path / n).read_text() for n in ("a.csv", "a.json")] == ["old a.csv",
                                                                      "old a.json"]


def test_a_block_inside_another_joins_the_outer_set(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic.staged():
            with atomic.staged():
                _write(tmp_path / "inner.txt", "x")
            assert not (tmp_path / "inner.txt").exists()
            raise RuntimeError("the outer block fails after the inner one ended")
    assert _listing(tmp_path) == []
