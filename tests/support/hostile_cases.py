"""The adversarial user's cases: hostile options, output locations, archives, crafted files,
checkpoints, data folders, caches and run-time conditions, each through the command line
(``cli.main`` under Click's test runner, in this process) in a sandbox folder of its own.
``tests/commands/test_reliability_cli.py`` runs every case; ``bench/reliability.py`` runs them and
writes results/reliability.md.

A case is handled cleanly when the command refuses it with one ``Error:`` line (exit 1, or 2
for a usage error) that names the reason (the option under test, "cannot write", ...) and no
traceback, or, for a damaged cache, announces the rebuild, exits 0 and gives the same result
as a fresh run, or, for a case expected to succeed, exits 0 and passes its check, or, for
Ctrl-C, exits 130 with its one "interrupted" line.  Data lost
counts the cases that changed or removed a file that existed before (other than a cache
announced as rebuilt) or left a partial or temporary file behind.  Fixture data and the
fixture checkpoint (tests/fixtures) keep it short; archives are served from 127.0.0.1 with the
extraction limit lowered to 1 MiB.  Sandbox paths read ``<sandbox>``, the repository's
files their path in it (``tests/fixtures/...``); the absolute paths
that remain (``/proc/nonexistent``, ``/sys``, ``/etc/passwd``, the archive member
``/bsattack-evil``, a name no file system holds) are the hostile inputs themselves, the same on
every Linux machine.
"""
import contextlib
import errno
import functools
import hashlib
import http.server
import io
import os
import pickle
import shutil
import socket
import sys
import tarfile
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from unittest import mock

import numpy as np

from support import FIXTURES, ROOT  # tests/ is on sys.path (pytest; bench/reliability.py)

if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import cli  # noqa: E402
from bsattack import manifest, outputs  # noqa: E402
from bsattack.datasets import get_spec  # noqa: E402

CHECKPOINT = os.path.join(FIXTURES, "checkpoints", "mnist_small")
DATA = os.path.join(FIXTURES, "data")
COMMON = ["--data-dir", DATA, "--validation-size", "100"]
N = 500                                         # fixture test images
TEMPORARY = (".tmp-", ".extract-", ".fetch-", ".write-check-")
SHORT_ATTACK = ["--n", "20", "--batch-size", "20"]


@dataclass
class Case:
    category: str
    name: str
    setup: object                 # sandbox -> command-line arguments
    rebuild: bool = False         # a damaged cache: expect a notice, exit 0, fresh results
    expect: str = ""              # the refusal must say this (e.g. name the option)
    succeed: object = None        # (sandbox, output) -> bool: the command must exit 0 and pass this
    patch: object = None          # () -> context manager in force during the command
    interrupted: bool = False     # Ctrl-C: expect exit 130 and the one "interrupted" line

    @property
    def expectation(self):
        if self.interrupted:
            return "exit 130, one line: interrupted (a rerun resumes from the cache)"
        if self.rebuild:
            return "exit 0, rebuild announced, same results as a fresh run"
        if self.succeed is not None:
            return "exit 0, " + (self.succeed.__doc__ or "its check passes").strip()
        return "one Error: line" + (f" naming {self.expect!r}" if self.expect else "")


@dataclass
class Outcome:
    clean: bool                   # met the expectation
    lost: bool                    # a file changed or removed, or something left behind
    exit_code: int
    what: str                     # the one line (the error, or the last line printed)


CASES = []


def case(category, name, rebuild=False, expect="", succeed=None, patch=None, interrupted=False):
    def register(setup):
        CASES.append(Case(category, name, setup, rebuild, expect, succeed, patch, interrupted))
        return setup
    return register


# --- options ------------------------------------------------------------------------------------
OPTIONS = "non-finite or out-of-range options"
_TRAIN = ["train", "--dataset", "fashion", "--steps", "2", "--k", "2", "--widths", "8,16,64",
          *COMMON]
for _args in (["--eps", "nan"], ["--eps", "-inf"], ["--eps", "0", "--lr", "nan"],
              ["--eps", "0", "--lr", "inf"], ["--eps", "0", "--lr", "1e999"],
              ["--eps", "0.1", "--a", "nan"], ["--eps", "0", "--seed", "-1"],
              ["--eps", "0", "--seed", str(2**32)]):
    case(OPTIONS, "train " + " ".join(_args), expect=f"'{_args[-2]}'")(
        lambda box, a=_args: _TRAIN + ["--out", os.path.join(box, "run")] + a)
