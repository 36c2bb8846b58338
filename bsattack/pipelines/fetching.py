"""`fetch`, `checkpoints`, `fetch-data`: the checkpoints of the manifest and the data sets'
files, downloaded and verified (:mod:`bsattack.manifest`, :mod:`bsattack.data`)."""
import os
from dataclasses import dataclass

from bsattack import data, manifest
from bsattack.paths import CHECKPOINTS_DIR
from bsattack.progress import silent


@dataclass(frozen=True)
class Listed:
    """One checkpoint folder: its name, data set ('?' outside the manifest), whether it is
    present, its step and size in bytes (None when absent) and where it comes from."""
    name: str
    dataset: str
    present: bool
    step: int
    size: int
    source: str


def fetch_checkpoint(name, dest=None, echo=print, progress=silent):
    """The manifest's checkpoint ``name`` downloaded, verified and unpacked into ``dest``
    (default: checkpoints/NAME); nothing happens when it is present."""
    return manifest.fetch_checkpoint(name, dest, echo=echo, progress=progress)


def fetch_data(spec, dest=None, echo=print, progress=silent):
    """The data set's files downloaded into ``dest`` (default: data/NAME), each checked
    against its SHA-256; files already present with the right checksum are kept."""
    return data.fetch_data(spec, dest, echo=echo, progress=progress)


def list_checkpoints(folder=None):
    """The manifest's checkpoints, then the other checkpoint folders in ``folder`` (default:
    the project's checkpoints/), as :class:`Listed` rows."""
    folder = folder or CHECKPOINTS_DIR
    entries = manifest.load()
    rows = []
    for entry in entries.values():
        found = manifest.status(os.path.join(folder, entry.name))
        rows.append(Listed(entry.name, entry.dataset, found.present,
                           found.step if found.present else None,
                           found.size if found.present else None,
                           entry.url or "ships with the project"))
    others = sorted(d for d in os.listdir(folder) if d not in entries
                    and not d.startswith(".") and os.path.isdir(os.path.join(folder, d)))
    for name in others:
        found = manifest.status(os.path.join(folder, name))
        if found.present:
            rows.append(Listed(name, "?", True, found.step, found.size,
                               "local folder, not in the manifest"))
    return rows
