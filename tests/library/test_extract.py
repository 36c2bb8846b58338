"""Archive extraction against hostile archives built in tmp_path: link chains that climb out
through '.' and '..', absolute and '..' names, names and link targets that are not UTF-8, a
zip bomb over the size limit, a member flood.  Each is refused with one line, and nothing is
left behind: no target, no temporary folder, no file anywhere outside."""
import io
import os
import tarfile

import pytest

from bsattack import fetch
from bsattack.errors import BsattackError
from support.hostile_cases import write_tar as tar_with, write_zip as zip_with


def written_files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, fs in os.walk(root) for f in fs)


def refused(tmp_path, archive, message, **limits):
    """Extract ``archive`` to tmp_path/out/a/t; assert the refusal and that nothing is left."""
    target = tmp_path / "out" / "a" / "t"
    with pytest.raises(BsattackError) as err:
        fetch.extract_archive(archive, target, **limits)
    text = str(err.value)
    assert message in text and "\n" not in text, text
    assert written_files(tmp_path / "out") == []
    assert os.listdir(tmp_path / "out" / "a") == []
    assert not any("evil" in f for f in written_files(tmp_path))
    return text


# Each link checked alone, as text, stays inside; extracted in order, l1 is the target itself,
# so l1/a is a link to the target's parent and a/b one to the parent's parent: a/b/evil.txt
# lands two levels above the target.
CHAIN = [("l1", "."), ("l1/a", ".."), ("a/b", "..")]


def test_zip_link_chain_cannot_escape(tmp_path):
    archive = zip_with(tmp_path / "chain.zip", links=[(n, t.encode()) for n, t in CHAIN],
                       files=[("a/b/evil.txt", b"owned")])
    refused(tmp_path, archive, "is a link")


def test_tar_link_chain_cannot_escape(tmp_path):
    archive = tar_with(tmp_path / "chain.tar.gz", links=CHAIN,
                       files=[("a/b/evil.txt", b"owned")])
    refused(tmp_path, archive, "is a link")


@pytest.mark.parametrize("name", ["/tmp/bsattack-evil-abs.txt", "../evil.txt",
                                  "ok/../../evil.txt", "C:evil.txt", "a\\..\\..\\evil.txt"])
@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_names_outside_the_target_are_refused(tmp_path, kind, name):
    files = [("ok/fine.txt", b"fine"), (name, b"owned")]
    archive = (zip_with(tmp_path / "n.zip", files) if kind == "zip"
               else tar_with(tmp_path / "n.tar.gz", files))
    refused(tmp_path, archive, "outside the target directory")
    assert not os.path.exists("/tmp/bsattack-evil-abs.txt")


def test_non_utf8_link_target_is_refused_without_traceback(tmp_path):
    archive = zip_with(tmp_path / "l.zip", files=[("a.txt", b"x")], links=[("bad", b"\xff\xfe/..")])
    refused(tmp_path, archive, "is a link")


def test_non_utf8_names_are_refused(tmp_path):
    archive = tar_with(tmp_path / "n.tar.gz", files=[("ev\udcffil.txt", b"x")])
    refused(tmp_path, archive, "not valid UTF-8")
    archive = zip_with(tmp_path / "n.zip", files=[("PLACEHOLDER", b"x")])
    data = bytearray(archive.read_bytes().replace(b"PLACEHOLDER", b"bad\xff\xfe\xfd\xfcname"))
    # and the UTF-8 name flag (bit 11) set in the local and the central header
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        data[at + offset + 1] |= 0x08
    archive.write_bytes(bytes(data))
    refused(tmp_path, archive, "not valid UTF-8")


def test_zip_bomb_over_the_limit_is_refused(tmp_path, monkeypatch):
    archive = zip_with(tmp_path / "bomb.zip", files=[("zeros.bin", bytes(4 << 20))])
    assert archive.stat().st_size < 20_000                  # 4 MB of zeros in a few KB
    refused(tmp_path, archive, "unpacks to more than", max_bytes=1 << 20)
    monkeypatch.setattr(fetch, "MAX_EXTRACTED_BYTES", 1 << 20)     # the default applies too
    refused(tmp_path, archive, "unpacks to more than 1,048,576 bytes")


def test_zip_lying_about_its_size_is_stopped(tmp_path):
    """Central directory and local header claim 10 bytes; the deflated stream holds 4 MB."""
    archive = zip_with(tmp_path / "liar.zip", files=[("zeros.bin", bytes(4 << 20))])
    data = bytearray(archive.read_bytes())
    size = (4 << 20).to_bytes(4, "little")
    data = data.replace(size, (10).to_bytes(4, "little"))
    archive.write_bytes(bytes(data))
    refused(tmp_path, archive, "", max_bytes=1 << 20)


def test_tar_bomb_and_member_flood_are_refused(tmp_path):
    archive = tar_with(tmp_path / "bomb.tar.gz", files=[("zeros.bin", bytes(2 << 20))])
    refused(tmp_path, archive, "unpacks to more than", max_bytes=1 << 20)
    flood = tar_with(tmp_path / "flood.tar.gz", files=[(f"f{i}", b"") for i in range(50)])
    refused(tmp_path, flood, "more than 20 members", max_members=20)


def test_hard_links_and_devices_are_refused(tmp_path):
    archive = tmp_path / "h.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        info = tarfile.TarInfo("a.txt")
        info.size = 1
        handle.addfile(info, io.BytesIO(b"x"))
        link = tarfile.TarInfo("b.txt")
        link.type, link.linkname = tarfile.LNKTYPE, "a.txt"
        handle.addfile(link)
    refused(tmp_path, archive, "is a link")
    device = tmp_path / "d.tar.gz"
    with tarfile.open(device, "w:gz") as handle:
        info = tarfile.TarInfo("null")
        info.type = tarfile.CHRTYPE
        handle.addfile(info)
    refused(tmp_path, device, "device")


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_plain_archive_extracts_byte_for_byte(tmp_path, kind):
    files = [("models/x/checkpoint", b"index"), ("models/x/checkpoint-1.data", os.urandom(3000)),
             ("models/x/sub/./deep.txt", b"deep"), ("other.txt", b"left out")]
    archive = (zip_with(tmp_path / "p.zip", files) if kind == "zip"
               else tar_with(tmp_path / "p.tar.gz", files))
    target = tmp_path / "out" / "t"
    fetch.extract_archive(archive, target, member_dir="models/x")
    assert written_files(target) == ["checkpoint", "checkpoint-1.data", os.path.join("sub", "deep.txt")]
    assert (target / "checkpoint-1.data").read_bytes() == files[1][1]
    assert os.listdir(tmp_path / "out") == ["t"]