_ANALYSIS = ("blindspot-histogram", "distance", "kl", "blindspot-map")
for _command, _args in (
        ("blindspot", ["--attack", "pgd", "--pgd-step-size", "nan"]),
        ("blindspot", ["--attack", "pgd", "--pgd-step-size", "inf"]),
        ("blindspot", ["--attack", "pgd", "--seed", "-1"]),
        ("blindspot", ["--attack", "pgd", "--alpha", "nan"]),
        ("blindspot", ["--attack", "pgd", "--beta", "inf"]),
        ("attack", ["--seed", "-1"]),
        ("leaderboard", ["--seed", str(2**32)]),
        ("blindspot-histogram", ["--alpha", "nan"]),
        ("distance", ["--p", "nan"]),
        ("kl", ["--perplexity", "inf"]),
        ("kl", ["--tsne-seed", "-1"]),
        ("blindspot-map", ["--alpha-min", "nan"]),
        ("blindspot-map", ["--alphas", "0.6,nan,1"])):
    case(OPTIONS, f"{_command} {' '.join(_args)}", expect=f"'{_args[-2]}'")(
        lambda box, c=_command, a=_args: [c, "--checkpoint", CHECKPOINT, *COMMON,
                                          "--out", os.path.join(box, "out"), *a]
        + ([] if c in _ANALYSIS else ["--n", "20"])
        + (["--cache-dir", os.path.join(box, "cache")] if c == "blindspot" else []))


# --- output and cache locations -------------------------------------------------------------------
LOCATIONS = "unwritable output or cache locations"


def _bad_locations(box):
    open(os.path.join(box, "file"), "w").close()
    return {"/proc/nonexistent": "/proc/nonexistent/x", "under a file": os.path.join(box, "file", "x"),
            "name too long": os.path.join(box, "n" * 300), "read-only (sysfs)": "/sys/x"}


def _attack_file(box):
    from bsattack import data
    split = data.load(get_spec("mnist"), DATA, 100, download=False, echo=lambda *_: None)
    path = os.path.join(box, "attack.npy")
    np.save(path, split.test_x[:N])
    return path


for _where in ("/proc/nonexistent", "under a file", "name too long", "read-only (sysfs)"):
    case(LOCATIONS, f"evaluate --pred-out {_where}", expect="cannot write")(
        lambda box, w=_where: ["evaluate", "--checkpoint", CHECKPOINT, *COMMON, "--n", str(N),
                               "--attack-file", _attack_file(box),
                               "--pred-out", _bad_locations(box)[w] + ".npy"])
    case(LOCATIONS, f"train --out {_where}", expect="cannot write")(
        lambda box, w=_where: _TRAIN + ["--eps", "0", "--out", _bad_locations(box)[w]])
    case(LOCATIONS, f"embed --cache-dir {_where}", expect="cannot write")(
        lambda box, w=_where: ["embed", "--checkpoint", CHECKPOINT, "--natural-checkpoint",
                               CHECKPOINT, "--extractor", "adv", *COMMON,
                               "--cache-dir", _bad_locations(box)[w]])
    case(LOCATIONS, f"blindspot --out {_where}", expect="cannot write")(
        lambda box, w=_where: ["blindspot", "--attack", "pgd", "--pgd-steps", "2",
                               "--checkpoint", CHECKPOINT, *COMMON, *SHORT_ATTACK,
                               "--cache-dir", os.path.join(box, "cache"),
                               "--out", _bad_locations(box)[w]])
    case(LOCATIONS, f"blindspot --cache-dir {_where}", expect="cannot write")(
        lambda box, w=_where: ["blindspot", "--attack", "pgd", "--pgd-steps", "2",
                               "--checkpoint", CHECKPOINT, *COMMON, *SHORT_ATTACK,
                               "--cache-dir", _bad_locations(box)[w],
                               "--out", os.path.join(box, "out")])
for _command in ("attack", "leaderboard"):
    case(LOCATIONS, f"{_command} --out under a file", expect="cannot write")(
        lambda box, c=_command: [c, "--checkpoint", CHECKPOINT, *COMMON, "--n", "20",
                                 "--out", _bad_locations(box)["under a file"]])
