"""Every case of tests/support/hostile_cases.py (hostile options, output locations, archives,
crafted files, damaged checkpoints, data folders, caches, run-time conditions) through the
command line: its expectation met and no data lost.  Slow: run with -m slow."""
import os

import pytest

from bsattack import fetch
from support import ROOT
from support import hostile_cases as reliability


@pytest.fixture(autouse=True)
def small_extraction_limit(monkeypatch):
    monkeypatch.setattr(fetch, "MAX_EXTRACTED_BYTES", 1 << 20)
    # the fetch cases point the manifest at their own; restored after each case
    monkeypatch.setattr(reliability.manifest, "MANIFEST_PATH", reliability.manifest.MANIFEST_PATH)


@pytest.fixture(scope="module", autouse=True)
def served_files_removed():
    yield
    reliability.cleanup()


@pytest.mark.slow
@pytest.mark.parametrize("item", reliability.CASES,
                         ids=[f"{c.category}: {c.name}" for c in reliability.CASES])
def test_case_is_handled_cleanly_and_loses_nothing(item, tmp_path):
    box = tmp_path / "box"
    box.mkdir()
    outcome = reliability.run_case(item, str(box))
    assert not outcome.lost, outcome.what
    assert outcome.clean, outcome.what
    assert str(tmp_path) not in outcome.what and ROOT + os.sep not in outcome.what


def test_an_outcome_names_the_repositorys_files_by_their_path_in_it(tmp_path):
    """The page results/reliability.md holds no path of the machine that wrote it."""
    item = next(c for c in reliability.CASES
                if c.name.endswith("given Fashion-MNIST's published files"))
    box = tmp_path / "box"
    box.mkdir()
    outcome = reliability.run_case(item, str(box))
    assert outcome.clean, outcome.what
    assert outcome.what.startswith("Error: tests/fixtures/data/fashion/"), outcome.what
