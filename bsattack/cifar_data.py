"""CIFAR-10: readers for the official python and binary batches, location, download.

Python version (``cifar-10-batches-py``, read by Madry's ``cifar10_input.py``): each batch is a
pickled dict with ``data`` (uint8 [10000, 3072], channel-major rows) and ``labels`` (list of
ints).  Unpickling runs code named by the file, so :func:`read_python_batch` never does it: a
restricted unpickler resolves no global at all except a few names numpy uses to pickle plain
arrays, and each of those is replaced by an inert stand-in that only records its arguments.
The recorded arrays are then rebuilt with ``np.frombuffer`` after checking the dtype (integers
only) and the byte count.  Anything else in the file is refused before any code can run.

Binary version (``cifar-10-batches-bin``): records of 1 label byte + 3072 pixel bytes.

Both give images as float32 [N, 32, 32, 3] in [0, 1] (Madry feeds them x 255) and int64 labels;
train = data_batch_1..5 (50,000; Madry's CIFAR code holds nothing out), test = test_batch in
file order (10,000).
"""
import hashlib
import io
import math
import os
import pickle

import numpy as np

from bsattack import fetch as fetching
from bsattack.datafiles import Split, candidate_dirs, find_or_fetch, project_data_dir
from bsattack.errors import BsattackError
from bsattack.progress import silent

PIXELS = 32 * 32 * 3
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
FORMAT_FOLDERS = {"python": "cifar-10-batches-py", "binary": "cifar-10-batches-bin"}
_INTEGER_KINDS = "ui"


# --- restricted unpickling ------------------------------------------------------------------
class _Recorded:
    """What an allowed global returned: its name and arguments, nothing executed."""

    def __init__(self, kind, args):
        self.kind, self.args, self.state = kind, args, None

    def __setstate__(self, state):
        self.state = state


def _stand_in(kind):
    return lambda *args: _Recorded(kind, args)


def _latin1(text, encoding):
    """``_codecs.encode``: how Python 3 writes bytes at pickle protocol 2."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("_codecs.encode used with something other than latin1 text")
    return text.encode("latin1")


_ALLOWED = {}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_module, "_reconstruct")] = _stand_in("reconstruct")
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_module, "_frombuffer")] = _stand_in("frombuffer")
_ALLOWED[("numpy", "ndarray")] = _stand_in("ndarray")
_ALLOWED[("numpy", "dtype")] = _stand_in("dtype")
_ALLOWED[("_codecs", "encode")] = _latin1


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the names in ``_ALLOWED``, to inert stand-ins; everything else fails."""

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None


def _text(value):
    return value.decode("latin1") if isinstance(value, bytes) else value


def _dtype(record):
    """numpy.dtype(descr, align, copy) + BUILD state (version, byte order, ...): integers only."""
    if not isinstance(record, _Recorded) or record.kind != "dtype" or not record.args:
        raise ValueError("array without a plain dtype")
    descr = _text(record.args[0])
    state = record.state if isinstance(record.state, tuple) else ()
    order = _text(state[1]) if len(state) > 1 else "|"
    if not isinstance(descr, str) or order not in ("|", "<", ">", "="):
        raise ValueError("malformed dtype")
    dtype = np.dtype(descr)
    if dtype.kind not in _INTEGER_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise ValueError(f"dtype {descr!r} is not a plain integer type")
    return dtype.newbyteorder(order) if order in "<>" else dtype


