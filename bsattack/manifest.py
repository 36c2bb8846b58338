"""The checkpoint manifest (``checkpoints/manifest.json``): look entries up, fetch them into
``checkpoints/NAME/`` as a directory ``madry_models.checkpoint.resolve_prefix`` accepts, report
what is present, and resolve a ``--checkpoint`` value (a path, a name, or a data set's default)
to a folder, fetching a missing official one.

The official zips unpack to ``models/<x>/checkpoint-STEP.*`` (MadryLab ``fetch_model.py``
runs ``extractall`` in the working directory); fetch keeps only that folder's content.
"""
import json
import os
import re
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass

from bsattack import fetch, outputs
from bsattack.errors import BsattackError
from bsattack.paths import CHECKPOINTS_DIR
from bsattack.progress import silent

MANIFEST_PATH = os.path.join(CHECKPOINTS_DIR, "manifest.json")
_STEP = re.compile(r"-(\d+)$")


@dataclass(frozen=True)
class Entry:
    name: str
    dataset: str
    description: str
    url: str = None
    sha256: str = None
    sha256_source: str = ""
    archive_dir: str = None
    step: int = None
    source: str = ""


def load(path=None):
    """{name: Entry} of the manifest."""
    path = path or MANIFEST_PATH
    try:
        with open(path) as handle:
            raw = json.load(handle)["checkpoints"]
        return {name: Entry(name=name, **fields) for name, fields in raw.items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BsattackError(f"cannot read the checkpoint manifest {path}: {exc}") from None


def get(name, path=None):
    entries = load(path)
    if name not in entries:
        raise BsattackError(f"unknown checkpoint '{name}' (known: {', '.join(entries)})")
    return entries[name]


@dataclass(frozen=True)
class Status:
    present: bool
    step: int = None
    size: int = 0          # bytes of the checkpoint's files
    problem: str = ""      # why a folder that exists is not usable


def status(folder):
    """Whether ``folder`` holds a loadable checkpoint, its step and size."""
    if not os.path.isdir(folder):
        return Status(False)
    from madry_models import checkpoint as ckpt   # TensorFlow: only when a folder is checked
    try:
        prefix = ckpt.resolve_prefix(folder)
    except BsattackError as exc:
        return Status(False, problem=str(exc))
    match = _STEP.search(os.path.basename(prefix))
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)
               if os.path.isfile(os.path.join(folder, f)))
    return Status(True, int(match.group(1)) if match else None, size)


def _archive_name(url):
    return os.path.basename(urllib.parse.urlparse(url).path) or "download"


def _notice(text):
    print(text, file=sys.stderr)


def fetch_checkpoint(name, dest=None, manifest_path=None, echo=print, progress=silent):
    """Download, verify and unpack checkpoint ``name`` into ``dest`` (default
    ``checkpoints/NAME``); a no-op when a checkpoint is already there.  Returns ``dest``."""
    entry = get(name, manifest_path)
    dest = os.path.abspath(dest or os.path.join(CHECKPOINTS_DIR, name))
    found = status(dest)
    if found.present:
        echo(f"{name}: already present in {dest} (step {found.step}); nothing to do")
        return dest
    if not entry.url:
        raise BsattackError(f"{name} has no download URL: it ships with the project in "
                            f"checkpoints/{name} ({dest} holds no checkpoint; restore it from git)")
    if os.path.exists(dest):
        raise BsattackError(f"{dest} exists but holds no checkpoint ({found.problem}); "
                            f"remove it and fetch again")
    outputs.check_writable_dir(dest, f"the checkpoint folder {dest}")
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=parent) as work:
        archive = os.path.join(work, _archive_name(entry.url))
        fetch.download_file(entry.url, archive, sha256=entry.sha256, echo=echo,
                            progress=progress)
        unpacked = fetch.extract_archive(archive, os.path.join(work, "checkpoint"),
                                         entry.archive_dir or "")
        checked = status(unpacked)
        if not checked.present:
            raise BsattackError(f"{entry.url}: the archive's '{entry.archive_dir}' holds no "
                                f"checkpoint ({checked.problem})")
        try:
            os.replace(unpacked, dest)
        except OSError as exc:     # e.g. another fetch created dest meanwhile
            raise BsattackError(f"cannot move the checkpoint into {dest}: {exc}") from None
    echo(f"{name}: checkpoint step {checked.step} in {dest}")
    return dest


def resolve_checkpoint(spec, checkpoint=None, natural=False, echo=_notice,
                       option="--checkpoint"):
    """A checkpoint path for ``option`` (the command's option that named it): an existing
    path, a name under ``checkpoints/``, or (when None) the default adversarially (or
    naturally) trained model of the data set ``spec``, fetched (with a notice through
    ``echo``) when it is a manifest entry not yet present.  The commands call it once per
    option; everything below them takes the path it returns."""
    name = checkpoint or (spec.natural_checkpoint if natural else spec.default_checkpoint)
    if os.path.exists(name) or os.path.exists(name + ".index"):
        return name
    local = os.path.join(CHECKPOINTS_DIR, name)
    if os.path.isdir(local):
        return local
    if checkpoint and (os.sep in checkpoint or checkpoint.startswith(".")):
        raise BsattackError(f"checkpoint directory not found: {checkpoint}")
    entry = load().get(name)
    if entry is not None and entry.url:
        echo(f"checkpoint '{name}' not in {CHECKPOINTS_DIR}; downloading it")
        try:
            return fetch_checkpoint(name)
        except BsattackError as exc:
            raise BsattackError(f"checkpoint '{name}' not found in {CHECKPOINTS_DIR} and the "
                                f"download failed ({exc}); run 'python cli.py fetch {name}' "
                                f"when online or pass {option} DIR") from None
    raise BsattackError(f"checkpoint '{name}' not found (not a path, not in {CHECKPOINTS_DIR}); "
                        f"run 'python cli.py fetch {name}' or pass {option} DIR")
