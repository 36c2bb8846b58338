"""Download with a progress bar and SHA-256 check, and extract archives safely and atomically.

Nothing partial is ever visible at a destination: a download goes to a temporary file next to
it and is renamed (``os.replace``) only once complete and verified; an archive is checked
member by member (no absolute path, no '..', no link leaving the target, no device file),
extracted into a temporary folder next to the target and renamed into place as a whole.
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

import click

from bsattack.atomic import write_atomic
from bsattack.errors import BsattackError

CHUNK = 1 << 16
TIMEOUT = 30  # seconds without data before a download is abandoned


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


def _progress(total, label):
    """A byte-count progress bar with ETA; a spinner-style bar when the size is unknown (click
    wants an iterable then: an empty generator has no length)."""
    return click.progressbar(iterable=None if total else (_ for _ in ()), length=total,
                             label=label, file=click.get_text_stream("stderr"))


def download_file(url, dest, sha256=None, echo=click.echo):
    """Fetch ``url`` to ``dest`` atomically; verify ``sha256`` when given, otherwise print the
    computed digest with a warning that it could not be verified.  Returns the digest."""
    def write(out):
        digest = hashlib.sha256()
        with _open(url) as response:
            length = response.headers.get("Content-Length")
            with _progress(int(length) if length else None,
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


def _inside(root, relative):
    """True when ``relative`` (already joined below ``root``) stays inside ``root``."""
    root = os.path.realpath(root)
    full = os.path.realpath(os.path.join(root, relative))
    return full == root or full.startswith(root + os.sep)


def _check_name(archive, name):
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
        raise BsattackError(f"unsafe archive {archive}: member '{name}' would be written outside "
                            f"the target directory; nothing was extracted")


def _check_link(archive, name, link_target, root):
    base = os.path.dirname(name)
    if os.path.isabs(link_target) or not _inside(root, os.path.join(base, link_target)):
        raise BsattackError(f"unsafe archive {archive}: link '{name}' points outside the target "
                            f"directory ('{link_target}'); nothing was extracted")


def _extract_zip(archive, root):
    with zipfile.ZipFile(archive) as handle:
        members = handle.infolist()
        links = {}
        for info in members:
            _check_name(archive, info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                links[info.filename] = handle.read(info).decode()
                _check_link(archive, info.filename, links[info.filename], root)
        bad = handle.testzip()
        if bad is not None:
            raise BsattackError(f"corrupt archive {archive}: member '{bad}' fails its CRC check")
        for info in members:
            if info.filename in links:
                path = os.path.join(root, info.filename)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.symlink(links[info.filename], path)
            else:
                handle.extract(info, root)


def _extract_tar(archive, root):
    with tarfile.open(archive) as handle:
        members = handle.getmembers()
        for info in members:
            _check_name(archive, info.name)
            if info.issym():
                _check_link(archive, info.name, info.linkname, root)
            elif info.islnk():
                _check_name(archive, info.linkname)
            elif not (info.isfile() or info.isdir()):
                raise BsattackError(f"unsafe archive {archive}: member '{info.name}' is a device "
                                    f"or pipe; nothing was extracted")
        handle.extractall(root, members=members, filter="data")


def extract_archive(archive, target, member_dir=""):
    """Extract the ``member_dir`` folder of a .zip / .tar(.gz) ``archive`` (all of it when
    empty) so that its content becomes ``target``; atomic, and refuses unsafe members."""
    archive, target = os.fspath(archive), os.fspath(target).rstrip(os.sep)
    if os.path.exists(target):
        raise BsattackError(f"{target} already exists; remove it first to extract again")
    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".extract-", dir=parent)
    try:
        root = os.path.join(work, "root")
        os.mkdir(root)
        try:
            if zipfile.is_zipfile(archive):
                _extract_zip(archive, root)
            elif tarfile.is_tarfile(archive):
                _extract_tar(archive, root)
            else:
                raise BsattackError(f"{archive} is neither a zip nor a tar archive")
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
            raise BsattackError(f"corrupt archive {archive}: {exc}") from None
        source = os.path.join(root, member_dir) if member_dir else root
        if not os.path.isdir(source):
            raise BsattackError(f"archive {archive} has no folder '{member_dir}'")
        os.replace(source, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
