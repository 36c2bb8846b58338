"""The Ray backend (--workers): the same files and cached records as one process, also when
a worker is killed mid-run; the executors' contract against each other."""
import json
import os
import signal

import numpy as np
import pytest
from click.testing import CliRunner

from bsattack import experiment, parallel
from bsattack.attacks.pgd import PGDSettings
from bsattack.datasets import get_spec
from bsattack.parallel import LocalExecutor, RayExecutor, make_executor
from support import ROOT
from bsattack.shifts import BlindSpot
from cli import main

ray = pytest.importorskip("ray")


def body(path):
    """A result file without its header lines (CSV '#' lines, Markdown '<!-- -->' lines: the
    command line and the date differ)."""
    with open(path) as handle:
        return [line for line in handle.read().splitlines()
                if not line.startswith(("#", "<!--"))]


@pytest.mark.parametrize("where", ["fixtures", pytest.param("shared", marks=pytest.mark.slow)])
def test_tables_on_two_workers_equal_one_process(where, small_checkpoint, fixture_data_dir,
                                                  tmp_path, request):
    """`tables --dataset fashion --attack pgd --n 300` with --workers 2 writes the files a
    single-process run does (on the fixtures, and with -m slow on ../shared's fashion_adv)."""
    if where == "shared":
        shared = request.getfixturevalue("shared_dir")
        place = ["--checkpoint", os.path.join(shared, "checkpoints", "fashion_adv"),
                 "--data-dir", os.path.join(shared, "data")]
    else:
        place = ["--checkpoint", small_checkpoint("fashion"), "--data-dir", fixture_data_dir,
                 "--validation-size", "100"]
    common = ["tables", "--dataset", "fashion", "--attack", "pgd", "--n", "300", *place]
    runs = {}
    for name, extra in (("one", []), ("two", ["--workers", "2"])):
        out, cache = tmp_path / name, tmp_path / f"{name}_cache"
        result = CliRunner().invoke(main, [*common, "--out", str(out), "--cache-dir",
                                           str(cache), *extra])
        assert result.exit_code == 0, result.output
        runs[name] = (out, cache)
    files = sorted(os.listdir(runs["one"][0]))
    assert files == sorted(os.listdir(runs["two"][0])) and len(files) == 4  # csv, json, md, png
    for name in files:
        if name.endswith((".csv", ".md")):
            assert body(runs["one"][0] / name) == body(runs["two"][0] / name), name
        if name.endswith(".json"):
            assert counts(runs["one"][0] / name) == counts(runs["two"][0] / name), name
    assert not ray.is_initialized()               # the command stopped the Ray it started


def counts(path):
    """A table summary's cells without what depends on the run (wall and compute time, raw
    rate)."""
    with open(path) as handle:
        cells = json.load(handle)["cells"]
    timing = ("seconds", "compute_seconds", "raw_rate")
    return [{k: v for k, v in cell.items() if k not in timing} for cell in cells]


def cached_results(checkpoint, split, cache, grid, settings):
    return experiment.run_many(get_spec("fashion"), checkpoint, [(t, settings) for t in grid],
                               120, split, cache_dir=str(cache), chunk_size=40,
                               echo=lambda *_: None)


def test_a_killed_worker_changes_nothing(small_checkpoint, small_split, tmp_path):
    """One actor's process is killed while it holds a chunk; Ray restarts it and reruns the
    chunk, and every cached record equals the single-process run's, byte for byte."""
    checkpoint, split = small_checkpoint("fashion"), small_split("fashion")
    grid = [BlindSpot(1.0, 0.0), BlindSpot(0.9, 0.0), BlindSpot(0.9, 0.05)]
    settings = PGDSettings(steps=60, step_size=0.002, batch_size=40)
    quiet = dict(echo=lambda *_: None)
    local = experiment.run_many(get_spec("fashion"), checkpoint, [(t, settings) for t in grid], 120,
                                split, cache_dir=str(tmp_path / "local"), chunk_size=40, **quiet)
    with RayExecutor(workers=2) as executor:
        pids = executor.worker_pids()
        killed = []

        class Bar:
            """A progress bar that kills the worker that did not just finish a chunk."""
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                pass

            def update(self, _):
                if not killed:
                    busy = [pid for pid in pids if pid not in executor.chunks_by_pid]
                    killed.append(busy[0])
                    os.kill(busy[0], signal.SIGKILL)
        experiment.run_many(get_spec("fashion"), checkpoint, [(t, settings) for t in grid], 120,
                            split, cache_dir=str(tmp_path / "ray"), chunk_size=40,
                            executor=executor, progress_for=lambda *_: Bar(), **quiet)
        assert killed and killed[0] not in executor.worker_pids()    # restarted by Ray
        assert sum(executor.chunks_by_pid.values()) == 9
    again = cached_results(checkpoint, split, tmp_path / "ray", grid, settings)
    for a, b in zip(local, again):
        assert a.new_grad_evals > 0 and b.new_grad_evals == 0      # b: all from the cache
        assert a.records() == b.records()
        assert a.adversarial.tobytes() == b.adversarial.tobytes()


