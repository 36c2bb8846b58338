"""MNIST-style data sets (MNIST, Fashion-MNIST): IDX readers with validation, location,
download, and the Madry split.

Images come back as float32 [N, d] in [0, 1] (the Madry models' input; the attacks shift them
to [-0.5, 0.5]) and labels as int64 [N].  The Madry split holds out the first 5,000 training
images (TF1 ``read_data_sets(validation_size=5000)``), leaving 55,000.
"""
import gzip
import hashlib
import os
import struct
import zlib

import numpy as np

from bsattack import fetch as fetching
from bsattack import file_digests
from bsattack import outputs
from bsattack.datafiles import Split, candidate_dirs, find_or_fetch, project_data_dir
from bsattack.errors import BsattackError
from bsattack.progress import silent

_IDX_TYPES = {0x08: np.uint8}


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


def find_file(folder, name):
    """``folder/name``, or its gzipped / uncompressed twin, or None."""
    for candidate in (name, name[:-3] if name.endswith(".gz") else name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def locate(spec, data_dir=None):
    """First candidate folder holding all four files, or None."""
    for folder in candidate_dirs(spec, data_dir):
        if all(find_file(folder, f.name) for f in spec.files.values()):
            return folder
    return None


def missing_files(spec, data_dir):
    """What ``data_dir`` (or its sub-folders of ``spec.folder_names``) lacks, as one line."""
    folders = candidate_dirs(spec, data_dir)
    names = [f.name for f in spec.files.values()]
    present = {folder: [n for n in names if find_file(folder, n)] for folder in folders}
    best = max(folders, key=lambda folder: len(present[folder]))
    missing = [n for n in names if n not in present[best]]
    if not present[best]:
        return (f"{spec.name} data not found in --data-dir {data_dir} (nor its "
                f"{'/'.join(spec.folder_names) or spec.name} subfolder): none of "
                f"{', '.join(names)}; run 'python cli.py fetch-data {spec.name} --dest "
                f"{data_dir}'")
    return (f"{spec.name} data incomplete in {best}: missing {', '.join(missing)} "
            f"({len(names) - len(missing)} of {len(names)} files present); run 'python cli.py "
            f"fetch-data {spec.name} --dest {best}'")


def fetch(spec, dest=None, echo=print, progress=silent):
    """Download the four files from the canonical mirror into ``dest``, checking SHA-256."""
    dest = dest or project_data_dir(spec)
    outputs.check_writable_dir(dest, f"the data folder {dest}")
    os.makedirs(dest, exist_ok=True)
    for data_file in spec.files.values():
        target = os.path.join(dest, data_file.name)
        if os.path.exists(target) and file_digests.digests(target)[0] == data_file.sha256:
            continue
        fetching.download_file(spec.base_url + data_file.name, target, sha256=data_file.sha256,
                                progress=progress)
    echo(f"{spec.name}: data in {dest}")
    return dest


_NOTED = set()     # (folder, its unpublished files and digests) already noted in this process


def check_data_files(spec, folder, others, echo=print):
    """Each file of ``spec`` in ``folder`` against the published SHA-256 values (of the file
    or of its content, :mod:`bsattack.file_digests`): another data set's published file (e.g.
    Fashion-MNIST's given as MNIST's, ``others``: the other specs in this format) is refused
    with a :class:`BsattackError`; a file that is no published one (a subset, own data, a
    damaged copy) is noted once through ``echo``, since its numbers are not comparable with
    published ones."""
    known = {}
    for other in others:
        for data_file in other.files.values():
            for digest in (data_file.sha256, data_file.raw_sha256):
                if digest:
                    known[digest] = (other.name, data_file.name)
    unpublished = []
    for data_file in spec.files.values():
        path = find_file(folder, data_file.name)
        if path is None:
            continue
        found = set(file_digests.digests(path)) - {None}
        if found & {data_file.sha256, data_file.raw_sha256}:
            continue
        for digest in found & set(known):
            name, published = known[digest]
            raise BsattackError(f"{path} is {name}'s {published}, not {spec.name}'s "
                                f"{data_file.name}: check --data-dir")
        unpublished.append((os.path.basename(path), file_digests.digests(path)[0]))
    noted = (folder, tuple(unpublished))
    if unpublished and noted not in _NOTED:
        _NOTED.add(noted)
        echo(f"note: {len(unpublished)} of {spec.name}'s files in {folder} are not the "
             f"published ones ({', '.join(name for name, _ in unpublished)}): numbers from "
             f"them are not comparable with published ones")


def load(spec, data_dir=None, validation_size=5000, download=True, echo=print):
    """Train (after the first ``validation_size`` images) and test sets as a :class:`Split`."""
    folder = find_or_fetch(spec, data_dir, locate, fetch, download, echo,
                           missing=missing_files)
    arrays = {}
    for role, data_file in spec.files.items():
        arrays[role] = read_idx(find_file(folder, data_file.name), 3 if "images" in role else 1)
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
