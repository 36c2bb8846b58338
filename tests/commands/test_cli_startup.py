"""The command line starts fast and quietly: help texts import no TensorFlow, a default CPU
run prints nothing from TensorFlow on stderr, ``--verbose`` shows its log."""
import json
import os
import subprocess
import sys

import pytest

from bsattack.cli import COMMANDS
from support import FIXTURE_VALIDATION_SIZE, ROOT

CLI = os.path.join(ROOT, "cli.py")


def quiet_env():
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return env


# Runs cli.py with a finder that, at the first import of tensorflow, records the modules whose
# top-level code is running (innermost first), and writes them as JSON to argv[1].
SPY = """
import json, runpy, sys
out, sys.argv = sys.argv[1], sys.argv[2:]
chain = None

class Spy:
    def find_spec(self, name, path=None, target=None):
        global chain
        if name == "tensorflow" and chain is None:
            frame, chain = sys._getframe(1), []
            while frame is not None:
                if frame.f_code.co_name == "<module>":
                    chain.append(frame.f_globals.get("__name__"))
                frame = frame.f_back

sys.meta_path.insert(0, Spy())
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exc:
    assert not exc.code, exc.code
with open(out, "w") as handle:
    json.dump(chain, handle)
"""


def tensorflow_import_chain(args, tmp_path):
    """The modules being imported when ``python cli.py ARGS`` first imports tensorflow,
    innermost first; None when it never does."""
    out = tmp_path / "chain.json"
    result = subprocess.run([sys.executable, "-c", SPY, str(out), CLI, *args],
                            capture_output=True, text=True, env=quiet_env(), cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_imports_no_tensorflow(command, tmp_path):
    args = ["--help"] if command is None else [command, "--help"]
    chain = tensorflow_import_chain(args, tmp_path)
    assert chain is None, f"cli.py {' '.join(args)} imports tensorflow via {' <- '.join(chain)}"


def run_accuracy(*group_options):
    return subprocess.run(
        [sys.executable, CLI, *group_options, "accuracy", "--dataset", "mnist",
         "--checkpoint", os.path.join(ROOT, "tests", "fixtures", "checkpoints", "mnist_small"),
         "--data-dir", os.path.join(ROOT, "tests", "fixtures", "data"),
         "--validation-size", str(FIXTURE_VALIDATION_SIZE)],
        capture_output=True, text=True, env=quiet_env(), cwd=ROOT)


def test_default_run_prints_nothing_on_stderr():
    result = run_accuracy()
    assert result.returncode == 0, result.stderr
    assert "natural accuracy" in result.stdout
    assert result.stderr == ""


def test_verbose_run_shows_tensorflow_log():
    result = run_accuracy("--verbose")
    assert result.returncode == 0, result.stderr
    assert "natural accuracy" in result.stdout
    assert result.stderr.strip()


@pytest.mark.parametrize("fail", [False, True])
def test_captured_stderr_replays_only_on_failure(fail):
    code = ("import os\nfrom bsattack.startup import captured_stderr\n"
            "with captured_stderr():\n"
            "    os.write(2, b'native log line\\n')\n"
            f"    if {fail}:\n"
            "        raise RuntimeError('import failed')\n"
            "os.write(2, b'after the block\\n')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT)
    assert "after the block" in result.stderr or fail
    assert ("native log line" in result.stderr) == fail
    assert ("RuntimeError: import failed" in result.stderr) == fail


def test_missing_tensorflow_is_one_line():
    blocked = ("import runpy, sys\n"
               "class Block:\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name.split('.')[0] == 'tensorflow':\n"
               "            raise ImportError('No module named tensorflow')\n"
               "sys.meta_path.insert(0, Block())\n"
               "sys.argv = sys.argv[1:]\n"
               "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    result = subprocess.run([sys.executable, "-c", blocked, CLI, "accuracy", "--checkpoint",
                             os.path.join(ROOT, "tests", "fixtures", "checkpoints", "mnist_small")],
                            capture_output=True, text=True, env=quiet_env(), cwd=ROOT)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "Error: cannot import TensorFlow (No module named tensorflow); install the "
        "requirements: python -m pip install -r requirements.txt"]
