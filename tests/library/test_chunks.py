"""The chunk-and-cache engine on a real H5Store and a fake executor: the ranges, cached
chunks not recomputed, missing ones computed once and stored, the merge in order (whatever
order the chunks arrive in), the writable check before any job when a chunk is missing and
not otherwise, several runs in one job list, progress over every image."""
import numpy as np
import pytest

from bsattack import chunks
from bsattack.errors import BsattackError
from bsattack.h5store import H5Store
from bsattack.parallel import Job

QUIET = dict(echo=lambda *_: None)


def square(model, payload):
    """A chunk's arrays: the squares of its test indices, and one count per image."""
    ids = payload["ids"]
    return {"value": ids.astype(np.float64) ** 2, "count": np.ones(len(ids), np.int64)}


class Backwards:
    """An executor that takes every job first, then returns the results last to first."""

    def __init__(self, log):
        self.log = log

    def run(self, jobs, on_done):
        jobs = list(jobs)
        self.log.extend(("job", int(job.payload["ids"][0])) for job in jobs)
        for index in reversed(range(len(jobs))):
            on_done(index, jobs[index].fn(None, jobs[index].payload), 0.5)


class Spy(H5Store):
    """An H5Store logging its writable checks and writes."""

    def __init__(self, path, log):
        super().__init__(path, {"test": 1}, **QUIET)
        self.log = log

    def check_writable(self):
        self.log.append(("check",))
        super().check_writable()

    def put(self, name, arrays, key):
        self.log.append(("put", name))
        super().put(name, arrays, key)


def job(start, stop):
    return Job("none", "none", square, {"ids": np.arange(start, stop)})


def open_chunks(store, n, size=4, tag="sq", done=None):
    return chunks.Chunks(store, n, size, lambda start, stop: f"{tag}/{start}-{stop}",
                         lambda start, stop: {"tag": tag, "start": start, "stop": stop},
                         lambda start, stop: {"value": (stop - start,)}, job, done)


