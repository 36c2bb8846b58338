"""A cache that cannot be written is refused before any attack, in one line naming the cache
and --cache-dir (it used to fail at the first write, after the attack, its results lost):
its lock is not a file, the file is immutable, its device has no room for the copy a write
makes, its folder cannot take a file; a worst case's cache before its members run; and a
cache only read from is not refused."""
import os
import subprocess

import pytest
from click.testing import CliRunner

from bsattack import challenge_attack, experiment, h5store
from bsattack.attacks.pgd import PGDSettings
from bsattack.attacks.worst import WorstSettings
from bsattack.datasets import get_spec
from bsattack.errors import BsattackError
from bsattack.shifts import BlindSpot
from cli import main
from support import FIXTURES

QUIET = dict(echo=lambda *_: None)
PGD = PGDSettings(steps=2, step_size=0.01)


@pytest.fixture(scope="module")
def fashion(small_checkpoint, small_split):
    return small_checkpoint("fashion"), small_split("fashion")


@pytest.fixture
def attacks(monkeypatch):
    """The chunks attacked (blind-spot and challenge), counted."""
    calls = []
    for module, name in ((experiment, "_run_chunk"), (challenge_attack, "_attack_chunk")):
        real = getattr(module, name)

        def count(*args, real=real, **kwargs):
            calls.append(1)
            return real(*args, **kwargs)
        monkeypatch.setattr(module, name, count)
    return calls


def blindspot(fashion, cache, n=10, settings=PGD):
    checkpoint, split = fashion
    return experiment.run_blindspot(get_spec("fashion"), checkpoint, BlindSpot(0.9, 0.0),
                                    settings, n, split=split, cache_dir=str(cache), chunk_size=10,
                                    **QUIET)


def only_file(folder):
    (path,) = [p for p in folder.glob("*.h5")]
    return path


def lock_is_a_folder(path):
    os.remove(str(path) + ".lock")
    os.mkdir(str(path) + ".lock")


def chattr(flag, path):
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"chattr {flag} is not available here")


def test_a_lock_that_is_a_folder_is_refused_before_the_attack(fashion, tmp_path, attacks):
    blindspot(fashion, tmp_path)
    lock_is_a_folder(only_file(tmp_path / "blindspot"))
    before = len(attacks)
    with pytest.raises(BsattackError, match=r"cannot write cache .*lock.*--cache-dir"):
        blindspot(fashion, tmp_path, n=20)                   # one chunk to attack
    assert len(attacks) == before


def test_a_cache_only_read_from_is_not_refused(fashion, tmp_path, attacks):
    first = blindspot(fashion, tmp_path)
    lock_is_a_folder(only_file(tmp_path / "blindspot"))
    again = blindspot(fashion, tmp_path)                     # everything cached: no write
    assert again.records() == first.records() and len(attacks) == 1


def test_an_immutable_cache_file_is_refused_before_the_attack(fashion, tmp_path, attacks):
    blindspot(fashion, tmp_path)
    path = only_file(tmp_path / "blindspot")
    chattr("+i", path)
    try:
        with pytest.raises(BsattackError, match=r"immutable.*--cache-dir"):
            blindspot(fashion, tmp_path, n=20)
        assert len(attacks) == 1
    finally:
        chattr("-i", path)


def test_no_room_for_the_copy_is_refused_before_the_attack(fashion, tmp_path, attacks,
                                                           monkeypatch):
    blindspot(fashion, tmp_path)
    real = os.statvfs

    class Full:
        def __init__(self, path):
            self.f_frsize, self.f_bavail = real(path).f_frsize, 1
    monkeypatch.setattr(h5store.os, "statvfs", Full)
    with pytest.raises(BsattackError, match=r"cannot write cache .* free .*--cache-dir"):
        blindspot(fashion, tmp_path, n=20)
    assert len(attacks) == 1


def test_a_full_disk_at_opening_names_the_cache_and_the_option(fashion, tmp_path, attacks,
                                                               full_disk_probe):
    with pytest.raises(BsattackError, match=r"cannot write cache .*no space left.*--cache-dir"):
        blindspot(fashion, tmp_path)
    assert attacks == []


def test_a_worst_cases_cache_is_checked_before_its_members_run(fashion, tmp_path, attacks):
    worst = WorstSettings(full=(PGD,), cascade=())
    blindspot(fashion, tmp_path, settings=worst)
    assert len(attacks) == 2                                 # the member, then the worst case
    path = next(p for p in (tmp_path / "blindspot").glob("fashion_worst_*.h5"))
    lock_is_a_folder(path)
    with pytest.raises(BsattackError, match="--cache-dir"):
        blindspot(fashion, tmp_path, n=20, settings=worst)
    assert len(attacks) == 2                                 # not even the member ran


def test_a_challenge_attack_cache_is_checked_before_the_attack(fashion, tmp_path, attacks):
    checkpoint, split = fashion

    def run(n):
        return challenge_attack.adversarial_examples(PGD, get_spec("fashion"), checkpoint, split, n,
                                                     cache_dir=str(tmp_path), **QUIET)
    run(10)
    lock_is_a_folder(only_file(tmp_path / "attacks"))
    run(10)                                                  # read only: served
    with pytest.raises(BsattackError, match=r"lock.*--cache-dir"):
        run(20)                                              # a new chunk
    assert len(attacks) == 1


def test_the_command_refuses_in_one_line(fashion, tmp_path, attacks):
    checkpoint, _ = fashion
    args = ["blindspot", "--dataset", "fashion", "--checkpoint", checkpoint, "--attack", "pgd",
            "--pgd-steps", "2", "--data-dir", os.path.join(FIXTURES, "data"),
            "--validation-size", "100", "--cache-dir", str(tmp_path / "cache"),
            "--out", str(tmp_path / "out")]
    assert CliRunner().invoke(main, args + ["--n", "10"]).exit_code == 0
    lock_is_a_folder(only_file(tmp_path / "cache" / "blindspot"))
    result = CliRunner().invoke(main, args + ["--n", "20"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert lines[-1].startswith("Error: cannot write cache") and "--cache-dir" in lines[-1]
    assert "Traceback" not in result.output
