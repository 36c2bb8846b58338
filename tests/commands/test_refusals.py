"""Hostile inputs refused in one line (each case failed before its fix): an unreachable Ray
address, more workers than CPUs, a failing write, another data set's files, a line break in
a header, a FIFO as the attack file, Ctrl-C, a missing checkpoint named by its own option."""
import errno
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from bsattack import atomic, outputs, parallel
from bsattack.errors import BsattackError
from bsattack.report.csvfile import write_csv
from support import ROOT



def run_cli(*args, timeout=120, **kwargs):
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_ray_address_is_one_line_within_seconds():
    port = closed_port()
    start = time.perf_counter()
    with pytest.raises(BsattackError, match="cannot reach the Ray cluster"):
        parallel.check_reachable(f"127.0.0.1:{port}")
    assert time.perf_counter() - start < parallel.CONNECT_TIMEOUT + 1
    with pytest.raises(BsattackError, match="HOST:PORT"):
        parallel.check_reachable("nonsense")


@pytest.fixture
def listening_port():
    """A TCP port that accepts connections and then says nothing (no Ray head), or answers
    ``reply`` and closes, set through the returned function."""
    import threading
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    replies = {"reply": None}

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            if replies["reply"] is not None:
                conn.sendall(replies["reply"])
                conn.close()
    threading.Thread(target=serve, daemon=True).start()

    def port(reply=None):
        replies["reply"] = reply
        return server.getsockname()[1]
    yield port
    server.close()


@pytest.mark.parametrize("reply", [None, b"HTTP/1.1 400 Bad Request\r\n\r\n"],
                         ids=["silent", "http"])
def test_a_port_that_is_no_ray_head_is_one_line_within_seconds(listening_port, reply):
    port = listening_port(reply)
    start = time.perf_counter()
    with pytest.raises(BsattackError, match=f"127.0.0.1:{port} answers but is no Ray cluster"):
        parallel.check_reachable(f"127.0.0.1:{port}", timeout=2)
    assert time.perf_counter() - start < 2 * 2 + 1      # the TCP probe, then the gRPC one


def test_a_grpc_server_passes_the_probe():
    """Ray's head speaks gRPC: a gRPC server that does not know the GCS method still counts
    as one that answers (a Ray Client server, or another Ray version)."""
    from concurrent import futures

    import grpc
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        parallel.check_reachable(f"127.0.0.1:{port}", timeout=5)
    finally:
        server.stop(0)


def test_a_non_ray_port_through_the_cli_exits_with_one_line(listening_port, tmp_path):
    from support import FIXTURE_VALIDATION_SIZE, FIXTURES
    port = listening_port()
    start = time.perf_counter()
    result = run_cli("blindspot", "--dataset", "mnist", "--n", "5", "--attack", "pgd",
                     "--checkpoint", os.path.join(FIXTURES, "checkpoints", "mnist_small"),
                     "--data-dir", os.path.join(FIXTURES, "data"),
                     "--validation-size", str(FIXTURE_VALIDATION_SIZE),
                     "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
                     "--ray-address", f"127.0.0.1:{port}")
    assert time.perf_counter() - start < 60
    assert result.returncode == 1 and "no Ray cluster" in result.stderr
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("Error")] == [
        line for line in result.stderr.splitlines() if "Ray" in line]


def test_more_workers_than_cpus_is_refused_before_ray_starts():
    with pytest.raises(BsattackError, match="more than this machine's"):
        parallel.RayExecutor(workers=(os.cpu_count() or 1) + 1)


def test_a_failing_write_is_one_line_and_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "table.csv"
    write_csv(str(target), [{"a": 1}], ["a"], ["command: first"])
    before = target.read_text()

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(atomic.tempfile, "mkstemp", full_disk)
    with pytest.raises(BsattackError, match="cannot write .*table.csv: No space left"):
        write_csv(str(target), [{"a": 2}], ["a"], ["command: second"])
    assert target.read_text() == before


def test_the_start_up_write_check_finds_a_full_disk(tmp_path, full_disk_probe):
    with pytest.raises(BsattackError, match="no space left"):
        outputs.check_writable_dir(str(tmp_path), "--out")
    assert os.listdir(tmp_path) == []