case(LOCATIONS, "attack --out a folder", expect="cannot write")(
    lambda box: os.mkdir(os.path.join(box, "dir.npy")) or
    ["attack", "--checkpoint", CHECKPOINT, *COMMON, "--n", "20", "--out",
     os.path.join(box, "dir.npy")])
case(LOCATIONS, "kl --out /proc/nonexistent", expect="cannot write")(
    lambda box: ["kl", "--checkpoint", CHECKPOINT, "--natural-checkpoint", CHECKPOINT, *COMMON,
                 "--out", "/proc/nonexistent/x"])
case(LOCATIONS, "blindspot-map --out under a file", expect="cannot write")(
    lambda box: ["blindspot-map", "--checkpoint", CHECKPOINT, *COMMON,
                 "--out", _bad_locations(box)["under a file"]])
case(LOCATIONS, "fetch-data --dest /proc/nonexistent", expect="cannot write")(
    lambda box: ["fetch-data", "mnist", "--dest", "/proc/nonexistent/d"])


# --- archives -------------------------------------------------------------------------------------
ARCHIVES = "hostile archives (fetch)"
@functools.lru_cache(maxsize=None)
def _served():
    """(folder, URL) of a local HTTP server, started on first use."""
    folder = tempfile.mkdtemp(prefix="bsattack-served-")
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=folder))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return folder, f"http://127.0.0.1:{httpd.server_address[1]}/"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def write_zip(path, files=(), links=()):
    """A zip of (name, target bytes) symbolic links, then (name, bytes) files."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as handle:
        for member, target in links:
            info = zipfile.ZipInfo(member)
            info.external_attr = 0o120777 << 16
            handle.writestr(info, target)
        for member, content in files:
            handle.writestr(member, content)
    return path


def write_tar(path, files=(), links=(), link_type=tarfile.SYMTYPE):
    """A GNU tar.gz of (name, target) links, then (name, bytes) files; surrogates in names
    become the raw bytes they stand for."""
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as handle:
        for member, target in links:
            info = tarfile.TarInfo(member)
            info.type, info.linkname = link_type, target
            handle.addfile(info)
        for member, content in files:
            info = tarfile.TarInfo(member)
            info.size = len(content)
            handle.addfile(info, io.BytesIO(content))
    return path


def _zip(name, files=(), links=()):
    return write_zip(os.path.join(_served()[0], name), files, links)


def _tar(name, files=(), links=(), link_type=tarfile.SYMTYPE):
    return write_tar(os.path.join(_served()[0], name), files, links, link_type)


def _fetch_args(box, archive):
    digest = hashlib.sha256(open(archive, "rb").read()).hexdigest()
    path = os.path.join(box, "manifest.json")
    with open(path, "w") as handle:
        handle.write('{"checkpoints": {"x": {"dataset": "mnist", "description": "x", '
                     f'"url": "{_served()[1]}{os.path.basename(archive)}", "sha256": "{digest}", '
                     '"archive_dir": "models/x"}}}')
    manifest.MANIFEST_PATH = path
    return ["fetch", "x", "--dest", os.path.join(box, "a", "b", "x")]


_GOOD = [("models/x/checkpoint", b'model_checkpoint_path: "checkpoint-1"\n')]
_CHAIN = [("l1", "."), ("l1/a", ".."), ("a/b", "..")]
for _name, _make in (
        ("zip: link chain through '.' then '..'",
         lambda: _zip("chain.zip", _GOOD + [("a/b/evil.txt", b"x")],
                      [(n, t.encode()) for n, t in _CHAIN])),
        ("tar: link chain through '.' then '..'",
         lambda: _tar("chain.tar.gz", _GOOD + [("a/b/evil.txt", b"x")], _CHAIN)),
        ("zip: absolute member", lambda: _zip("abs.zip", _GOOD + [("/bsattack-evil", b"x")])),
        ("zip: '..' member", lambda: _zip("dots.zip", _GOOD + [("models/x/../../../evil", b"x")])),
        ("tar: '..' member", lambda: _tar("dots.tar.gz", _GOOD + [("../evil", b"x")])),
        ("tar: hard link to /etc/passwd",
         lambda: _tar("hard.tar.gz", _GOOD, [("models/x/p", "/etc/passwd")], tarfile.LNKTYPE)),
        ("zip: link target not UTF-8", lambda: _zip("l8.zip", _GOOD, [("models/x/l", b"\xff\xfe")])),
        ("tar: member name not UTF-8", lambda: _tar("n8.tar.gz", _GOOD + [("models/x/\udcff", b"x")])),
        ("zip bomb (4 MiB of zeros, limit 1 MiB)",
         lambda: _zip("bomb.zip", _GOOD + [("models/x/zeros", bytes(4 << 20))])),
        ("tar bomb (2 MiB, limit 1 MiB)",
         lambda: _tar("bomb.tar.gz", _GOOD + [("models/x/zeros", bytes(2 << 20))])),
        ("zip: damaged member (CRC), checksum matching", lambda: _flip(_zip(
            "crc.zip", _GOOD + [("models/x/data", os.urandom(5000))], ())))):
    case(ARCHIVES, _name)(lambda box, make=_make: _fetch_args(box, make()))


def _flip(path):
    raw = bytearray(open(path, "rb").read())
    raw[len(raw) // 2] ^= 0xFF
    open(path, "wb").write(bytes(raw))
    return path


# --- crafted attack files -------------------------------------------------------------------------
FILES = "crafted attack files (evaluate)"


def _evaluate(box, write):
    path = os.path.join(box, "attack.npy")
    write(path)
    return ["evaluate", "--checkpoint", CHECKPOINT, *COMMON, "--n", str(N), "--attack-file", path,
            "--pred-out", os.path.join(box, "pred.npy")]


def _header_only(path, shape, dtype="<f4", body=b"\0" * 64):
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": dtype, "fortran_order": False, "shape": shape})
        handle.write(body)


def _clean_with(change):
    def write(path):
        from bsattack import data
        x = data.load(get_spec("mnist"), DATA, 100, download=False,
                      echo=lambda *_: None).test_x[:N].copy()
        np.save(path, change(x))
    return write


for _name, _write in (
        ("header claims (10**9, 784), 64-byte body", lambda p: _header_only(p, (10**9, 784))),
        ("text file", lambda p: open(p, "w").write("0.1,0.2\n" * 100)),
        ("empty file", lambda p: open(p, "w").close()),
        ("pickle", lambda p: open(p, "wb").write(pickle.dumps(np.zeros((N, 784))))),
        ("object array", lambda p: np.save(p, np.array([1, "x"], dtype=object))),
        (".npz archive", lambda p: np.savez(open(p, "wb"), x=np.zeros((N, 784)))),
        ("truncated body", lambda p: _header_only(p, (N, 784), body=b"\0" * 1000)),
        ("NaN pixel", _clean_with(lambda x: np.where(np.arange(x.size).reshape(x.shape) == 5,
                                                     np.nan, x))),
        ("inf pixel", _clean_with(lambda x: np.where(np.arange(x.size).reshape(x.shape) == 5,
                                                     np.inf, x))),
        ("wrong shape (28x28 images)", _clean_with(lambda x: x.reshape(N, 28, 28))),
        ("complex dtype", _clean_with(lambda x: x.astype(np.complex64))),
        ("over the budget by 0.0002", _clean_with(lambda x: np.where(x == 0, 0.3002, x)))):
    case(FILES, _name)(lambda box, w=_write: _evaluate(box, w))


# --- checkpoints ----------------------------------------------------------------------------------
CHECKPOINTS = "damaged checkpoints (accuracy)"


def _checkpoint_copy(box, damage):
    folder = os.path.join(box, "ck")
    shutil.copytree(CHECKPOINT, folder)
    damage(folder)
    return ["accuracy", "--checkpoint", folder, *COMMON]


def _rewrite(change):
    def damage(folder):
        import tensorflow as tf
        from madry_models import checkpoint as ckpt
        tf1 = tf.compat.v1
        values = ckpt.read_variables(folder, list(ckpt.variable_shapes(folder)))
        change(values)
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
        with tf.Graph().as_default(), tf1.Session() as sess:
            variables = {n: tf1.Variable(v, name=n.replace("/", "_")) for n, v in values.items()}
            sess.run(tf1.global_variables_initializer())
            tf1.train.Saver(var_list=variables).save(sess, os.path.join(folder, "checkpoint"),
                                                     global_step=300, write_meta_graph=False)
    return damage


def _truncate(name, size):
    return lambda folder: open(os.path.join(folder, name), "r+b").truncate(size)


def _write_index(text):
    return lambda folder: open(os.path.join(folder, "checkpoint"), "w").write(text)


for _name, _damage in (
        ("Variable_5 stored as a scalar", _rewrite(lambda v: v.update(Variable_5=np.float32(1)))),
        ("Variable_7 stored as float64",
         _rewrite(lambda v: v.update(Variable_7=v["Variable_7"].astype(np.float64)))),
        ("Variable_4 missing", _rewrite(lambda v: v.pop("Variable_4"))),
        ("truncated .data", _truncate("checkpoint-300.data-00000-of-00001", 1000)),
        ("foreign .index", lambda f: shutil.copy(os.path.join(
            FIXTURES, "checkpoints", "fashion_small", "checkpoint-300.index"),
            os.path.join(f, "checkpoint-300.index"))),
        ("truncated .index", _truncate("checkpoint-300.index", 100)),
        ("index names a missing step", _write_index('model_checkpoint_path: "checkpoint-500"\n')),
        ("index file is garbage", _write_index("{{{ not a text proto")),
        (".data file missing",
         lambda f: os.remove(os.path.join(f, "checkpoint-300.data-00000-of-00001"))),
        ("empty folder", lambda f: [os.remove(os.path.join(f, n)) for n in os.listdir(f)])):
    case(CHECKPOINTS, _name)(lambda box, d=_damage: _checkpoint_copy(box, d))


# --- data folders ---------------------------------------------------------------------------------
DATA_CASES = "damaged data folders (accuracy --data-dir)"


def _data_copy(box, damage):
    folder = os.path.join(box, "data", "mnist")
    shutil.copytree(os.path.join(DATA, "mnist"), folder)
    damage(folder)
    return ["accuracy", "--checkpoint", CHECKPOINT, "--data-dir", os.path.dirname(folder),
            "--validation-size", "100"]


for _name, _damage in (
        ("test labels missing", lambda f: os.remove(os.path.join(f, "t10k-labels-idx1-ubyte.gz"))),
        ("all files missing", lambda f: [os.remove(os.path.join(f, n)) for n in os.listdir(f)]),
        ("truncated gzip", _truncate("t10k-images-idx3-ubyte.gz", 5000)),
        ("labels and images swapped", lambda f: os.replace(
            os.path.join(f, "t10k-labels-idx1-ubyte.gz"), os.path.join(f, "x")) or os.replace(
            os.path.join(f, "t10k-images-idx3-ubyte.gz"),
            os.path.join(f, "t10k-labels-idx1-ubyte.gz")) or os.replace(
            os.path.join(f, "x"), os.path.join(f, "t10k-images-idx3-ubyte.gz"))),
        ("not gzip, wrong magic", lambda f: open(os.path.join(
            f, "train-labels-idx1-ubyte.gz"), "wb").write(b"\x00\x00\x09\x01" + bytes(100)))):
    case(DATA_CASES, _name)(lambda box, d=_damage: _data_copy(box, d))


# --- caches ---------------------------------------------------------------------------------------
CACHES = "damaged caches (embed)"
_EMBED = ["embed", "--checkpoint", CHECKPOINT, "--natural-checkpoint", CHECKPOINT,
          "--extractor", "adv", *COMMON]


@functools.lru_cache(maxsize=None)
def _fresh_cache():
    """A cache made by an undisturbed run, and its test embeddings (the reference)."""
    folder = tempfile.mkdtemp(prefix="bsattack-cache-")
    result = _invoke(_EMBED + ["--cache-dir", folder], folder)
    assert result.exit_code == 0, result.output
    return folder, _embeddings(folder)


def _embeddings(folder):
    import h5py
    (name,) = [os.path.relpath(os.path.join(d, n), folder) for d, _, files in os.walk(folder)
               for n in files if n.endswith(".h5")]
    with h5py.File(os.path.join(folder, name), "r") as handle:
        return name, {g: handle[g]["embedding"][()] for g in ("train", "test")}


def _damaged_cache(box, damage):
    source, (name, _) = _fresh_cache()
    folder = os.path.join(box, "cache")
    shutil.copytree(source, folder)
    damage(os.path.join(folder, name))
    return _EMBED + ["--cache-dir", folder]


def _flip_array(path):
    import h5py
    with h5py.File(path, "r") as handle:
        offset = handle["test/embedding"].id.get_offset()
    with open(path, "r+b") as handle:
        handle.seek(offset + 4 * 777 + 2)
        byte = handle.read(1)
        handle.seek(offset + 4 * 777 + 2)
        handle.write(bytes([byte[0] ^ 0x10]))


def _drop_dataset(path):
    import h5py
    with h5py.File(path, "a") as handle:
        del handle["test/embedding"]


for _name, _damage, _rebuild in (
        ("bit flip in a cached array", _flip_array, True),
        ("group missing its dataset", _drop_dataset, True),
        ("file truncated", lambda p: open(p, "r+b").truncate(3000), True),
        ("file replaced by garbage", lambda p: open(p, "wb").write(os.urandom(4096)), True),
        ("cache file is a folder", lambda p: os.remove(p) or os.mkdir(p), False),
        ("cache folder is a file", lambda p: shutil.rmtree(os.path.dirname(p)) or
         open(os.path.dirname(p), "w").close(), False)):
    case(CACHES, _name, rebuild=_rebuild)(lambda box, d=_damage: _damaged_cache(box, d))


# --- run-time conditions --------------------------------------------------------------------------
RUNTIME = "caches, checkpoint indexes, workers and the file system at run time"
_BLINDSPOT = ["blindspot", "--attack", "pgd", "--pgd-steps", "2", "--checkpoint", CHECKPOINT,
              *COMMON]


def _blindspot(box, *extra, n=20, out="out", cache_dir=None, batch_size=20):
    """The run-time cases' command line: PGD-2 on the first ``n`` fixture images, the cache in
    ``box``/cache (or ``cache_dir``), the files in ``box``/``out``, then ``extra``."""
    return _BLINDSPOT + ["--batch-size", str(batch_size), "--n", str(n),
                         "--cache-dir", cache_dir or os.path.join(box, "cache"),
                         "--out", os.path.join(box, out), *extra]


def _cached_blindspot(box):
    """A blind-spot cache of the first 20 images in ``box``/cache; its file."""
    result = _invoke(_blindspot(box, out="first"), box)
    assert result.exit_code == 0, result.output
    folder = os.path.join(box, "cache", "blindspot")
    (name,) = [n for n in os.listdir(folder) if n.endswith(".h5")]
    return os.path.join(folder, name)


def _lock_is_a_folder(box):
    path = _cached_blindspot(box)
    os.remove(path + ".lock")
    os.mkdir(path + ".lock")
    return _blindspot(box, n=40)


case(RUNTIME, "blindspot, the cache's lock is a folder (refused before the attack)",
     expect="--cache-dir")(_lock_is_a_folder)


def _full_disk():
    real = os.write

    def write(fd, data):
        if len(data) == outputs.PROBE_BYTES:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)
    return mock.patch.object(outputs.os, "write", write)


case(RUNTIME, "blindspot on a full disk (the start-up probe)", expect="no space left",
     patch=_full_disk)(_blindspot)


def _other_batch_size(box):
    _cached_blindspot(box)                                     # at --batch-size 20
    return _blindspot(box, batch_size=7)


def _attacked_again(box, output):
    """the attack runs again (the batch-20 cache is not served to batch 7)"""
    return "image-gradients/s" in output


case(RUNTIME, "blindspot --batch-size 7 on a cache made at --batch-size 20",
     succeed=_attacked_again)(_other_batch_size)


def _one_header_line(box, output):
    """every CSV's command line stays one comment line"""
    folder = os.path.join(box, "a\nb")
    lines = [line for d, _, files in os.walk(folder) for n in files if n.endswith(".csv")
             for line in open(os.path.join(d, n)).read().splitlines()]
    return bool(lines) and all(line.startswith("#") for line in lines if "--n" in line)


