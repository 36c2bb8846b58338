"""Download with a progress bar and SHA-256 check, and extract archives safely and atomically.

Nothing partial is ever visible at a destination: a download goes to a temporary file next to
it and is renamed (``os.replace``) only once complete and verified.  An archive is checked
member by member before anything is written: names must decode as UTF-8, be relative and
hold no '..'; links (symbolic or hard) and devices are refused outright, since the official
checkpoint and data archives hold only files and folders (so no member can be redirected
outside the target); the member count and the unpacked size are limited.  Each member's path
is resolved again against the real target folder as it is written; a zip's bytes are counted
as they are written too.  Extraction goes to a temporary folder next to the target, renamed
into place as a whole; on any failure the temporary folder is removed.
"""
import hashlib
import http.client
import os
import shutil
import socket
import stat
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib

from bsattack.atomic import write_atomic
from bsattack.errors import BsattackError
from bsattack.progress import silent

CHUNK = 1 << 16
TIMEOUT = 30  # seconds without data before a download is abandoned
# Far above every official archive (the largest, a CIFAR10 challenge checkpoint, unpacks to
# a few hundred MB); what stops a small archive from unpacking to any size.
MAX_EXTRACTED_BYTES = 8 << 30
MAX_MEMBERS = 10_000


def _open(url):
    try:
        return urllib.request.urlopen(url, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        raise BsattackError(f"download failed: HTTP {exc.code} {exc.reason} for {url}") from None
    except urllib.error.URLError as exc:
        raise BsattackError(f"cannot download {url}: {exc.reason} "
                            f"(offline or host unreachable?)") from None
    except (socket.timeout, OSError) as exc:
        raise BsattackError(f"cannot download {url}: {exc} "
                            f"(offline or host unreachable?)") from None


def download_file(url, dest, sha256=None, echo=print, progress=silent):
    """Fetch ``url`` to ``dest`` atomically; verify ``sha256`` when given, otherwise print the
    computed digest with a warning that it could not be verified.  Returns the digest.
    ``progress`` (:mod:`bsattack.progress`) counts bytes; its total is None when the server
    does not announce the size."""
    def write(out):
        digest = hashlib.sha256()
        with _open(url) as response:
            length = response.headers.get("Content-Length")
            with progress(int(length) if length else None,
                          f"downloading {os.path.basename(dest)}") as bar:
                while True:
                    try:
                        block = response.read(CHUNK)
                    except (socket.timeout, OSError, http.client.HTTPException) as exc:
                        raise BsattackError(f"download of {url} interrupted: {exc!r}") from None
                    if not block:
                        break
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
        if length and out.tell() != int(length):
            raise BsattackError(f"download of {url} incomplete: {out.tell()} of {length} bytes")
        found = digest.hexdigest()
        if sha256 and found != sha256.lower():
            raise BsattackError(f"checksum mismatch for {url}: SHA-256 {found}, expected "
                                f"{sha256.lower()}; nothing was saved")
        return found

    try:
        found = write_atomic(dest, write)
    except OSError as exc:
        raise BsattackError(f"cannot write {dest}: {exc}") from None
    if not sha256:
        echo(f"warning: no published SHA-256 for {url}; could not verify it. "
             f"Its SHA-256 is {found}")
    return found


class _Budget:
    """Counts members and bytes against the limits; refuses the archive past either."""

    def __init__(self, archive, max_bytes, max_members):
        self.archive, self.max_bytes, self.max_members = archive, max_bytes, max_members
        self.members = self.bytes = 0

    def add_member(self, size):
        self.members += 1
        if self.members > self.max_members:
            raise BsattackError(f"unsafe archive {self.archive}: more than {self.max_members} "
                                f"members; nothing was extracted")
        self.add_bytes(size)

    def add_bytes(self, size):
        self.bytes += size
        if self.bytes > self.max_bytes:
            raise BsattackError(f"unsafe archive {self.archive}: it unpacks to more than "
                                f"{self.max_bytes:,} bytes (the limit); nothing was extracted")


def _refuse(archive, name, why):
    raise BsattackError(f"unsafe archive {archive}: member {name!r} {why}; nothing was extracted")


def _member_path(archive, root, name):
    """Where member ``name`` goes below ``root`` (a real, link-free folder): refuses names that
    cannot be decoded, are absolute, hold '..' or would resolve outside ``root``."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:       # undecodable bytes, kept as surrogates by tarfile
        _refuse(archive, name, "has a name that is not valid UTF-8")
    parts = name.replace("\\", "/").split("/")
    if (name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts
            or "\0" in name):
        _refuse(archive, name, "would be written outside the target directory")
    path = os.path.join(root, *[part for part in parts if part not in ("", ".")])
    real = os.path.realpath(path)
    if real != root and not real.startswith(root + os.sep):
        _refuse(archive, name, "would be written outside the target directory")
    return path


def _check_kind(archive, name, is_link, is_plain):
    """Only regular files and folders: the official archives hold no links or devices."""
    if is_link:
        _refuse(archive, name, "is a link (refused: the official archives hold none)")
    if not is_plain:
        _refuse(archive, name, "is a device, pipe or socket")


def _extract_zip(archive, root, budget):
    with zipfile.ZipFile(archive) as handle:
        members = handle.infolist()
        for info in members:             # every check before the first byte is written
            mode = info.external_attr >> 16
            _member_path(archive, root, info.filename)
            _check_kind(archive, info.filename, stat.S_ISLNK(mode),
                        stat.S_IFMT(mode) in (0, stat.S_IFREG, stat.S_IFDIR))
            budget.add_member(info.file_size)
        budget.bytes = 0                 # now count what is really written
        for info in members:
            path = _member_path(archive, root, info.filename)
            if info.is_dir():
                os.makedirs(path, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with handle.open(info) as source, open(path, "xb") as out:
                for block in iter(lambda: source.read(CHUNK), b""):
                    budget.add_bytes(len(block))
                    out.write(block)


def _extract_tar(archive, root, budget):
    with tarfile.open(archive) as handle:
        members = []
        for info in handle:              # one header at a time: the member limit stops a flood
            _member_path(archive, root, info.name)
            _check_kind(archive, info.name, info.issym() or info.islnk(),
                        info.isfile() or info.isdir())
            budget.add_member(info.size)  # a tar member's size is exactly what it unpacks to
            members.append(info)
        handle.extractall(root, members=members, filter="data")


def extract_archive(archive, target, member_dir="", max_bytes=None, max_members=None):
    """Extract the ``member_dir`` folder of a .zip / .tar(.gz) ``archive`` (all of it when
    empty) so that its content becomes ``target``; atomic, and refuses unsafe members, links,
    and archives that unpack to more than ``max_bytes`` (default :data:`MAX_EXTRACTED_BYTES`)
    or hold more than ``max_members`` (default :data:`MAX_MEMBERS`)."""
    archive, target = os.fspath(archive), os.fspath(target).rstrip(os.sep)
    if os.path.exists(target):
        raise BsattackError(f"{target} already exists; remove it first to extract again")
    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".extract-", dir=parent)
    try:
        root = os.path.realpath(os.path.join(work, "root"))
        os.mkdir(root)
        budget = _Budget(archive, max_bytes or MAX_EXTRACTED_BYTES, max_members or MAX_MEMBERS)
        try:
            if zipfile.is_zipfile(archive):
                _extract_zip(archive, root, budget)
            elif tarfile.is_tarfile(archive):
                _extract_tar(archive, root, budget)
            else:
                raise BsattackError(f"{archive} is neither a zip nor a tar archive")
        except UnicodeDecodeError:
            raise BsattackError(f"unsafe archive {archive}: a member name is not valid UTF-8; "
                                f"nothing was extracted") from None
        except (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError, OSError,
                RuntimeError, NotImplementedError, zlib.error) as exc:
            raise BsattackError(f"corrupt archive {archive}: {exc}") from None
        source = os.path.join(root, member_dir) if member_dir else root
        if not os.path.isdir(source):
            raise BsattackError(f"archive {archive} has no folder '{member_dir}'")
        os.replace(source, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