def test_a_line_break_in_a_header_stays_one_comment_line(tmp_path):
    path = tmp_path / "t.csv"
    write_csv(str(path), [{"a": 1}], ["a"], ["command: python cli.py --out 'x\ny'"])
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# command:") and lines[1] == "a" and lines[2] == "1"


def test_another_data_sets_files_are_refused(tmp_path, fixture_data_dir):
    from bsattack import data
    from bsattack.datasets import get_spec
    # fixture files renamed: a file whose content is Fashion-MNIST's published content is
    # refused as MNIST; the fixtures (no published data set's) pass
    data.load(get_spec("mnist"), fixture_data_dir, validation_size=100, download=False)
    fashion = get_spec("fashion").files["test_labels"]
    mnist = get_spec("mnist").files["test_labels"]
    from bsattack import file_digests
    real = file_digests.digests

    def as_fashion(path, cache_dir=None):
        return ((fashion.sha256, fashion.raw_sha256) if os.path.basename(path) == mnist.name
                else real(path, cache_dir))
    file_digests.digests = as_fashion
    try:
        with pytest.raises(BsattackError, match="is fashion's"):
            data.load(get_spec("mnist"), fixture_data_dir, validation_size=100, download=False)
    finally:
        file_digests.digests = real


def test_a_fifo_as_attack_file_is_refused_at_once(tmp_path):
    fifo = tmp_path / "attack.npy"
    os.mkfifo(fifo)
    done = run_cli("evaluate", "--dataset", "mnist", "--attack-file", str(fifo),
                   "--checkpoint", os.path.join(ROOT, "tests", "fixtures", "checkpoints",
                                                "mnist_small"),
                   "--data-dir", os.path.join(ROOT, "tests", "fixtures", "data"),
                   "--validation-size", "100", timeout=60)
    assert done.returncode != 0
    assert "not a regular file" in done.stderr and "Traceback" not in done.stderr


def test_ctrl_c_exits_130_with_one_line(tmp_path):
    command = [sys.executable, "cli.py", "tables", "--dataset", "fashion", "--attack", "pgd",
               "--n", "400", "--checkpoint",
               os.path.join(ROOT, "tests", "fixtures", "checkpoints", "fashion_small"),
               "--data-dir", os.path.join(ROOT, "tests", "fixtures", "data"),
               "--validation-size", "100", "--cache-dir", str(tmp_path / "cache"),
               "--out", str(tmp_path / "out")]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    time.sleep(8)
    process.send_signal(2)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err[-500:]
    assert "interrupted" in err and "Traceback" not in err


def test_write_file_returns_what_write_returns(tmp_path):
    assert outputs.write_file(str(tmp_path / "x.txt"), lambda h: h.write("abc")) == 3
    np.testing.assert_equal((tmp_path / "x.txt").read_text(), "abc")


@pytest.mark.parametrize("kind", ["dangling", "looping"])
def test_a_broken_symlink_as_a_folder_is_named_as_such(tmp_path, kind):
    link = tmp_path / "cache"
    if kind == "dangling":
        os.symlink(tmp_path / "nowhere", link)
    else:
        os.symlink(link, link)
    with pytest.raises(BsattackError, match="symbolic link to nothing"):
        outputs.check_writable_dir(str(link), "--cache-dir")


@pytest.mark.parametrize("args,option", [
    (["kl", "--natural-checkpoint", "no_such_model"], "--natural-checkpoint"),
    (["figures", "--natural-checkpoint", "no_such_model"], "--natural-checkpoint"),
    (["detectability", "--adv-extractor", "no_such_model"], "--adv-extractor"),
    (["detectability", "--nat-extractor", "no_such_model"], "--nat-extractor"),
    (["countermeasure", "--model", "m=no_such_model"], "--model"),
])
def test_a_missing_checkpoint_names_the_option_that_named_it(args, option, small_checkpoint,
                                                             fixture_data_dir):
    """Each command's error for a checkpoint it cannot find points to its own option."""
    from click.testing import CliRunner
    from cli import main
    result = CliRunner().invoke(main, [*args, "--dataset", "mnist", "--data-dir",
                                       fixture_data_dir, *(
                                           [] if args[0] == "countermeasure" else
                                           ["--checkpoint", small_checkpoint("mnist")])])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "checkpoint 'no_such_model' not found" in result.output
    assert result.output.rstrip().endswith(f"or pass {option} DIR"), result.output