case(RUNTIME, "blindspot --out with a line break in the folder name",
     succeed=_one_header_line)(
    lambda box: _blindspot(box, out="a\nb"))


def _closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


case(RUNTIME, "blindspot --ray-address of a closed port (fails within seconds)",
     expect="cannot reach the Ray cluster")(
    lambda box: _blindspot(box, "--ray-address", f"127.0.0.1:{_closed_port()}"))


def _silent_port():
    """A port that accepts connections and says nothing (no Ray head), open while this
    process runs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    threading.Thread(target=lambda: [server.accept() for _ in iter(int, 1)],
                     daemon=True).start()
    return server.getsockname()[1]


case(RUNTIME, "blindspot --ray-address of a port that listens but is no Ray head",
     expect="no Ray cluster")(
    lambda box: _blindspot(box, "--ray-address", f"127.0.0.1:{_silent_port()}"))
case(RUNTIME, "blindspot --workers 1000", expect="--workers 1000")(
    lambda box: _blindspot(box, "--workers", "1000"))


def _stale_cache_copy(box):
    """A cache whose writer was killed mid-write: its temporary copy stays beside it."""
    path = _cached_blindspot(box)
    leftover = os.path.join(os.path.dirname(path), f".tmp-{os.path.basename(path)}-dead.h5")
    shutil.copy(path, leftover)
    return _blindspot(box, n=40)


def _no_temporary_copy(box, output):
    """the killed writer's temporary copy is removed (its lock is free)"""
    return not [n for d, _, files in os.walk(os.path.join(box, "cache")) for n in files
                if n.startswith(".tmp-")]


