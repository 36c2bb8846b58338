"""`fetch`, `checkpoints`, `fetch-data` against a local HTTP server on 127.0.0.1: good zip and
tar.gz archives, a corrupted one, path-traversal ones, a 404, and an unreachable host."""
import dataclasses
import functools
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

import cli
from bsattack import data, datasets, fetch, manifest, models, paths
from bsattack.datasets import get_spec
from bsattack.errors import BsattackError
from support import FIXTURE_VALIDATION_SIZE, ROOT

tf1 = tf.compat.v1


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests = []

    def do_GET(self):
        _Handler.requests.append(self.path)
        if self.path == "/truncated.zip":      # announces 100,000 bytes, sends 1,000
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(base URL, folder it serves)."""
    root = tmp_path_factory.mktemp("served")
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", root
    httpd.shutdown()
    httpd.server_close()


def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def checkpoint_files(small_checkpoint, inner):
    """(member name, bytes) of the fixture checkpoint laid out as the official zips are:
    models/<inner>/..., its index file naming the prefix relative to the training folder."""
    src = small_checkpoint("mnist")
    members = []
    for name in sorted(os.listdir(src)):
        content = open(os.path.join(src, name), "rb").read()
        if name == "checkpoint":
            content = content.replace(b'"checkpoint-300"',
                                      f'"models/{inner}/checkpoint-300"'.encode())
        members.append((f"models/{inner}/{name}", content))
    return members


def write_zip(path, members, links=()):
    with zipfile.ZipFile(path, "w") as handle:
        for name, content in members:
            handle.writestr(name, content)
        for name, target in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            handle.writestr(info, target)
    return path


def write_tar(path, members, links=()):
    with tarfile.open(path, "w:gz") as handle:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            handle.addfile(info, io.BytesIO(content))
        for name, target in links:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            handle.addfile(info)
    return path


def write_manifest(path, entries):
    fields = {f.name for f in dataclasses.fields(manifest.Entry)} - {"name"}
    body = {name: {k: v for k, v in {"dataset": "mnist", "description": name, **e}.items()
                   if k in fields} for name, e in entries.items()}
    path.write_text(json.dumps({"checkpoints": body}))
    return path


def run(args, manifest_path, monkeypatch):
    monkeypatch.setattr(manifest, "MANIFEST_PATH", str(manifest_path))
    result = CliRunner().invoke(cli.main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def leftovers(folder):
    return sorted(f for f in os.listdir(folder) if f.startswith("."))


def restored_logits(checkpoint, images):
    with tf.Graph().as_default(), models.new_session() as sess:
        model = models.load(sess, get_spec("mnist"), checkpoint)
        return sess.run(model.logits, {model.x01: images})


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_fetch_good_archive_then_load_and_accuracy(server, small_checkpoint, fixture_data_dir,
                                                   tmp_path, monkeypatch, kind):
    url, served = server
    writer = write_zip if kind == "zip" else write_tar
    archive = writer(served / f"good.{kind}", checkpoint_files(small_checkpoint, "good"))
    man = write_manifest(tmp_path / "m.json", {"good": {
        "url": url + archive.name, "sha256": sha256(archive), "archive_dir": "models/good"}})
    dest = tmp_path / "ckpts" / "good"
    result = run(["fetch", "good", "--dest", dest], man, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "checkpoint step 300" in result.output
    src = small_checkpoint("mnist")
    for name in os.listdir(src):   # the models/good/ content, moved up, byte for byte
        if name != "checkpoint":
            assert (dest / name).read_bytes() == open(os.path.join(src, name), "rb").read()
    assert leftovers(dest.parent) == []
    ref = np.load(os.path.join(src, "reference_logits.npz"))
    np.testing.assert_allclose(restored_logits(str(dest), ref["images"]), ref["logits"], atol=1e-4)

    before = len(_Handler.requests)
    again = run(["fetch", "good", "--dest", dest], man, monkeypatch)
    assert again.exit_code == 0 and "already present" in again.output
    assert len(_Handler.requests) == before           # no second download

    if kind == "zip":
        split = data.load(get_spec("mnist"), fixture_data_dir,
                          validation_size=FIXTURE_VALIDATION_SIZE, download=False)
        expected = models.accuracy(get_spec("mnist"), src, split.test_x, split.test_y)
        out = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "accuracy",
                              "--dataset", "mnist", "--checkpoint", str(dest), "--data-dir",
                              fixture_data_dir, "--validation-size", str(FIXTURE_VALIDATION_SIZE)],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert f"{100 * expected:.2f}%" in out.stdout


def test_corrupted_archive_is_refused_and_nothing_is_left(server, small_checkpoint, tmp_path,
                                                         monkeypatch):
    url, served = server
    good = write_zip(tmp_path / "orig.zip", checkpoint_files(small_checkpoint, "c"))
    digest = sha256(good)
    raw = bytearray(good.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (served / "corrupt.zip").write_bytes(bytes(raw))
    man = write_manifest(tmp_path / "m.json", {"corrupt": {
        "url": url + "corrupt.zip", "sha256": digest, "archive_dir": "models/c"}})
    dest = tmp_path / "ckpts" / "corrupt"
    result = run(["fetch", "corrupt", "--dest", dest], man, monkeypatch)
    assert result.exit_code == 1
    assert "checksum mismatch" in result.output and hashlib.sha256(raw).hexdigest() in result.output
    assert not dest.exists() and leftovers(dest.parent) == []


@pytest.mark.parametrize("kind,member,link", [
    ("zip", "models/t/../../../evil.txt", None),
    ("zip", "/tmp/bsattack-evil-absolute.txt", None),
    ("zip", "models/t/escape", "../../../../outside"),
    ("tar.gz", "../evil.txt", None),
    ("tar.gz", "models/t/escape", "/etc/passwd"),
])
def test_path_traversal_is_refused(server, small_checkpoint, tmp_path, monkeypatch, kind,
                                   member, link):
    url, served = server
    writer = write_zip if kind == "zip" else write_tar
    members = checkpoint_files(small_checkpoint, "t")
    bad = dict(links=[(member, link)]) if link else {}
    if not link:
        members.append((member, b"owned"))
    archive = writer(served / f"trav-{len(_Handler.requests)}.{kind}", members, **bad)
    man = write_manifest(tmp_path / "m.json", {"trav": {
        "url": url + archive.name, "sha256": sha256(archive), "archive_dir": "models/t"}})
    dest = tmp_path / "a" / "b" / "trav"
    result = run(["fetch", "trav", "--dest", dest], man, monkeypatch)
    assert result.exit_code == 1 and "unsafe archive" in result.output, result.output
    assert not dest.exists() and leftovers(dest.parent) == []
    written = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs]
    assert not any("evil" in p or "outside" in p for p in written)
    assert not os.path.exists("/tmp/bsattack-evil-absolute.txt")


def test_http_404_and_offline(server, tmp_path, monkeypatch):
    url, _ = server
    man = write_manifest(tmp_path / "m.json", {
        "missing": {"url": url + "nope.zip", "sha256": "0" * 64, "archive_dir": "models/x"},
        "offline": {"url": closed_port_url() + "x.zip", "sha256": "0" * 64, "archive_dir": "x"}})
    result = run(["fetch", "missing", "--dest", tmp_path / "m"], man, monkeypatch)
    assert result.exit_code == 1 and "HTTP 404" in result.output
    result = run(["fetch", "offline", "--dest", tmp_path / "o"], man, monkeypatch)
    assert result.exit_code == 1 and "offline or host unreachable" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert os.listdir(tmp_path) == ["m.json"]


def test_connection_dropped_mid_download_leaves_nothing(server, tmp_path):
    url, _ = server
    dest = tmp_path / "t.zip"
    with pytest.raises(BsattackError) as err:
        fetch.download_file(url + "truncated.zip", dest, sha256="0" * 64)
    assert "truncated.zip" in str(err.value) and "\n" not in str(err.value)
    assert os.listdir(tmp_path) == []


def test_unpublished_checksum_prints_digest_and_warns(server, tmp_path):
    url, served = server
    (served / "blob.bin").write_bytes(b"x" * 100_000)
    lines = []
    dest = tmp_path / "blob.bin"
    fetch.download_file(url + "blob.bin", dest, echo=lines.append)
    assert dest.read_bytes() == b"x" * 100_000
    assert "could not verify" in lines[0]
    assert hashlib.sha256(b"x" * 100_000).hexdigest() in lines[0]


def test_checkpoints_lists_manifest_and_presence(small_checkpoint, tmp_path, monkeypatch):
    from bsattack.pipelines import fetching
    folder = tmp_path / "checkpoints"
    shutil.copytree(small_checkpoint("mnist"), folder / "mnist_secret")
    monkeypatch.setattr(fetching, "CHECKPOINTS_DIR", str(folder))
    man = write_manifest(tmp_path / "m.json", {"mnist_secret": {"url": "http://x/s.zip"},
                                               "mnist_natural": {"url": "http://x/n.zip"}})
    result = run(["checkpoints"], man, monkeypatch)
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()}
    present = folder / "mnist_secret"
    size = sum(os.path.getsize(present / f) for f in os.listdir(present))
    assert rows["mnist_secret"][2:5] == ["yes", "300", f"{size / 1e6:.1f}"]
    assert rows["mnist_natural"][2:4] == ["no", "-"]


def test_unknown_checkpoint_name(tmp_path, monkeypatch):
    man = write_manifest(tmp_path / "m.json", {"a": {"url": "http://x/a.zip"}})
    result = run(["fetch", "zzz"], man, monkeypatch)
    assert result.exit_code == 1 and "unknown checkpoint 'zzz' (known: a)" in result.output


def test_shipped_manifest_is_complete():
    entries = manifest.load()
    official = {"mnist_natural", "mnist_adv_trained", "mnist_secret", "cifar10_naturally_trained",
                "cifar10_adv_trained", "cifar10_secret"}
    assert official | {"fashion_adv", "fashion_nat"} <= set(entries)
    for name in official:
        entry = entries[name]
        assert entry.url.startswith("https://") and entry.archive_dir.startswith("models/")
        assert entry.sha256 is None or len(entry.sha256) == 64
        assert entry.sha256 or "none published" in entry.sha256_source
    assert entries["mnist_secret"].sha256 == \
        "14eea09c72092db5c2eb5e34cd105974f42569281d2f34826316e356d057f96d"


def fake_mnist_spec(monkeypatch, fixture_data_dir, base_url, corrupt=None):
    spec = datasets.get_spec("mnist")
    def digest(role, f):
        return "0" * 64 if role == corrupt else sha256(os.path.join(fixture_data_dir, "mnist",
                                                                     f.name))
    files = {role: dataclasses.replace(f, sha256=digest(role, f)) for role, f in spec.files.items()}
    monkeypatch.setitem(datasets.DATASETS, "mnist", dataclasses.replace(spec, base_url=base_url,
                                                                        files=files))


def test_fetch_data_from_local_server(server, fixture_data_dir, tmp_path, monkeypatch):
    url, served = server
    shutil.copytree(os.path.join(fixture_data_dir, "mnist"), served / "mnist")
    fake_mnist_spec(monkeypatch, fixture_data_dir, url + "mnist/")
    dest = tmp_path / "data"
    result = run(["fetch-data", "mnist", "--dest", dest], tmp_path / "unused", monkeypatch)
    assert result.exit_code == 0, result.output
    for name in os.listdir(served / "mnist"):
        assert (dest / name).read_bytes() == (served / "mnist" / name).read_bytes()
    split = data.load(get_spec("mnist"), str(dest), validation_size=FIXTURE_VALIDATION_SIZE,
                      download=False)
    assert split.test_x.shape == (500, 784)
    before = len(_Handler.requests)
    assert run(["fetch-data", "mnist", "--dest", dest], tmp_path, monkeypatch).exit_code == 0
    assert len(_Handler.requests) == before            # all present with the right checksum


def test_fetch_data_checksum_mismatch(server, fixture_data_dir, tmp_path, monkeypatch):
    url, served = server
    if not (served / "mnist").exists():
        shutil.copytree(os.path.join(fixture_data_dir, "mnist"), served / "mnist")
    fake_mnist_spec(monkeypatch, fixture_data_dir, url + "mnist/", corrupt="test_labels")
    dest = tmp_path / "data"
    result = run(["fetch-data", "mnist", "--dest", dest], tmp_path, monkeypatch)
    assert result.exit_code == 1 and "checksum mismatch" in result.output
    assert "t10k-labels-idx1-ubyte.gz" not in os.listdir(dest) and leftovers(dest) == []


def test_offline_data_errors(fixture_data_dir, tmp_path, monkeypatch):
    fake_mnist_spec(monkeypatch, fixture_data_dir, closed_port_url())
    result = run(["fetch-data", "mnist", "--dest", tmp_path / "d"], tmp_path, monkeypatch)
    assert result.exit_code == 1 and "offline or host unreachable" in result.output
    monkeypatch.setattr(paths, "DATA_DIR", str(tmp_path / "project"))
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    with pytest.raises(BsattackError) as err:
        data.load(get_spec("mnist"), echo=lambda *_: None)
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "project") in message
    assert "offline or host unreachable" in message and "cli.py fetch-data mnist" in message


def test_default_checkpoint_is_downloaded_when_missing(monkeypatch, tmp_path):
    """A manifest name that is not in checkpoints/ is fetched (with a notice); a failed
    download names the fetch command."""
    from bsattack import manifest
    from bsattack.errors import BsattackError
    monkeypatch.setattr(manifest, "CHECKPOINTS_DIR", str(tmp_path))
    fetched = []
    monkeypatch.setattr(manifest, "fetch_checkpoint",
                        lambda name: fetched.append(name) or str(tmp_path / name))
    notices = []
    found = manifest.resolve_checkpoint(get_spec("mnist"), echo=notices.append)
    assert found == str(tmp_path / "mnist_secret")
    assert fetched == ["mnist_secret"] and "downloading" in notices[0]

    def offline(name):
        raise BsattackError("cannot download: offline")
    monkeypatch.setattr(manifest, "fetch_checkpoint", offline)
    with pytest.raises(BsattackError, match="fetch mnist_natural"):
        manifest.resolve_checkpoint(get_spec("mnist"), natural=True)
