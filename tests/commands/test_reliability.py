"""Reliability of the shared pieces: float and seed option types (property-based), output
locations checked before work, atomic and strict-JSON writers, a data folder missing a file,
non-finite options of the analysis commands refused at parse time."""
import json
import math
import os
import shutil

import click
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

import cli
from bsattack import data, outputs
from bsattack.errors import BsattackError
from bsattack.commands.options import SEED, SEED_MAX, FiniteFloat
from bsattack.datasets import get_spec


# --- option types ------------------------------------------------------------------------------
def reference_accepts(text, low, high, low_open):
    """What a finite float option with bounds [low, high] (low open or not) must accept."""
    try:
        value = float(text)
    except ValueError:
        return False
    if not math.isfinite(value):
        return False
    if low is not None and (value <= low if low_open else value < low):
        return False
    return high is None or value <= high


NUMBER_TEXT = (st.floats(allow_nan=True, allow_infinity=True).map(repr)
               | st.sampled_from(["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e999",
                                  "-1e999", "0", "-0.0", "1e-320", "abc", "", "0x10", " 1 "]))


@settings(max_examples=300, deadline=None)
@given(text=NUMBER_TEXT, low=st.none() | st.floats(-10, 10), high=st.none() | st.floats(10, 20),
       low_open=st.booleans())
def test_finite_float_accepts_exactly_the_finite_numbers_in_range(text, low, high, low_open):
    option = FiniteFloat(min=low, max=high, min_open=low_open)
    if reference_accepts(text, low, high, low_open):
        assert option.convert(text, None, None) == float(text)
    else:
        with pytest.raises(click.BadParameter):
            option.convert(text, None, None)


@settings(max_examples=200, deadline=None)
@given(value=st.integers(-2**70, 2**70) | st.sampled_from([-1, 0, SEED_MAX, SEED_MAX + 1]))
def test_seed_accepts_exactly_what_numpy_accepts(value):
    try:
        np.random.RandomState(value)
        numpy_ok = True
    except ValueError:
        numpy_ok = False
    if numpy_ok:
        assert SEED.convert(str(value), None, None) == value
    else:
        with pytest.raises(click.BadParameter):
            SEED.convert(str(value), None, None)


@pytest.mark.parametrize("args", [
    ["blindspot-histogram", "--alpha", "nan"],
    ["blindspot-histogram", "--beta", "inf"],
    ["distance", "--p", "nan"],
    ["kl", "--perplexity", "nan"],
    ["kl", "--tsne-seed", "-1"],
    ["blindspot-map", "--alpha-min", "nan"],
    ["blindspot-map", "--alphas", "0.6,nan,1"],
    ["train", "--eps", "nan", "--out", "x"],
    ["evaluate", "--attack-file", __file__, "--n", "nan"],
    ["attack", "--seed", "-1"],
    ["leaderboard", "--seed", str(2**32)],
])
def test_non_finite_and_out_of_range_options_fail_at_parse_time(args, tmp_path):
    """Exit 2 with Click's usage error, before any data or checkpoint is touched."""
    result = CliRunner().invoke(cli.main, args + ["--data-dir", str(tmp_path / "none")])
    assert result.exit_code == 2 and result.exception.__class__ is SystemExit, result.output
    assert "Invalid value for" in result.output


# --- output locations and writers ----------------------------------------------------------------
def bad_locations(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "dir.npy").mkdir()
    return {"proc": "/proc/nonexistent/out.npy", "under a file": str(tmp_path / "file" / "o.npy"),
            "name too long": str(tmp_path / ("n" * 300 + ".npy")),
            "path too long": str(tmp_path / "/".join(["d" * 200] * 25) / "o.npy")}


def test_unwritable_locations_are_one_line(tmp_path):
    for what, path in bad_locations(tmp_path).items():
        for check in (outputs.check_writable_file, outputs.check_writable_dir):
            with pytest.raises(BsattackError) as err:
                check(path)
            assert "\n" not in str(err.value) and len(str(err.value)) < 400, what
    with pytest.raises(BsattackError, match="is a folder, expected a file"):
        outputs.check_writable_file(tmp_path / "dir.npy")
    with pytest.raises(BsattackError, match="is a file, not a folder"):
        outputs.check_writable_dir(tmp_path / "file")
    outputs.check_writable_file(tmp_path / "new" / "deep" / "o.npy")     # creatable: fine
    outputs.check_writable_dir(tmp_path / "new" / "deep")
    assert sorted(os.listdir(tmp_path)) == ["dir.npy", "file"]           # nothing created


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(BsattackError, match="not writable"):
            outputs.check_writable_file(folder / "o.npy")
    finally:
        folder.chmod(0o700)


def test_writers_are_atomic_and_json_is_strict(tmp_path):
    path = tmp_path / "log.json"
    outputs.save_json(path, {"a": float("nan"), "b": [1.0, float("inf"), np.float64("-inf")],
                             "c": {"d": 0.5}})
    assert json.loads(path.read_text(), parse_constant=pytest.fail) == \
        {"a": None, "b": [1.0, None, None], "c": {"d": 0.5}}
    table = tmp_path / "t.csv"
    table.write_text("previous\n")
    with pytest.raises(RuntimeError):
        with outputs.atomic_text(table) as handle:
            handle.write("half a ta")
            raise RuntimeError("disk full")
    assert table.read_text() == "previous\n"
    with pytest.raises(BsattackError, match="cannot write /proc/nonexistent/p.npy"):
        outputs.save_npy("/proc/nonexistent/p.npy", np.arange(3))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig = plt.figure()
    outputs.save_figure(fig, tmp_path / "f.png")
    plt.close(fig)
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path)) == ["f.png", "log.json", "t.csv"]


# --- data folder ---------------------------------------------------------------------------------
def test_data_folder_missing_one_file_names_it_and_downloads_nothing(fixture_data_dir, tmp_path,
                                                                    monkeypatch):
    from bsattack import fetch, paths
    folder = tmp_path / "mnist"
    shutil.copytree(os.path.join(fixture_data_dir, "mnist"), folder)
    os.remove(folder / "t10k-labels-idx1-ubyte.gz")
    monkeypatch.setattr(paths, "DATA_DIR", str(tmp_path / "project"))
    monkeypatch.setattr(fetch, "download_file",
                        lambda *a, **k: pytest.fail("tried to download with --data-dir given"))
    for given_dir in (tmp_path, folder):
        with pytest.raises(BsattackError) as err:
            data.load(get_spec("mnist"), str(given_dir), echo=lambda *_: None)
        message = str(err.value)
        assert "missing t10k-labels-idx1-ubyte.gz" in message and str(folder) in message
        assert "3 of 4 files present" in message and "\n" not in message
    with pytest.raises(BsattackError, match="none of train-images"):
        data.load(get_spec("mnist"), str(tmp_path / "empty"), echo=lambda *_: None)
    assert not (tmp_path / "project").exists()
