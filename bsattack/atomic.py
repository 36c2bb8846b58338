"""Write a file so that it is either complete or absent: a temporary file in the same folder,
renamed over the destination (``os.replace``) only when writing succeeded.  Every table,
record, log and figure the project writes goes through :func:`write_atomic`: CSV through
:func:`bsattack.report.csvfile.write_csv`; text, JSON, .npy and figures through
:mod:`bsattack.outputs`; HDF5 caches through :class:`bsattack.h5store.H5Store`.  Inside
:func:`staged`, the files written wait under their temporary names and replace their
destinations together when the block ends."""
import contextlib
import contextvars
import os
import tempfile

# the [(temporary file, destination)] of the staged() block under way, None outside one
_STAGED = contextvars.ContextVar("staged", default=None)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path, write, mode="wb"):
    """Call ``write(handle)`` on a temporary file next to ``path`` and rename it to ``path``
    (inside :func:`staged`: when the block ends); if ``write`` raises, nothing is left behind.
    Returns what ``write`` returns."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_umask())       # mkstemp's 0600 -> a normal file's mode
        with os.fdopen(fd, mode) as handle:
            result = write(handle)
        staged_files = _STAGED.get()
        if staged_files is None:
            os.replace(tmp, path)
        else:
            staged_files.append((tmp, path))
            tmp = None
        return result
    finally:
        if tmp and os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def staged():
    """``with staged():`` -- every :func:`write_atomic` in the block keeps its file under the
    temporary name; when the block ends without an error they are all renamed into place, in
    the order written, else removed, so a set of files replaces the previous set as a whole (a
    rename needs no space: a full disk fails while writing, before any file is replaced).  A
    block inside another one adds its files to the outer set."""
    if _STAGED.get() is not None:
        yield
        return
    files = []
    token = _STAGED.set(files)
    try:
        try:
            yield
        finally:
            _STAGED.reset(token)
        while files:
            os.replace(*files[0])
            files.pop(0)
    finally:
        for tmp, _ in files:
            if os.path.exists(tmp):
                os.remove(tmp)
