"""MNIST / Fashion-MNIST: IDX readers with validation, data-directory resolution, the Madry split.

Images come back as float32 [N, 784] in [0, 1] (the Madry models' input; the attacks shift
them to [-0.5, 0.5]) and labels as int64 [N].  The Madry split holds out the first 5,000
training images (TF1 ``read_data_sets(validation_size=5000)``), leaving 55,000.
"""
import gzip
import hashlib
import os
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from bsattack.datasets import get_spec
from bsattack.errors import BsattackError

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_ENV = "BSATTACK_DATA_DIR"
MADRY_VALIDATION_SIZE = 5000
_IDX_TYPES = {0x08: np.uint8}


@dataclass
class Split:
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    source: str              # folder the files were read from
    fingerprint: str         # hash of the arrays, for cache keys


def _read_bytes(path):
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise BsattackError(f"{path}: corrupt or truncated gzip file ({exc})") from None
    return raw


def read_idx(path, expected_ndim):
    """Parse one IDX file (gzipped or not), checking magic number, dtype, rank and size."""
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise BsattackError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code not in _IDX_TYPES or ndim != expected_ndim:
        magic = int.from_bytes(raw[:4], "big")
        want = 0x800 + expected_ndim
        raise BsattackError(f"{path}: wrong magic number 0x{magic:08x} (expected 0x{want:08x}, "
                            f"an IDX file of rank {expected_ndim})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise BsattackError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(dims))
    if len(raw) - header != count:
        raise BsattackError(f"{path}: IDX header announces {dims} = {count} values but the file "
                            f"holds {len(raw) - header} (truncated or wrong file)")
    return np.frombuffer(raw, dtype=_IDX_TYPES[dtype_code], offset=header).reshape(dims)


def _find_file(folder, name):
    for candidate in (name, name[:-3] if name.endswith(".gz") else name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def candidate_dirs(dataset, data_dir=None):
    """Where the files are looked for: only --data-dir (itself or its <dataset> subfolder) when
    given; else $BSATTACK_DATA_DIR (the same way), the project's data/<dataset>, then system
    folders (Debian)."""
    spec = get_spec(dataset)
    if data_dir:
        return [data_dir] + [os.path.join(data_dir, sub) for sub in spec.folder_names]
    dirs = []
    root = os.environ.get(DATA_ENV)
    if root:
        dirs += [root] + [os.path.join(root, sub) for sub in spec.folder_names]
    dirs.append(project_data_dir(dataset))
    dirs += list(spec.system_dirs)
    return dirs


def project_data_dir(dataset):
    return os.path.join(PROJECT_ROOT, "data", get_spec(dataset).name)


def locate(dataset, data_dir=None):
    """First folder holding all four files, or None."""
    spec = get_spec(dataset)
    for folder in candidate_dirs(dataset, data_dir):
        if all(_find_file(folder, f.name) for f in spec.files.values()):
            return folder
    return None


def fetch_data(dataset, dest=None, echo=print):
    """Download the four files from the canonical mirror into ``dest``, checking SHA-256."""
    from bsattack import fetch, outputs
    spec = get_spec(dataset)
    if spec.name == "cifar10":
        from bsattack import cifar_data
        return cifar_data.fetch(dest, echo)
    dest = dest or project_data_dir(dataset)
    outputs.check_writable_dir(dest, f"the data folder {dest}")
    os.makedirs(dest, exist_ok=True)
    for data_file in spec.files.values():
        target = os.path.join(dest, data_file.name)
        if os.path.exists(target) and _sha256(target) == data_file.sha256:
            continue
        fetch.download_file(spec.base_url + data_file.name, target, sha256=data_file.sha256)
    echo(f"{spec.name}: data in {dest}")
    return dest


def _sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _missing_in(dataset, data_dir):
    """What ``data_dir`` (or its <dataset> subfolder) lacks, as one line."""
    spec = get_spec(dataset)
    folders = candidate_dirs(dataset, data_dir)
    names = [f.name for f in spec.files.values()]
    present = {folder: [n for n in names if _find_file(folder, n)] for folder in folders}
    best = max(folders, key=lambda folder: len(present[folder]))
    missing = [n for n in names if n not in present[best]]
    if not present[best]:
        return (f"{dataset} data not found in --data-dir {data_dir} (nor its "
                f"{'/'.join(spec.folder_names) or dataset} subfolder): none of {', '.join(names)}; "
                f"run 'python cli.py fetch-data {dataset} --dest {data_dir}'")
    return (f"{dataset} data incomplete in {best}: missing {', '.join(missing)} "
            f"({len(names) - len(missing)} of {len(names)} files present); run 'python cli.py "
            f"fetch-data {dataset} --dest {best}'")


def resolve_data_dir(dataset, data_dir=None, download=True, echo=print):
    """The folder to read ``dataset`` from.  With ``data_dir`` only that folder (or its
    <dataset> subfolder) is used, and what it lacks is named; otherwise the data is downloaded
    into the project (with a notice) when found nowhere."""
    folder = locate(dataset, data_dir)
    if folder:
        return folder
    if data_dir:
        raise BsattackError(_missing_in(dataset, data_dir))
    looked = ", ".join(dict.fromkeys(candidate_dirs(dataset, data_dir)))
    if download:
        echo(f"{dataset}: data not found in {looked}; downloading it to {project_data_dir(dataset)}")
        try:
            return fetch_data(dataset, echo=echo)
        except BsattackError as exc:
            raise BsattackError(f"{dataset} data not found (looked in {looked}) and the download "
                                f"failed: {exc}; run 'python cli.py fetch-data {dataset}' when "
                                f"online or pass --data-dir") from None
    raise BsattackError(f"{dataset} data not found (looked in {looked}); run "
                        f"'python cli.py fetch-data {dataset}' or pass --data-dir")


def load(dataset, data_dir=None, validation_size=MADRY_VALIDATION_SIZE, download=True, echo=print):
    """Train (after the first ``validation_size`` images) and test sets as a :class:`Split`.
    CIFAR-10 is read by :mod:`bsattack.cifar_data` (no hold-out, as in Madry's CIFAR code)."""
    spec = get_spec(dataset)
    if spec.name == "cifar10":
        from bsattack import cifar_data
        return cifar_data.load(data_dir, download, echo)
    folder = resolve_data_dir(dataset, data_dir, download, echo)
    arrays = {}
    for role, data_file in spec.files.items():
        arrays[role] = read_idx(_find_file(folder, data_file.name), 3 if "images" in role else 1)
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.shape[1:] != spec.image_shape[:2]:
            raise BsattackError(f"{folder}: {part} images are {images.shape[1:]}, expected "
                                f"{spec.image_shape[:2]}")
        if len(images) != len(labels):
            raise BsattackError(f"{folder}: {len(images)} {part} images but {len(labels)} labels")
        if labels.size and labels.max() >= 10:
            raise BsattackError(f"{folder}: {part} labels outside 0..9")
    if not 0 <= validation_size < len(arrays["train_images"]):
        raise BsattackError(f"validation size {validation_size} out of range for "
                            f"{len(arrays['train_images'])} training images")
    digest = hashlib.sha256()
    for role in sorted(arrays):
        digest.update(arrays[role].tobytes())
    digest.update(str(validation_size).encode())

    def images01(a):
        return (a.reshape(len(a), -1).astype(np.float32) / 255.0)

    return Split(train_x=images01(arrays["train_images"][validation_size:]),
                 train_y=arrays["train_labels"][validation_size:].astype(np.int64),
                 test_x=images01(arrays["test_images"]),
                 test_y=arrays["test_labels"].astype(np.int64),
                 source=folder, fingerprint=digest.hexdigest()[:16])
