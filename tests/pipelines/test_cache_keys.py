"""The batch size in cache keys: a run at another batch size than the default never reads
(nor overwrites) the default run's cached chunks, blind-spot or challenge attack, while every
key at the default batch size is the one it was before batch sizes entered keys."""
import dataclasses

import pytest

from bsattack import challenge_attack, experiment, paths
from bsattack.attacks.pgd import PGDSettings
from bsattack.attacks.worst import WorstSettings
from bsattack.datasets import get_spec
from bsattack.shifts import BlindSpot

QUIET = dict(echo=lambda *_: None)
PGD = PGDSettings(steps=3, step_size=0.01)


@pytest.fixture(scope="module")
def fashion(small_checkpoint, small_split):
    return small_checkpoint("fashion"), small_split("fashion")


def blindspot_file(fashion, settings):
    checkpoint, split = fashion
    key = experiment._file_key(get_spec("fashion"), checkpoint, split, 0.1, BlindSpot(0.9, 0.0),
                               settings, experiment.CHUNK_SIZE, "fp32")
    return paths.cache_file("C", "blindspot", f"fashion_{settings.name}", key)


def test_keys_at_the_default_batch_size_are_unchanged(fashion):
    # the names this run's caches had before the batch size entered keys (a cache made then
    # must stay valid)
    assert blindspot_file(fashion, PGD) == "C/blindspot/fashion_pgd_cb2a82f726cb2351.h5"
    assert challenge_attack.label(PGD) == "pgd-15d20afc5183"
    for settings in (PGD, WorstSettings()):        # a worst case and its members at 500
        assert experiment.batch_key(settings) == {}
        assert challenge_attack.group_key(settings) == settings.key()


def test_another_batch_size_has_its_own_keys(fashion):
    other = dataclasses.replace(PGD, batch_size=1)
    assert blindspot_file(fashion, other) != blindspot_file(fashion, PGD)
    assert challenge_attack.label(other) != challenge_attack.label(PGD)
    assert experiment.batch_key(other) == {"batch_size": 1}
    # a worst case is keyed by its members' batch sizes too
    worst = WorstSettings()
    mixed = dataclasses.replace(worst, full=(dataclasses.replace(worst.full[0], batch_size=7),
                                             *worst.full[1:]))
    assert experiment.batch_key(mixed) == {"batch_size": [500, 7] + [500] * (
        len(worst.members) - 1)}


def counting(monkeypatch, module, name):
    calls, real = [], getattr(module, name)

    def count(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(module, name, count)
    return calls


def test_blindspot_runs_at_two_batch_sizes_do_not_share_chunks(fashion, tmp_path, monkeypatch):
    checkpoint, split = fashion
    calls = counting(monkeypatch, experiment, "_run_chunk")

    def run(batch_size):
        return experiment.run_blindspot(
            get_spec("fashion"), checkpoint, BlindSpot(0.9, 0.0),
            dataclasses.replace(PGD, batch_size=batch_size), 20, split=split,
            cache_dir=str(tmp_path), chunk_size=10, **QUIET)
    run(500)
    assert len(calls) == 2
    run(1)                       # not served the batch-500 chunks
    assert len(calls) == 4
    run(500)
    run(1)                       # and neither run overwrote the other's
    assert len(calls) == 4
    assert len(list((tmp_path / "blindspot").glob("*.h5"))) == 2


def test_challenge_attacks_at_two_batch_sizes_do_not_share_chunks(fashion, tmp_path,
                                                                   monkeypatch):
    checkpoint, split = fashion
    calls = counting(monkeypatch, challenge_attack, "_attack_chunk")

    def run(batch_size):
        return challenge_attack.adversarial_examples(
            dataclasses.replace(PGD, batch_size=batch_size), get_spec("fashion"), checkpoint,
            split, 10, cache_dir=str(tmp_path), **QUIET)
    run(500)
    run(1)
    assert len(calls) == 2
    run(500)
    run(1)
    assert len(calls) == 2
