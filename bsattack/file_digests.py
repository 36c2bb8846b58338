"""SHA-256 of a data file and of its gzip content, computed once per version of the file.

The pair is kept in ``<cache>/file_digests.json`` under the file's real path, with the file's
size, modification time (ns) and inode: a file that changes in any of them is hashed again.
The store is a cache only: one that cannot be read or written costs a recomputation, never a
run.  Entries of files that no longer exist are dropped whenever the store is rewritten.
"""
import gzip
import hashlib
import json
import os
import zlib

from bsattack import paths
from bsattack.atomic import write_atomic

STORE_NAME = "file_digests.json"
BLOCK = 1 << 20


def digests(path, cache_dir=None):
    """(SHA-256 of the file's bytes, SHA-256 of its gunzipped content or None when it is not a
    readable gzip file), both hex."""
    real = os.path.realpath(path)
    status = os.stat(real)
    stamp = [status.st_size, status.st_mtime_ns, status.st_ino]
    store = os.path.join(cache_dir or paths.CACHE_DIR, STORE_NAME)
    known = _read(store)
    entry = known.get(real)
    if isinstance(entry, dict) and entry.get("stamp") == stamp:
        return tuple(entry["sha256"])
    found = compute(real)
    known = {name: value for name, value in known.items() if os.path.exists(name)}
    known[real] = {"stamp": stamp, "sha256": list(found)}
    try:
        write_atomic(store, lambda handle: json.dump(known, handle, indent=0), "w")
    except OSError:
        pass
    return found


def compute(path):
    """The two digests of :func:`digests`, read from the file in blocks."""
    packed = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            packed.update(block)
    content = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as handle:
            for block in iter(lambda: handle.read(BLOCK), b""):
                content.update(block)
    except (OSError, EOFError, zlib.error):
        return packed.hexdigest(), None
    return packed.hexdigest(), content.hexdigest()


def _read(store):
    try:
        with open(store) as handle:
            known = json.load(handle)
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}
