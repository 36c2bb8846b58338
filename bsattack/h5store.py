"""A file of named groups of arrays in HDF5, each group tagged with the key it was computed
under.  Every write is atomic (copy to a temporary file, write, ``os.replace``), so an
interrupted run leaves the previous complete file and resumes from the groups it holds.

A group is only returned when its stored key equals the requested key, it holds every array it
was written with, each array matches its checksum (attribute ``sha256``: SHA-256 of dtype,
shape and bytes, :func:`checksum`) and has the expected shape; otherwise it is reported and
treated as missing (recomputed), never reused.  A file that cannot be read at all is reported
and discarded.  The cache location is checked on opening (one line naming it and
``--cache-dir`` when it is a folder or its folder refuses a new file: permissions, full
disk) and, by :meth:`H5Store.check_writable` before the work whose results will be written,
for the rest of a write: its lock can be opened, the present file replaced (not immutable, not
another user's in a sticky folder) and its device has room for the copy every write makes.
Writers take an exclusive lock (``fcntl.flock`` on ``<file>.lock``) around copy-write-rename,
so two processes appending to one file never drop each other's groups; a temporary file left
by a killed writer (its process gone) is removed by the next store opened in that folder.
"""
import contextlib
import fcntl
import glob
import hashlib
import json
import os
import shutil
import stat
import struct
import tempfile

import h5py
import numpy as np

from bsattack.errors import BsattackError
from bsattack.outputs import check_writable_file
from bsattack.paths import canonical as _canonical

# what h5py raises for damaged files, groups or datasets
_READ_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError)


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


TEMPORARY_PREFIX = ".tmp-"


@contextlib.contextmanager
def _locked(path):
    """An exclusive ``flock`` on ``path`` (created when missing) for the enclosed block."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _temporary_prefix(path):
    """The name start of ``path``'s temporary copies: ``.tmp-<file name>-``."""
    return f"{TEMPORARY_PREFIX}{os.path.basename(path)}-"