case(RUNTIME, "blindspot after a writer killed mid-write left the cache's temporary copy",
     succeed=_no_temporary_copy)(_stale_cache_copy)


def _stale_worker_folder(box):
    """A worker folder (checkpoint copy) of a Ray worker killed with kill -9: its lock free."""
    folder = tempfile.mkdtemp(prefix="bsattack-worker-", dir=tempfile.gettempdir())
    open(os.path.join(folder, ".lock"), "w").close()
    with open(os.path.join(folder, "model.index"), "wb") as handle:
        handle.write(b"a dead worker's checkpoint copy")
    with open(os.path.join(box, "stale-worker-folder"), "w") as handle:
        handle.write(folder)
    return _blindspot(box, "--workers", "1")


def _worker_folder_swept(box, output):
    """the dead worker's folder is removed as the new worker starts"""
    with open(os.path.join(box, "stale-worker-folder")) as handle:
        return not os.path.exists(handle.read())


case(RUNTIME, "blindspot --workers 1 after a Ray worker was killed (its temp folder left)",
     succeed=_worker_folder_swept)(_stale_worker_folder)


def _link_cache_dir(box, looping):
    link = os.path.join(box, "cache-link")
    os.symlink(link if looping else os.path.join(box, "nowhere"), link)
    return _blindspot(box, cache_dir=link)


