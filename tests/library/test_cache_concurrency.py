"""The cache under concurrent writers and after a killed one: every group two writers append
is kept (the lock), and a dead writer's temporary file is removed on the next open."""
import os
import threading

import numpy as np

from bsattack.h5store import H5Store


def test_concurrent_writers_keep_every_group(tmp_path):
    path = str(tmp_path / "cache.h5")
    names = [f"chunk_{i:03d}" for i in range(24)]

    def writer(part):
        store = H5Store(path, {"k": 1}, echo=lambda *a: None)
        for name in part:
            store.put(name, {"x": np.full(1000, int(name[-3:]))}, {"name": name})
    threads = [threading.Thread(target=writer, args=(names[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store = H5Store(path, {"k": 1}, echo=lambda *a: None)
    assert sorted(store.names("chunk_")) == names
    for name in names:
        np.testing.assert_array_equal(store.get(name, {"name": name})["x"],
                                      np.full(1000, int(name[-3:])))


def test_a_dead_writers_temporary_file_is_removed(tmp_path):
    dead = tmp_path / ".tmp-999999999-abc.h5"        # no such process
    live = tmp_path / f".tmp-{os.getpid()}-def.h5"   # this one is writing
    other = tmp_path / ".tmp-notapid.h5"             # not ours to judge
    for path in (dead, live, other):
        path.write_bytes(b"partial")
    H5Store(str(tmp_path / "cache.h5"), {"k": 1}, echo=lambda *a: None)
    assert not dead.exists() and live.exists() and other.exists()


def test_a_dead_writers_copy_goes_unless_its_lock_is_held(tmp_path):
    """A copy named after the cache file is judged by the file's lock, not by a PID: removed
    when the lock is free, kept while another process holds it (a writer at work)."""
    import subprocess
    import sys
    cache = tmp_path / "cache.h5"
    copy = tmp_path / ".tmp-cache.h5-abc123.h5"
    other = tmp_path / ".tmp-other.h5-abc123.h5"        # another file's copy: not judged here
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; h = open(sys.argv[1], 'a'); "
         "fcntl.flock(h, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
         str(cache) + ".lock"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        for path in (copy, other):
            path.write_bytes(b"partial")
        H5Store(str(cache), {"k": 1}, echo=lambda *a: None)
        assert copy.exists() and other.exists()
    finally:
        holder.kill()
        holder.wait()
    H5Store(str(cache), {"k": 1}, echo=lambda *a: None)
    assert not copy.exists() and other.exists()


def test_a_writer_names_its_copy_after_the_cache_file(tmp_path, monkeypatch):
    import tempfile
    made = []
    real = tempfile.mkstemp

    def mkstemp(**kwargs):
        made.append(kwargs["prefix"])
        return real(**kwargs)
    store = H5Store(str(tmp_path / "cache.h5"), {"k": 1}, echo=lambda *a: None)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    store.put("g", {"x": np.zeros(3)}, {"name": "g"})
    assert made == [".tmp-cache.h5-"]