def test_ranges_cover_the_first_n_images():
    assert chunks.ranges(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert chunks.ranges(8, 4) == [(0, 4), (4, 8)]
    assert chunks.ranges(3, chunks.CHUNK_SIZE) == [(0, 3)]


def test_missing_chunks_are_computed_once_stored_and_merged_in_order(tmp_path):
    log, seen = [], []
    store = Spy(tmp_path / "c.h5", log)
    first = open_chunks(store, 8)
    assert first.missing == [(0, 4), (4, 8)] and first.cached_images == 0
    chunks.run([first], Backwards(log))
    assert log == [("check",), ("job", 0), ("job", 4), ("put", "sq/4-8"), ("put", "sq/0-4")]
    np.testing.assert_array_equal(first.merged()["value"], np.arange(8.0) ** 2)

    log.clear()
    grown = open_chunks(store, 10, done=lambda *args: seen.append(args[:2] + args[3:]))
    assert grown.missing == [(8, 10)] and (grown.cached_images, grown.missing_images) == (8, 2)
    counted = []
    chunks.run([grown], Backwards(log), counted.append)
    assert log == [("check",), ("job", 8), ("put", "sq/8-10")]    # only the new chunk
    assert seen == [(8, 10, 0.5)] and counted == [2]
    assert grown.complete
    merged = grown.merged()
    np.testing.assert_array_equal(merged["value"], np.arange(10.0) ** 2)
    assert merged["count"].dtype == np.int64 and merged["count"].sum() == 10


def test_nothing_missing_checks_and_runs_nothing(tmp_path):
    log = []
    store = Spy(tmp_path / "c.h5", log)
    chunks.run([open_chunks(store, 8)], Backwards(log))
    log.clear()
    again = open_chunks(store, 8)
    chunks.run([again], Backwards(log))
    assert log == [] and again.missing == [] and again.complete
    np.testing.assert_array_equal(again.merged()["value"], np.arange(8.0) ** 2)


def test_an_unwritable_store_is_refused_before_any_job(tmp_path):
    log = []
    store = Spy(tmp_path / "c.h5", log)
    chunks.run([open_chunks(store, 4)], Backwards(log))
    (tmp_path / "c.h5.lock").unlink()
    (tmp_path / "c.h5.lock").mkdir()                 # the lock cannot be opened
    log.clear()
    assert open_chunks(store, 4).complete            # read only: served
    with pytest.raises(BsattackError, match="--cache-dir"):
        open_chunks(store, 8)
    assert log == [("check",)]                       # refused at the check: no job, no put


def test_a_chunk_of_the_wrong_shape_is_recomputed(tmp_path):
    log = []
    store = Spy(tmp_path / "c.h5", log)
    store.put("sq/0-4", {"value": np.zeros(3)}, {"tag": "sq", "start": 0, "stop": 4})
    again = open_chunks(store, 4)
    assert again.missing == [(0, 4)]
    chunks.run([again], Backwards(log))
    np.testing.assert_array_equal(again.merged()["value"], np.arange(4.0) ** 2)


def test_several_runs_share_one_job_list_and_progress_counts_every_image(tmp_path):
    log, counted = [], []
    store = Spy(tmp_path / "c.h5", log)
    chunks.run([open_chunks(store, 4, tag="a")], Backwards(log))
    runs = [open_chunks(store, 10, tag="a"), open_chunks(store, 6, tag="b")]
    log.clear()
    chunks.run(runs, Backwards(log), counted.append)
    assert [entry for entry in log if entry[0] == "job"] == [("job", 4), ("job", 8),
                                                             ("job", 0), ("job", 4)]
    assert sum(counted) + sum(r.cached_images for r in runs) == 16
    assert all(r.complete for r in runs)
    np.testing.assert_array_equal(runs[1].merged()["value"], np.arange(6.0) ** 2)


def test_without_a_store_everything_is_computed():
    log = []
    run = open_chunks(None, 6)
    chunks.run([run], Backwards(log))
    assert log == [("job", 0), ("job", 4)]
    np.testing.assert_array_equal(run.merged()["value"], np.arange(6.0) ** 2)


def test_an_array_a_chunk_lacks_is_filled(tmp_path):
    store = H5Store(tmp_path / "c.h5", {"test": 1}, **QUIET)
    store.put("sq/0-4", {"value": np.arange(4.0) ** 2}, {"tag": "sq", "start": 0, "stop": 4})
    run = open_chunks(store, 8)
    chunks.run([run], Backwards([]))
    merged = run.merged({"count": -1, "extra": 0})
    np.testing.assert_array_equal(merged["count"], [-1] * 4 + [1] * 4)
    np.testing.assert_array_equal(merged["extra"], np.zeros(8))


def test_each_chunks_compute_time_is_stored_and_read_back_from_the_cache(tmp_path):
    """Backwards reports 0.5 s per chunk: each image holds its share, in the store too, so a
    run served from the cache still knows what its chunks cost; a chunk stored before times
    were recorded gives NaN (unknown), not 0."""
    store = H5Store(tmp_path / "c.h5", {"test": 1}, **QUIET)
    computed = open_chunks(store, 10)
    chunks.run([computed], Backwards([]))
    seconds = computed.merged()[chunks.COMPUTE_SECONDS]
    np.testing.assert_allclose(seconds, [0.125] * 8 + [0.25] * 2)
    cached = open_chunks(store, 10)
    assert cached.missing == []
    np.testing.assert_array_equal(cached.merged()[chunks.COMPUTE_SECONDS], seconds)
    assert np.sum(seconds) == pytest.approx(1.5)

    old = H5Store(tmp_path / "old.h5", {"test": 1}, **QUIET)
    old.put("sq/0-4", {"value": np.arange(4.0) ** 2}, {"tag": "sq", "start": 0, "stop": 4})
    mixed = open_chunks(old, 8)
    chunks.run([mixed], Backwards([]))
    np.testing.assert_array_equal(mixed.merged({"count": -1})[chunks.COMPUTE_SECONDS],
                                  [np.nan] * 4 + [0.125] * 4)