case(RUNTIME, "blindspot --cache-dir a dangling symbolic link", expect="symbolic link to nothing")(
    lambda box: _link_cache_dir(box, looping=False))
case(RUNTIME, "blindspot --cache-dir a looping symbolic link", expect="symbolic link to nothing")(
    lambda box: _link_cache_dir(box, looping=True))


def _ctrl_c():
    """Ctrl-C while the attack runs: KeyboardInterrupt from inside the chunk loop."""
    from bsattack import experiment

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    return mock.patch.object(experiment, "run_many", interrupted)


case(RUNTIME, "blindspot interrupted by Ctrl-C", interrupted=True, patch=_ctrl_c)(
    _blindspot)


def _fashion_files_published():
    """The fixture's Fashion-MNIST files stand for the published ones: their SHA-256 become
    Fashion-MNIST's published values for the command's duration."""
    from bsattack import file_digests
    from bsattack.datasets import DataFile
    spec = get_spec("fashion")
    published = {role: DataFile(f.name, file_digests.digests(
        os.path.join(DATA, "fashion", f.name))[0]) for role, f in spec.files.items()}
    return mock.patch.dict(spec.files, published)


case(DATA_CASES, "accuracy --dataset mnist given Fashion-MNIST's published files",
     expect="not mnist's", patch=_fashion_files_published)(
    lambda box: ["accuracy", "--dataset", "mnist", "--checkpoint", CHECKPOINT, "--data-dir",
                 os.path.join(DATA, "fashion"), "--validation-size", "100"])


