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