def test_local_and_ray_executors_give_the_same_job_results(small_checkpoint, small_split):
    """The executor contract: on_done(index, result, seconds) once per job, any order."""
    checkpoint, split = small_checkpoint("fashion"), small_split("fashion")
    x = (split.test_x[:50].reshape(50, -1) - 0.5).astype(np.float32)
    jobs = [experiment.Job("fashion", checkpoint, experiment._gradient_rate,
                           {"x": x[:k], "labels": split.test_y[:k]}) for k in (10, 20, 30)]
    results = {}
    with make_executor(workers=2) as executor:
        executor.run(jobs, lambda i, r, s: results.setdefault(i, (r, s)))
    assert sorted(results) == [0, 1, 2] and all(s > 0 for _, s in results.values())
    with LocalExecutor() as local:
        seen = []
        local.run(jobs, lambda i, r, s: seen.append(i))
    assert seen == [0, 1, 2]


def test_workers_need_ray_or_say_so(monkeypatch):
    import builtins
    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError(name)
        return real(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(Exception, match=r"pip install '\.\[ray\]'"):
        make_executor(workers=2)


def test_a_local_ray_that_fails_to_start_is_one_error_line_and_is_shut_down(monkeypatch):
    """Ray's startup timeout is a bare Exception with a multi-line message: the user sees its
    first line as one Error, and the half-started Ray is shut down."""
    ray = pytest.importorskip("ray")
    calls = []

    def timed_out(**options):
        raise Exception("The current node timed out during startup. This could happen because"
                        " some of the raylet failed to startup.\nsecond line")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", timed_out)
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("shutdown"))
    with pytest.raises(parallel.BsattackError) as caught:
        RayExecutor(workers=1)
    message = str(caught.value)
    assert message.startswith("cannot start or join a local Ray: The current node timed out")
    assert "\n" not in message and "second line" not in message
    assert calls == ["shutdown"]


def test_without_the_options_ray_is_not_imported(small_checkpoint, small_split, tmp_path):
    """The default executor is this process: a whole table runs without importing Ray."""
    import subprocess
    import sys
    from support import FIXTURE_VALIDATION_SIZE, FIXTURES, ROOT
    code = (
        "import sys\n"
        "from bsattack import data\n"
        "from bsattack.attacks.pgd import PGDSettings\n"
        "from bsattack.datasets import get_spec\n"
        "from bsattack.experiment import run_table\n"
        f"split = data.load(get_spec('fashion'), {os.path.join(FIXTURES, 'data')!r}, "
        f"validation_size={FIXTURE_VALIDATION_SIZE}, download=False)\n"
        f"run_table(get_spec('fashion'), {small_checkpoint('fashion')!r}, PGDSettings(steps=2),"
        f" 20, split,"
        f" cache_dir={str(tmp_path)!r}, echo=lambda *_: None)\n"
        "print('ray' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"   # after the fixture data's note
    assert os.listdir(tmp_path)                    # the table ran (its cache was written)


def test_worker_folders_of_dead_workers_are_swept_and_live_ones_kept(tmp_path):
    """A killed worker's folder (its lock free) goes; a live worker's (lock held by another
    process) stays, and so does a folder too young to have its lock file yet."""
    import subprocess
    import sys
    dead, live, young = (tmp_path / f"{parallel.WORKER_PREFIX}{n}" for n in ("a", "b", "c"))
    for folder in (dead, live, young):
        folder.mkdir()
        (folder / "model.index").write_bytes(b"copy")
    (dead / parallel.WORKER_LOCK).touch()
    other = tmp_path / "other-folder"
    other.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from bsattack import parallel; "
         f"h = parallel.hold_worker_folder({str(live)!r}); print('held', flush=True); "
         "time.sleep(60)"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert parallel.sweep_worker_folders(str(tmp_path)) == [str(dead)]
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [live.name, young.name, other.name])
    finally:
        holder.kill()
        holder.wait()
    # the holder died (as kill -9 does): its lock died with it, so the next sweep takes it
    assert parallel.sweep_worker_folders(str(tmp_path)) == [str(live)]
    os.utime(young, (0, 0))                         # an unlocked folder an hour old or more
    assert parallel.sweep_worker_folders(str(tmp_path)) == [str(young)]
    assert [p.name for p in tmp_path.iterdir()] == [other.name]