def _fifo_attack_file(box):
    path = os.path.join(box, "attack.npy")
    os.mkfifo(path)
    return ["evaluate", "--checkpoint", CHECKPOINT, *COMMON, "--n", str(N),
            "--attack-file", path]


case(RUNTIME, "evaluate --attack-file a FIFO (refused at once)",
     expect="not a regular file")(_fifo_attack_file)


def _foreign_index(box):
    mine, other = os.path.join(box, "mine"), os.path.join(box, "other")
    shutil.copytree(CHECKPOINT, mine)
    shutil.copytree(os.path.join(FIXTURES, "checkpoints", "fashion_small"), other)
    for name in os.listdir(mine):
        if name.startswith("checkpoint-300"):
            os.remove(os.path.join(mine, name))
    with open(os.path.join(mine, "checkpoint"), "w") as handle:
        handle.write(f'model_checkpoint_path: "{os.path.join(other, "checkpoint-300")}"\n')
    return ["accuracy", "--checkpoint", mine, *COMMON]


case(RUNTIME, "accuracy, the folder's index names another folder's checkpoint",
     expect="outside")(_foreign_index)


# --- running --------------------------------------------------------------------------------------
def _invoke(args, cwd):
    from click.testing import CliRunner
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(cli.main, [str(a) for a in args])
    finally:
        os.chdir(previous)


