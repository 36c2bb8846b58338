"""bsattack.pipelines.blindspot: a setting's files (JSON, CSV, PNG) replace the previous ones as
one set; when one cannot be written, the previous set stays whole."""
import errno
import json
import os

import matplotlib.figure
import pytest

from bsattack.attacks.pgd import PGDSettings
from bsattack.datasets import get_spec
from bsattack.errors import BsattackError
from bsattack.pipelines.blindspot import blindspot_setting
from support import FIXTURE_VALIDATION_SIZE

PGD = PGDSettings(steps=2, step_size=0.01, batch_size=20)


def _run(small_checkpoint, fixture_data_dir, out, header, cache_dir):
    return blindspot_setting(get_spec("fashion"), small_checkpoint("fashion"), 0.9, 0.05, PGD,
                             20, header, str(out), fixture_data_dir, FIXTURE_VALIDATION_SIZE,
                             cache_dir=str(cache_dir), echo=lambda *_: None)


def test_a_failed_figure_keeps_the_previous_records(small_checkpoint, fixture_data_dir,
                                                    tmp_path, monkeypatch):
    out, cache = tmp_path / "out", tmp_path / "cache"
    _, stem = _run(small_checkpoint, fixture_data_dir, out, ["first run"], cache)
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}
    assert sorted(before) == [os.path.basename(stem) + e for e in (".csv", ".json", ".png")]

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full_disk)
    with pytest.raises(BsattackError, match=r"cannot write .*\.png: No space left on device"):
        _run(small_checkpoint, fixture_data_dir, out, ["second run"], cache)
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before
    assert json.loads((out / (os.path.basename(stem) + ".json")).read_text())["header"] == [
        "first run"]

    monkeypatch.undo()
    _run(small_checkpoint, fixture_data_dir, out, ["third run"], cache)
    assert sorted(os.listdir(out)) == sorted(before)
    assert json.loads((out / (os.path.basename(stem) + ".json")).read_text())["header"] == [
        "third run"]
