"""Every case of bench/reliability.py (hostile options, output locations, archives, crafted
files, damaged checkpoints, data folders and caches) through the command line: handled
cleanly and no data lost.  Slow (about a minute): run with -m slow."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "bench"))
import reliability  # noqa: E402


@pytest.fixture(autouse=True)
def small_extraction_limit(monkeypatch):
    monkeypatch.setattr(reliability.fetch, "MAX_EXTRACTED_BYTES", 1 << 20)
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
    clean, lost, what = reliability.run_case(item, str(box))
    assert not lost, what
    assert clean, what