def remove_stale_temporaries(path):
    """Remove the leftovers of writers of the cache file ``path`` that died mid-write: its
    temporary copies (``.tmp-<file name>-*.h5``), when its lock can be taken at once (a live
    writer holds the lock while its copy exists, whatever its PID namespace), and the older
    naming's ``.tmp-PID-*.h5`` files in its folder whose process is gone."""
    folder = os.path.dirname(os.path.abspath(path))
    own = glob.glob(os.path.join(glob.escape(folder), glob.escape(_temporary_prefix(path))
                                 + "*.h5"))
    if own:
        with contextlib.suppress(OSError), open(path + ".lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                own = []
            for leftover in own:
                with contextlib.suppress(OSError):
                    os.remove(leftover)
    for leftover in glob.glob(os.path.join(glob.escape(folder), TEMPORARY_PREFIX + "*.h5")):
        pid = os.path.basename(leftover)[len(TEMPORARY_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                os.remove(leftover)


FS_IOC_GETFLAGS = 0x80086601          # Linux: the inode's attribute flags (lsattr)
IMMUTABLE_FLAGS = 0x10 | 0x20         # FS_IMMUTABLE_FL, FS_APPEND_FL


def _attribute_flags(path):
    """The file's Linux attribute flags, 0 where the file system has none."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return 0
    try:
        return struct.unpack("i", fcntl.ioctl(fd, FS_IOC_GETFLAGS, bytes(8))[:4])[0]
    except OSError:
        return 0
    finally:
        os.close(fd)


def _unwritable(path):
    """Why :meth:`H5Store.put` could not replace ``path`` (an existing cache file) or take its
    lock, or None.  (A folder that refuses new files is found by the probe before.)"""
    lock = path + ".lock"
    if os.path.lexists(lock):
        if not os.path.isfile(lock):
            return f"its lock {lock} is not a regular file"
        try:
            with open(lock, "a"):
                pass
        except OSError as exc:
            return f"its lock {lock} cannot be opened ({exc.strerror})"
        if _attribute_flags(lock) & IMMUTABLE_FLAGS:
            return f"its lock {lock} is immutable or append-only (chattr)"
    if not os.path.lexists(path):
        return None
    if _attribute_flags(path) & IMMUTABLE_FLAGS:
        return "the file is immutable or append-only (chattr), so it cannot be replaced"
    folder = os.path.dirname(os.path.abspath(path))
    held, where = os.lstat(path), os.stat(folder)
    user = os.geteuid()
    if where.st_mode & stat.S_ISVTX and user not in (0, held.st_uid, where.st_uid):
        return (f"the folder {folder} is sticky and the file is another user's, so it cannot "
                f"be replaced")
    space = os.statvfs(folder)
    free, needed = space.f_bavail * space.f_frsize, held.st_size + (1 << 20)
    if free < needed:
        return (f"every write copies the file ({held.st_size >> 20} MiB) and only "
                f"{free >> 20} MiB are free on its device")
    return None


def checksum(array):
    """SHA-256 (hex) of an array's dtype, shape and C-order bytes."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


class H5Store:
    """HDF5 file at ``path`` whose identity is ``file_key`` (e.g. checkpoint hash + data)."""

    def __init__(self, path, file_key, echo=print):
        self.path = os.fspath(path)
        self.file_key = _canonical(file_key)
        self.echo = echo
        if os.path.isdir(self.path):
            raise BsattackError(f"cache file {self.path} is a folder; remove it or choose "
                                f"another --cache-dir")
        try:
            check_writable_file(self.path, what=f"cache {self.path}")
        except BsattackError as exc:
            raise BsattackError(f"{exc}; choose another --cache-dir") from None
        remove_stale_temporaries(self.path)
        self._check_file()

    def check_writable(self):
        """Call before the work whose results :meth:`put` will store: every step of a write
        can be taken here (the lock file, replacing the present file, room for its copy; the
        folder taking a new file is checked on opening), else one line naming the cache and
        ``--cache-dir``.  A store only read from needs none of it."""
        reason = _unwritable(self.path)
        if reason:
            raise BsattackError(f"cannot write cache {self.path}: {reason}; choose another "
                                f"--cache-dir")

    def _check_file(self):
        if not os.path.exists(self.path):
            return
        reason = None
        try:
            with h5py.File(self.path, "r") as handle:
                stored = handle.attrs.get("file_key")
                if stored != self.file_key:
                    reason = "it was made from another checkpoint, data set or version"
        except _READ_ERRORS as exc:
            reason = f"it is unreadable ({_first_line(exc)})"
        if reason:
            self.echo(f"cache {self.path}: discarded, {reason}; rebuilding")
            self._discard()

    def _discard(self):
        try:
            os.remove(self.path)
        except OSError as exc:
            raise BsattackError(f"cache {self.path} must be rebuilt but cannot be removed "
                                f"({exc.strerror}); remove it or choose another --cache-dir") from None

    def get(self, name, key, shapes=None):
        """{array name: array} of group ``name`` if it was stored under ``key``, is complete
        and intact (and, when ``shapes`` maps array names to shapes, has them); else None."""
        if not os.path.exists(self.path):
            return None
        try:
            arrays, problem = self._read(name, key)
        except _READ_ERRORS as exc:
            arrays, problem = None, f"is unreadable ({_first_line(exc)})"
        for array_name, shape in (shapes or {}).items() if arrays is not None else ():
            if array_name not in arrays or tuple(arrays[array_name].shape) != tuple(shape):
                arrays, problem = None, f"has the wrong shape in '{array_name}'"
        if problem:
            self.echo(f"cache {self.path}: '{name}' {problem}; recomputing")
        return arrays

    def _read(self, name, key):
        """(arrays, None) or (None, why the group is not usable; None when simply absent)."""
        with h5py.File(self.path, "r") as handle:
            group = handle.get(name)
            if not isinstance(group, h5py.Group):
                return None, None
            if group.attrs.get("key") != _canonical(key):
                return None, "was computed with other settings"
            listed = group.attrs.get("arrays")
            names = json.loads(listed) if listed is not None else list(group.keys())
            missing = [n for n in names if not isinstance(group.get(n), h5py.Dataset)]
            if missing:
                return None, f"lacks {', '.join(missing)}"
            arrays = {}
            for array_name in names:
                value = group[array_name][()]
                stored = group[array_name].attrs.get("sha256")
                if stored is not None and stored != checksum(value):
                    return None, f"fails its checksum in '{array_name}' (corrupt)"
                arrays[array_name] = value
        return arrays, None

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
        """Store {array name: array} as group ``name`` under ``key``, with a checksum per
        array, atomically, under the file's lock."""
        folder = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(folder, exist_ok=True)
            with _locked(self.path + ".lock"):
                fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(self.path), suffix=".h5",
                                           dir=folder)
                os.close(fd)
                try:
                    self._write(tmp, name, arrays, key)
                    os.replace(tmp, self.path)
                finally:
                    if os.path.exists(tmp):
                        os.remove(tmp)
        except OSError as exc:
            raise BsattackError(f"cannot write cache {self.path}: {_first_line(exc)}") from None

    def _write(self, tmp, name, arrays, key):
        mode = "w"
        if os.path.exists(self.path):
            shutil.copyfile(self.path, tmp)
            mode = "a"
        try:
            handle = h5py.File(tmp, mode)
        except _READ_ERRORS as exc:         # damaged since it was opened: start it again
            self.echo(f"cache {self.path}: discarded, it is unreadable ({_first_line(exc)}); "
                      f"rebuilding")
            handle = h5py.File(tmp, "w")
        with handle:
            handle.attrs["file_key"] = self.file_key
            if name in handle:
                del handle[name]
            group = handle.create_group(name)
            group.attrs["key"] = _canonical(key)
            group.attrs["arrays"] = json.dumps(list(arrays))
            for array_name, value in arrays.items():
                value = np.asarray(value)
                group.create_dataset(array_name, data=value).attrs["sha256"] = checksum(value)
