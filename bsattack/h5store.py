"""A file of named groups of arrays in HDF5, each group tagged with the key it was computed
under.  Every write is atomic (copy to a temporary file, write, ``os.replace``), so an
interrupted run leaves the previous complete file and resumes from the groups it holds.

A group is only returned when its stored key equals the requested key and its arrays have the
expected shapes; otherwise it is reported and treated as missing (recomputed), never reused.
"""
import json
import os
import shutil
import tempfile

import h5py
import numpy as np


CACHE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cache")


def _canonical(key):
    return json.dumps(key, sort_keys=True, default=str)


class H5Store:
    """HDF5 file at ``path`` whose identity is ``file_key`` (e.g. checkpoint hash + data)."""

    def __init__(self, path, file_key, echo=print):
        self.path = os.fspath(path)
        self.file_key = _canonical(file_key)
        self.echo = echo
        self._check_file()

    def _check_file(self):
        if not os.path.exists(self.path):
            return
        reason = None
        try:
            with h5py.File(self.path, "r") as handle:
                stored = handle.attrs.get("file_key")
                if stored != self.file_key:
                    reason = "it was made from another checkpoint, data set or version"
        except (OSError, KeyError) as exc:
            reason = f"it is unreadable ({str(exc).splitlines()[0]})"
        if reason:
            self.echo(f"cache {self.path}: discarded, {reason}; rebuilding")
            os.remove(self.path)

    def get(self, name, key, shapes=None):
        """{array name: array} of group ``name`` if it was stored under ``key`` (and, when
        ``shapes`` maps array names to shapes, has them); else None."""
        if not os.path.exists(self.path):
            return None
        with h5py.File(self.path, "r") as handle:
            if name not in handle:
                return None
            group = handle[name]
            if group.attrs.get("key") != _canonical(key):
                self.echo(f"cache {self.path}: '{name}' was computed with other settings; recomputing")
                return None
            try:
                arrays = {k: group[k][()] for k in group.keys()}
            except (OSError, KeyError) as exc:
                self.echo(f"cache {self.path}: '{name}' is unreadable ({exc}); recomputing")
                return None
        for array_name, shape in (shapes or {}).items():
            if array_name not in arrays or tuple(arrays[array_name].shape) != tuple(shape):
                self.echo(f"cache {self.path}: '{name}/{array_name}' has the wrong shape; recomputing")
                return None
        return arrays

    def names(self, prefix=""):
        """Names of the stored groups that start with ``prefix``."""
        if not os.path.exists(self.path):
            return []
        found = []
        with h5py.File(self.path, "r") as handle:
            handle.visit(lambda n: found.append(n) if isinstance(handle[n], h5py.Group)
                         and "key" in handle[n].attrs and n.startswith(prefix) else None)
        return found

    def put(self, name, arrays, key):
        """Store {array name: array} as group ``name`` under ``key``, atomically."""
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".h5", dir=folder)
        os.close(fd)
        try:
            if os.path.exists(self.path):
                shutil.copyfile(self.path, tmp)
                mode = "a"
            else:
                mode = "w"
            with h5py.File(tmp, mode) as handle:
                handle.attrs["file_key"] = self.file_key
                if name in handle:
                    del handle[name]
                group = handle.create_group(name)
                group.attrs["key"] = _canonical(key)
                for array_name, value in arrays.items():
                    group.create_dataset(array_name, data=np.asarray(value))
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
