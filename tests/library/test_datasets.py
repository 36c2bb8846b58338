"""The data-set registry and the paths module: every entry is complete and self-consistent,
and cache files are named by their key alone."""
import hashlib
import json
import os

import pytest

from bsattack import datasets, paths
from bsattack.errors import BsattackError
from bsattack.shifts import BlindSpot


@pytest.mark.parametrize("name", sorted(datasets.DATASETS))
def test_every_entry_is_complete_and_consistent(name):
    spec = datasets.get_spec(name)
    assert spec.name == name
    for function in ("load", "fetch", "locate"):
        assert callable(getattr(spec.reader, function))
    assert callable(spec.build)
    # the challenge's ε in file units is the paper's ε in [-0.5, 0.5] units times the range
    assert spec.challenge.eps == pytest.approx(spec.eps * spec.challenge.high)
    assert spec.pixel_scale == spec.challenge.high
    size = 1
    for d in spec.input_shape:
        size *= d
    assert size == spec.dim
    BlindSpot(*spec.paper.shown)            # a valid transform
    assert all(f.sha256 and len(f.sha256) == 64 for f in spec.files.values())


def test_paper_facts_match_the_paper_tables_file():
    with open(os.path.join(paths.PROJECT_ROOT, "bsattack", "report", "paper_tables.json")) as f:
        tables = json.load(f)
    assert set(datasets.PAPER_TABLE_DATASETS) == {k for k in tables if not k.startswith("_")}
    for name in datasets.PAPER_TABLE_DATASETS:
        spec = datasets.get_spec(name)
        assert tables[name]["table"] == spec.paper.table
        assert tables[name]["eps"] == pytest.approx(spec.eps)
        first = tables[name]["rows"][0]          # α = 1: the Table 1 success and accuracy
        assert (first["success_eps"], first["accuracy"]) == spec.paper.table1[1:]


def test_unknown_dataset_is_one_line():
    with pytest.raises(BsattackError, match="unknown dataset 'svhn'"):
        datasets.get_spec("svhn")


def test_cache_file_is_named_by_the_digest_of_its_key(tmp_path):
    key = {"b": [1, 2], "a": 0.5, "nested": {"y": 1, "x": 2}}
    same_key_other_order = {"nested": {"x": 2, "y": 1}, "a": 0.5, "b": [1, 2]}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = paths.cache_file(str(tmp_path), "embed", "mnist", key)
    assert path == os.path.join(str(tmp_path), "embed", f"mnist_{digest}.h5")
    assert paths.cache_file(str(tmp_path), "embed", "mnist", same_key_other_order) == path
    assert paths.cache_file(str(tmp_path), "embed", "mnist", {**key, "a": 0.25}) != path
    assert paths.cache_file(None, "x", "s", key).startswith(paths.CACHE_DIR + os.sep)