def cleanup():
    """Remove the served archives and the reference cache, when they were made."""
    if _served.cache_info().currsize:
        shutil.rmtree(_served()[0], ignore_errors=True)
    if _fresh_cache.cache_info().currsize:
        shutil.rmtree(_fresh_cache()[0], ignore_errors=True)


def _snapshot(root):
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.isfile(path):          # a FIFO would block the reader
                continue
            with open(path, "rb") as handle:
                found[os.path.relpath(path, root)] = hashlib.sha256(handle.read()).hexdigest()
    return found


def _left_behind(root):
    return [os.path.join(d, n) for d, dirs, files in os.walk(root) for n in dirs + files
            if n.startswith(TEMPORARY) or "evil" in n]


def run_case(item, box):
    """Run ``item`` in the sandbox folder ``box``: its :class:`Outcome`."""
    args = item.setup(box)
    before = _snapshot(box)
    with (item.patch() if item.patch else contextlib.nullcontext()):
        result = _invoke(args, box)
    output = result.output.strip()
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    changed_ok = set()
    if item.rebuild:
        _, (name, reference) = _fresh_cache()
        _, got = _embeddings(os.path.join(box, "cache"))
        same = all(np.array_equal(got[g], reference[g]) for g in reference)
        clean = (not crashed and result.exit_code == 0 and same
                 and ("rebuilding" in output or "recomputing" in output))
        changed_ok = {os.path.join("cache", name)}
    elif item.interrupted:
        clean = (not crashed and result.exit_code == 130
                 and output.splitlines()[-1:] == ["interrupted (a rerun resumes from the cache)"])
    elif item.succeed is not None:
        clean = not crashed and result.exit_code == 0 and bool(item.succeed(box, output))
        # a successful run may rewrite its outputs, and remove a dead writer's temporary copy
        changed_ok = set(_snapshot(box)) | {p for p in before
                                            if os.path.basename(p).startswith(TEMPORARY)}
    else:
        clean = (not crashed and result.exit_code in (1, 2) and len(errors) == 1
                 and output.splitlines()[-1] == errors[0] and item.expect in errors[0]
                 and "No such option" not in errors[0])     # else the case is out of date
    after = _snapshot(box)
    lost = [p for p, digest in before.items() if after.get(p) != digest and p not in changed_ok]
    lost += _left_behind(box) + _left_behind(os.path.dirname(box))
    lost += ["/bsattack-evil"] if os.path.exists("/bsattack-evil") else []
    what = (f"traceback: {type(result.exception).__name__}: {result.exception}" if crashed
            else errors[0] if errors else output.splitlines()[-1] if output else "(no output)")
    what = (what.replace(os.path.dirname(box), "<sandbox>").replace(ROOT + os.sep, "")
            .replace("\n", " ")[:300])
    return Outcome(clean, bool(lost), result.exit_code, what)
