"""Output files: check that a location can be written before the work starts, and write every
kind of output atomically (complete or absent, :func:`bsattack.atomic.write_atomic`).

``check_writable_file(path)`` / ``check_writable_dir(path)`` raise :class:`BsattackError` with
one line when ``path`` cannot be written: a name longer than the file system allows, a file
where a folder is needed (or the reverse), or a folder that refuses a new file (permissions,
read-only file system, /proc).  The test is the real one: a temporary file is created and
removed in the nearest existing folder.  Nothing else is created.

``save_npy``, ``save_json`` (strict JSON: NaN and ±inf become null), ``save_text``,
``atomic_text`` (a handle for csv writers) and ``save_figure`` write through a temporary file
next to the destination; an OS error becomes one line naming the file.  Files that belong
together (a run's JSON, CSV and figure) are written inside :func:`bsattack.atomic.staged`, so
that they replace the previous set together.
"""
import contextlib
import errno
import io
import json
import math
import os
import tempfile

import numpy as np

from bsattack.atomic import write_atomic
from bsattack.errors import BsattackError


def _short(text, limit=100):
    text = str(text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _too_long(path):
    """The part of ``path`` that is too long for its file system, or None."""
    absolute = os.path.abspath(path)
    if len(os.fsencode(absolute)) >= os.pathconf("/", "PC_PATH_MAX"):
        return absolute
    limit = os.pathconf("/", "PC_NAME_MAX")
    return next((part for part in absolute.split(os.sep) if len(os.fsencode(part)) > limit),
                None)


def _refuse_broken_link(path, what):
    if os.path.islink(path) and not os.path.exists(path):
        raise BsattackError(f"cannot write {what}: {path} is a symbolic link to nothing "
                            f"(dangling or looping)")


def _nearest_existing(folder, what):
    """``folder`` or its closest ancestor that exists; a BsattackError when that one is a file."""
    current = os.path.abspath(folder)
    while not os.path.lexists(current):
        current = os.path.dirname(current)
    _refuse_broken_link(current, what)
    if not os.path.isdir(current):
        raise BsattackError(f"cannot write {what}: {current} is a file, not a folder")
    return current


PROBE_BYTES = 1 << 16


def _probe(folder, what):
    """Create, fill with ``PROBE_BYTES`` and remove a file in ``folder`` (so a full disk is
    found too); a BsattackError naming ``what`` when refused."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=folder)
    except OSError as exc:
        reason = "read-only file system" if exc.errno == errno.EROFS else exc.strerror
        raise BsattackError(f"cannot write {what}: folder {folder} is not writable "
                            f"({reason})") from None
    try:
        os.write(fd, b"\0" * PROBE_BYTES)
        os.fsync(fd)
    except OSError as exc:
        reason = "no space left on the device" if exc.errno == errno.ENOSPC else exc.strerror
        raise BsattackError(f"cannot write {what}: folder {folder} cannot take a file "
                            f"({reason})") from None
    finally:
        os.close(fd)
        os.remove(probe)


def check_writable_dir(path, what=None):
    """Raise BsattackError unless ``path`` is (or can be made as) a folder files can be written
    in; ``what`` names it in the message (default: the path)."""
    what = _short(what or f"folder {path}")
    long_part = _too_long(path)
    if long_part:
        raise BsattackError(f"cannot write {what}: name too long ({_short(long_part, 60)})")
    _refuse_broken_link(path, what)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise BsattackError(f"cannot write {what}: {path} is a file, not a folder")
    _probe(_nearest_existing(path, what), what)


def check_writable_file(path, what=None):
    """Raise BsattackError unless a file can be written (atomically) at ``path``."""
    what = _short(what or path)
    long_part = _too_long(path)
    if long_part:
        raise BsattackError(f"cannot write {what}: name too long ({_short(long_part, 60)})")
    if os.path.isdir(path):
        raise BsattackError(f"cannot write {what}: {path} is a folder, expected a file name")
    _probe(_nearest_existing(os.path.dirname(os.path.abspath(path)), what), what)


def write_file(path, write, mode="w"):
    """``write(handle)`` into ``path`` atomically; an OS error (full disk, read-only file
    system, ...) becomes one line naming the file, and the previous file stays as it was."""
    try:
        return write_atomic(path, write, mode)
    except OSError as exc:
        raise BsattackError(f"cannot write {path}: {exc.strerror or exc}") from None


def save_npy(path, array):
    """``np.save`` of ``array`` to ``path``, atomically (never a partial .npy)."""
    write_file(path, lambda handle: np.save(handle, array, allow_pickle=False), "wb")


def save_text(path, text):
    write_file(path, lambda handle: handle.write(text), "w")


@contextlib.contextmanager
def atomic_text(path):
    """``with atomic_text(path) as handle:`` -- a text handle (no newline translation, as
    ``open(..., newline="")`` for csv) whose content replaces ``path`` atomically when the
    block ends without an error; nothing is written otherwise."""
    buffer = io.StringIO(newline="")
    yield buffer
    save_text(path, buffer.getvalue())


def strict(value):
    """``value`` with every non-finite float (NaN, ±inf) replaced by None, recursively, so that
    ``json.dump(..., allow_nan=False)`` accepts it (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    return value


def save_json(path, value, indent=1):
    """Strict JSON (non-finite floats as null) of ``value`` at ``path``, atomically."""
    write_file(path, lambda handle: json.dump(strict(value), handle, indent=indent,
                                          allow_nan=False), "w")


def save_figure(fig, path, header=(), **savefig_kwargs):
    """``fig.savefig`` to ``path`` atomically (the format from the file name's extension); a
    PNG carries the ``header`` lines (the command that wrote it first) as its Description."""
    fmt = os.path.splitext(path)[1].lstrip(".") or None
    if header and fmt == "png":
        savefig_kwargs["metadata"] = {**savefig_kwargs.get("metadata", {}),
                                      "Description": "\n".join(header)}
    write_file(path, lambda handle: fig.savefig(handle, format=fmt, **savefig_kwargs), "wb")
