"""Every case of bench/reliability.py (hostile options, output locations, archives, crafted
files, damaged checkpoints, data folders and caches) through the command line: handled
cleanly and no data lost.  Slow (about a minute): run with -m slow."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "bench"))
import reliability  # noqa: E402

# `blindspot` (bsattack/commands/blindspot.py) still takes plain float/int options and writes
# --out after the attack; strict: these turn into failures once that is fixed, to be removed.
PENDING = {"blindspot --attack pgd --pgd-step-size nan", "blindspot --attack pgd --pgd-step-size inf",
           "blindspot --attack pgd --seed -1"} | {
    f"blindspot --out {w}" for w in ("/proc/nonexistent", "under a file", "name too long",
                                    "read-only (sysfs)")}


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
@pytest.mark.parametrize("item", [
    pytest.param(c, id=f"{c.category}: {c.name}",
                 marks=[pytest.mark.xfail(strict=True, reason="lead: blindspot options/--out")]
                 if c.name in PENDING else []) for c in reliability.CASES])
def test_case_is_handled_cleanly_and_loses_nothing(item, tmp_path):
    box = tmp_path / "box"
    box.mkdir()
    clean, lost, what = reliability.run_case(item, str(box))
    assert not lost, what
    assert clean, what
