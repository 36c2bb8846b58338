"""Find and restore Madry-layout checkpoints: a directory with a ``checkpoint`` index file and
``checkpoint-STEP.{index,data-*}`` files, or an explicit prefix (as in the official
``adv_trained``, ``naturally_trained``/``natural`` and ``secret`` releases)."""
import hashlib
import os
import re

import tensorflow as tf

from bsattack.errors import BsattackError

tf1 = tf.compat.v1
_STEP_PREFIX = re.compile(r"^(.*-(\d+))\.index$")


def resolve_prefix(path):
    """Checkpoint prefix for ``path``: a directory (its ``checkpoint`` file, else the newest
    ``*-STEP.index``) or a prefix itself.  Raises BsattackError naming what is missing."""
    path = os.fspath(path)
    if os.path.isdir(path):
        state = tf.train.get_checkpoint_state(path)
        if state is not None and state.model_checkpoint_path:
            prefix = state.model_checkpoint_path
            if not os.path.isabs(prefix):
                prefix = os.path.join(path, prefix)
            if os.path.exists(prefix + ".index"):
                return prefix
            prefix = os.path.join(path, os.path.basename(prefix))  # index written on another machine
            if os.path.exists(prefix + ".index"):
                return prefix
        steps = [(int(m.group(2)), m.group(1)) for m in map(_STEP_PREFIX.match, os.listdir(path)) if m]
        if steps:
            return os.path.join(path, max(steps)[1])
        raise BsattackError(f"no checkpoint in {path}: expected a 'checkpoint' file or checkpoint-STEP.index")
    if os.path.exists(path + ".index"):
        return path
    if not os.path.exists(os.path.dirname(path) or "."):
        raise BsattackError(f"checkpoint directory not found: {path}")
    raise BsattackError(f"checkpoint not found: {path} (neither a directory nor a prefix with .index)")


def _reader(prefix):
    try:
        return tf.train.load_checkpoint(prefix)
    except Exception as exc:  # TF raises several types for unreadable files
        raise BsattackError(f"cannot read checkpoint {prefix}: {_first_line(exc)}") from None


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def variable_shapes(path):
    """{name: shape} of every variable stored in the checkpoint at ``path``."""
    prefix = resolve_prefix(path)
    return {k: list(v) for k, v in _reader(prefix).get_variable_to_shape_map().items()}


def read_variables(path, names):
    """Values of ``names`` as numpy arrays (independent of any graph)."""
    prefix = resolve_prefix(path)
    reader = _reader(prefix)
    return {n: reader.get_tensor(n) for n in names}


def check_variables(prefix, variables):
    """Every {checkpoint name: tf.Variable} must exist in the checkpoint with the same shape."""
    stored = _reader(prefix).get_variable_to_shape_map()
    for name, var in variables.items():
        if name not in stored:
            raise BsattackError(f"checkpoint {prefix} has no variable '{name}'")
        want = var.shape.as_list()
        if list(stored[name]) != want:
            raise BsattackError(f"checkpoint {prefix}: variable '{name}' has shape "
                                f"{list(stored[name])}, the model expects {want}")


def restore(sess, path, variables):
    """Restore {checkpoint name: tf.Variable} from ``path`` into ``sess``; returns the prefix."""
    prefix = resolve_prefix(path)
    check_variables(prefix, variables)
    saver = tf1.train.Saver(var_list=dict(variables))
    try:
        saver.restore(sess, prefix)
    except Exception as exc:
        raise BsattackError(f"cannot restore {prefix}: {_first_line(exc)}") from None
    return prefix


def content_hash(path):
    """SHA-256 over the checkpoint's index and data files: the identity used in cache keys."""
    prefix = resolve_prefix(path)
    folder, base = os.path.split(prefix)
    files = sorted(f for f in os.listdir(folder or ".")
                   if f == base + ".index" or f.startswith(base + ".data-"))
    digest = hashlib.sha256()
    for name in files:
        digest.update(name[len(base):].encode())
        with open(os.path.join(folder, name), "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
