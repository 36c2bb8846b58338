"""Write a file so that it is either complete or absent: a temporary file in the same folder,
renamed over the destination (``os.replace``) only when writing succeeded.  Every table,
record, log and figure the project writes goes through :func:`write_atomic`: CSV through
:func:`bsattack.report.csvfile.write_csv`; text, JSON, .npy and figures through
:mod:`bsattack.outputs`; HDF5 caches through :class:`bsattack.h5store.H5Store`."""
import os
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path, write, mode="wb"):
    """Call ``write(handle)`` on a temporary file next to ``path`` and rename it to ``path``;
    if ``write`` raises, nothing is left behind.  Returns what ``write`` returns."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_umask())       # mkstemp's 0600 -> a normal file's mode
        with os.fdopen(fd, mode) as handle:
            result = write(handle)
        os.replace(tmp, path)
        return result
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

