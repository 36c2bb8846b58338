"""What every data-set reader shares: the :class:`Split` it returns, the folders a data set's
files are looked for in, and the find-or-download rule.  Readers (:mod:`bsattack.idx_data`,
:mod:`bsattack.cifar_data`) take a :class:`bsattack.datasets.DatasetSpec`; this module does
not import the registry, so the registry can import the readers."""
import os
from dataclasses import dataclass

import numpy as np

from bsattack import paths
from bsattack.errors import BsattackError

DATA_ENV = "BSATTACK_DATA_DIR"


@dataclass
class Split:
    """Train and test images as float32 in [0, 1] (the data set's layout) and int64 labels."""
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    source: str              # folder the files were read from
    fingerprint: str         # hash of the arrays, for cache keys


def project_data_dir(spec):
    """The project's own folder for the data set: ``data/<name>``."""
    return os.path.join(paths.DATA_DIR, spec.name)


def candidate_dirs(spec, data_dir=None):
    """Where the files are looked for: only --data-dir (itself or its sub-folders named in
    ``spec.folder_names``) when given; else $BSATTACK_DATA_DIR (the same way), the project's
    data/<name>, then system folders (Debian)."""
    if data_dir:
        return [data_dir] + [os.path.join(data_dir, sub) for sub in spec.folder_names]
    dirs = []
    root = os.environ.get(DATA_ENV)
    if root:
        dirs += [root] + [os.path.join(root, sub) for sub in spec.folder_names]
    dirs.append(project_data_dir(spec))
    dirs += list(spec.system_dirs)
    return dirs


def find_or_fetch(spec, data_dir, locate, fetch, download=True, echo=print, where="",
                  missing=None):
    """``locate(spec, data_dir)``; when it finds nothing: with ``data_dir`` a one-line error
    (``missing(spec, data_dir)`` names what the folder lacks, when given), else
    ``fetch(spec, None, echo)`` with a notice (only if ``download``).  The errors name the
    folders looked in (``where`` describes extra places the reader tries below them) and the
    fetch-data command."""
    found = locate(spec, data_dir)
    if found:
        return found
    if data_dir:
        raise BsattackError(missing(spec, data_dir) if missing else
                            f"{spec.name} data not found in --data-dir {data_dir} (nor its "
                            f"{'/'.join(spec.folder_names)} subfolders{where}); run 'python "
                            f"cli.py fetch-data {spec.name} --dest {data_dir}'")
    looked = ", ".join(dict.fromkeys(candidate_dirs(spec, data_dir))) + where
    hint = f"run 'python cli.py fetch-data {spec.name}'"
    if not download:
        raise BsattackError(f"{spec.name} data not found (looked in {looked}); {hint} or pass "
                            f"--data-dir")
    echo(f"{spec.name}: data not found in {looked}; downloading it to "
         f"{project_data_dir(spec)}")
    try:
        fetch(spec, None, echo)
    except BsattackError as exc:
        raise BsattackError(f"{spec.name} data not found (looked in {looked}) and the download "
                            f"failed: {exc}; {hint} when online or pass --data-dir") from None
    found = locate(spec, data_dir)
    if not found:
        raise BsattackError(f"{spec.name}: downloaded to {project_data_dir(spec)} but the files "
                            f"are not complete there; {hint}")
    return found
