"""Where the project keeps things, computed once: the project root and its ``data/``,
``checkpoints/`` and ``cache/`` folders, the default ``results`` folder, and the one rule that
names cache files.

Cache files are named by what they hold and a digest of the key they were computed under, so
a file made with other settings, another checkpoint or other data is never opened by mistake:
``<cache_dir>/<folder>/<stem>_<16 hex digits of sha256(canonical JSON of key)>.h5``.
"""
import hashlib
import json
import os

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.path.join(PROJECT_ROOT, "data")
CHECKPOINTS_DIR = os.path.join(PROJECT_ROOT, "checkpoints")
CACHE_DIR = os.path.join(PROJECT_ROOT, "cache")
RESULTS_DIR = "results"          # relative: commands write under the folder they are run in


def canonical(key):
    """The JSON text a key is compared and hashed as (sorted keys; non-JSON values as str)."""
    return json.dumps(key, sort_keys=True, default=str)


def cache_file(cache_dir, folder, stem, key):
    """``cache_dir/folder/stem_<digest of key>.h5`` (``cache_dir`` None: :data:`CACHE_DIR`)."""
    return os.path.join(cache_dir or CACHE_DIR, folder, f"{stem}_{digest(key)[:16]}.h5")


def digest(key):
    """SHA-256 (hex) of ``key``'s canonical JSON: the name of what it keys."""
    return hashlib.sha256(canonical(key).encode()).hexdigest()
