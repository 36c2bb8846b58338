"""The attack contract of bsattack/attacks/base.py, checked on every registered attack."""
import ast
import dataclasses
import inspect
import os

import pytest

from bsattack.attacks import registry
from bsattack.attacks.base import STREAMS, Settings
from support import ROOT


@pytest.mark.parametrize("entry", registry.ENTRIES, ids=lambda e: e.name)
def test_every_attack_declares_what_callers_read(entry):
    settings = entry.settings()
    fields = {f.name for f in dataclasses.fields(settings)}
    assert isinstance(settings, Settings) and settings.name == entry.name
    assert {"batch_size", "seed"} <= fields                # the commands replace both
    assert isinstance(settings.restarts, int) and settings.restarts >= 1
    assert isinstance(settings.version, int) and settings.version >= 1
    line = settings.describe()
    assert isinstance(line, str) and line and "\n" not in line
    key = settings.key()
    assert key["attack"] == entry.name and "batch_size" not in key
    assert dataclasses.replace(settings, batch_size=7).key() == key
    assert settings.members and all(isinstance(m, Settings) for m in settings.members)


@pytest.mark.parametrize("entry", registry.ENTRIES, ids=lambda e: e.name)
def test_every_run_takes_known(entry):
    parameters = inspect.signature(entry.attack.run).parameters
    assert list(parameters)[1:5] == ["x", "labels", "thresholds", "ids"]
    assert parameters["ids"].default is None and parameters["known"].default is None


def test_settings_without_describe_are_refused_by_name():
    @dataclasses.dataclass
    class Bare(Settings):
        name = "bare"
        batch_size: int = 1
        seed: int = 0

    with pytest.raises(NotImplementedError, match="Bare defines no describe"):
        Bare().describe()


def test_random_streams_are_distinct_and_assigned_only_in_base():
    assert len(set(STREAMS.values())) == len(STREAMS)
    assert set(STREAMS) <= set(registry.ATTACKS)
    folder = os.path.join(ROOT, "bsattack", "attacks")
    constants = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py") or name == "base.py":
            continue
        with open(os.path.join(folder, name)) as handle:
            tree = ast.parse(handle.read())
        constants += [(name, target.id) for node in tree.body if isinstance(node, ast.Assign)
                      for target in node.targets if isinstance(target, ast.Name)
                      and "STREAM" in target.id]
    assert constants == []
