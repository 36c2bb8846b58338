"""TensorFlow started the way a command wants it: quietly unless verbose.

On import, TensorFlow's native libraries write to file descriptor 2 before its log settings
apply ("All log messages before absl::InitializeLog() is called are written to STDERR", the
oneDNN and CUDA-driver notes), so ``TF_CPP_MIN_LOG_LEVEL`` cannot hide them; the first device
enumeration then logs ``failed call to cuInit`` as an error on a machine without a GPU.
:func:`start_tensorflow` runs both steps with descriptor 2 captured and replays the capture
only when they fail; later TensorFlow errors still reach stderr.  Nothing here hides or
changes a device: a GPU that TensorFlow sees is used.
"""
import contextlib
import os
import sys
import tempfile

from bsattack.errors import BsattackError

QUIET_LOG_LEVEL = "2"    # TF_CPP_MIN_LOG_LEVEL: no INFO or WARNING lines, errors kept


@contextlib.contextmanager
def captured_stderr():
    """Send file descriptor 2 (C libraries and Python alike) to a temporary file for the
    block; when the block raises, write what was captured to stderr before the error."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:          # no descriptor 2 to capture
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            _restore(saved)
            capture.seek(0)
            os.write(2, capture.read())
            raise
        _restore(saved)


def _restore(saved):
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)


def start_tensorflow(verbose=False):
    """Import TensorFlow and enumerate its devices; unless ``verbose``, without their log
    (``TF_CPP_MIN_LOG_LEVEL`` is set to 2 unless the environment sets it, and TensorFlow's
    Python logger shows errors only).  Returns the ``tensorflow`` module; a TensorFlow that
    cannot be imported is a :class:`BsattackError` (after the captured log)."""
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_LOG_LEVEL)
    with contextlib.nullcontext() if verbose else captured_stderr():
        try:
            import tensorflow as tf
        except ImportError as exc:
            raise BsattackError(f"cannot import TensorFlow ({exc}); install the requirements: "
                                f"python -m pip install -r requirements.txt") from None
        tf.config.list_physical_devices()
    if not verbose:
        tf.get_logger().setLevel("ERROR")
    return tf