def _array(record):
    """Rebuild an array from the recorded _reconstruct/BUILD or _frombuffer arguments."""
    if record.kind == "reconstruct":
        state = record.state
        if not (isinstance(state, tuple) and len(state) == 5):
            raise ValueError("array with an unexpected pickled state")
        _, shape, dtype, fortran, raw = state
    elif record.kind == "frombuffer" and len(record.args) == 4:
        raw, dtype, shape, order = record.args
        fortran = _text(order) == "F"
    else:
        raise ValueError(f"unexpected object '{record.kind}'")
    dtype = _dtype(dtype)
    if not (isinstance(shape, tuple) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise ValueError("array with a malformed shape")
    raw = raw.encode("latin1") if isinstance(raw, str) else raw
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != math.prod(shape) * dtype.itemsize:
        raise ValueError("array data does not match its shape")
    array = np.frombuffer(bytes(raw), dtype=dtype)
    return array.reshape(shape, order="F" if fortran else "C")


def _plain(value):
    """Replace recorded arrays by numpy arrays; only primitives, lists, tuples and dicts pass."""
    if isinstance(value, _Recorded):
        return _array(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {_text(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    raise ValueError(f"unexpected {type(value).__name__}")


def safe_unpickle(raw, path="<bytes>"):
    """The dict in a CIFAR python batch, decoded without running anything the file names."""
    try:
        value = _plain(_RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load())
    except (pickle.UnpicklingError, ValueError, TypeError, EOFError, IndexError,
            AttributeError, KeyError, MemoryError, OverflowError) as exc:
        raise BsattackError(f"{path}: refused to load: not a plain CIFAR-10 python batch "
                            f"({exc})") from None
    if not isinstance(value, dict):
        raise BsattackError(f"{path}: refused to load: holds a {type(value).__name__}, "
                            f"not the dict of a CIFAR-10 python batch")
    return value


# --- batch readers ---------------------------------------------------------------------------
def _check(path, images, labels):
    if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != PIXELS:
        raise BsattackError(f"{path}: 'data' is {images.dtype} {images.shape}, expected uint8 "
                            f"[N, {PIXELS}]")
    if labels.shape != (len(images),):
        raise BsattackError(f"{path}: {len(images)} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise BsattackError(f"{path}: labels outside 0..9")
    # rows are channel-major (1024 red, 1024 green, 1024 blue): to NHWC as cifar10_input.py does
    return images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels.astype(np.int64)


def read_python_batch(path):
    """(uint8 [N,32,32,3], int64 [N]) from one python-version batch, safely unpickled."""
    with open(path, "rb") as handle:
        batch = safe_unpickle(handle.read(), path)
    if "data" not in batch or "labels" not in batch:
        raise BsattackError(f"{path}: not a CIFAR-10 batch (keys {sorted(batch)}; expected "
                            f"'data' and 'labels')")
    images, labels = batch["data"], batch["labels"]
    if not isinstance(images, np.ndarray):
        raise BsattackError(f"{path}: 'data' is a {type(images).__name__}, not an array")
    if isinstance(labels, list) and all(type(v) is int for v in labels):
        labels = np.array(labels, dtype=np.int64)
    elif not (isinstance(labels, np.ndarray) and labels.dtype.kind in _INTEGER_KINDS):
        raise BsattackError(f"{path}: 'labels' must be a list or array of integers")
    return _check(path, images, labels)


def read_binary_batch(path):
    """(uint8 [N,32,32,3], int64 [N]) from one binary-version batch (label byte + 3072 pixels)."""
    with open(path, "rb") as handle:
        raw = handle.read()
    if not raw or len(raw) % (PIXELS + 1):
        raise BsattackError(f"{path}: {len(raw)} bytes is not a whole number of "
                            f"{PIXELS + 1}-byte CIFAR-10 records (truncated or wrong file)")
    records = np.frombuffer(raw, np.uint8).reshape(-1, PIXELS + 1)
    return _check(path, records[:, 1:], records[:, 0])


READERS = {"python": (read_python_batch, ""), "binary": (read_binary_batch, ".bin")}


# --- location, loading, download -------------------------------------------------------------
def batch_files(folder, fmt):
    suffix = READERS[fmt][1]
    return [os.path.join(folder, name + suffix) for name in TRAIN_BATCHES + (TEST_BATCH,)]


def _found(spec, data_dir=None):
    """(folder, format) of the first place holding all six batches of either version, or None.
    Each candidate folder of :func:`bsattack.datafiles.candidate_dirs` is tried itself and with
    the official archives' folder names (cifar-10-batches-py / -bin) below it."""
    for root in candidate_dirs(spec, data_dir):
        for fmt, sub in FORMAT_FOLDERS.items():
            for folder in (root, os.path.join(root, sub)):
                if all(os.path.isfile(p) for p in batch_files(folder, fmt)):
                    return folder, fmt
    return None


def locate(spec, data_dir=None):
    """The folder holding the six batches (either version), or None."""
    found = _found(spec, data_dir)
    return found and found[0]


def fetch(spec, dest=None, echo=print, progress=silent):
    """Download the python-version archive (SHA-256 checked) and unpack its batches into
    ``dest``/cifar-10-batches-py; a no-op when they are there already."""
    dest = dest or project_data_dir(spec)
    target = os.path.join(dest, FORMAT_FOLDERS["python"])
    if all(os.path.isfile(p) for p in batch_files(target, "python")):
        echo(f"{spec.name}: data in {target}")
        return target
    archive_file = spec.files["archive"]
    archive = os.path.join(dest, archive_file.name)
    fetching.download_file(spec.base_url + archive_file.name, archive, sha256=archive_file.sha256,
                           progress=progress)
    try:
        fetching.extract_archive(archive, target, member_dir=FORMAT_FOLDERS["python"])
    finally:
        os.remove(archive)
    echo(f"{spec.name}: data in {target}")
    return target


def load(spec, data_dir=None, validation_size=0, download=True, echo=print):
    """Train (data_batch_1..5) and test (test_batch) sets as a :class:`bsattack.datafiles.Split`;
    ``validation_size`` is ignored (Madry's CIFAR code holds nothing out)."""
    folder, fmt = find_or_fetch(spec, data_dir, _found, fetch, download, echo,
                                where=" and their cifar-10-batches-py/-bin folders")
    reader = READERS[fmt][0]
    parts = [reader(path) for path in batch_files(folder, fmt)]
    train_x = np.concatenate([p[0] for p in parts[:-1]])
    train_y = np.concatenate([p[1] for p in parts[:-1]])
    test_x, test_y = parts[-1]
    digest = hashlib.sha256()
    for array in (train_x, train_y, test_x, test_y):
        digest.update(array.tobytes())
    return Split(train_x=train_x.astype(np.float32) / 255.0, train_y=train_y,
                 test_x=test_x.astype(np.float32) / 255.0, test_y=test_y,
                 source=folder, fingerprint=digest.hexdigest()[:16])
