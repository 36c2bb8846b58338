"""Find and restore Madry-layout checkpoints: a directory with a ``checkpoint`` index file and
``checkpoint-STEP.{index,data-*}`` files, or an explicit prefix (as in the official
``adv_trained``, ``naturally_trained``/``natural`` and ``secret`` releases)."""
import hashlib
import os
import re

import tensorflow as tf

from madry_models.errors import UserError as BsattackError

tf.compat.v1.disable_eager_execution()   # graphs, as in the reference code

tf1 = tf.compat.v1
_STEP_PREFIX = re.compile(r"^(.*-(\d+))\.index$")


def resolve_prefix(path):
    """Checkpoint prefix for ``path``: a directory (the step its ``checkpoint`` index file names,
    or without one the newest ``*-STEP.index``) or a prefix itself.  Raises BsattackError
    naming what is missing; an index naming a step that is not there is refused, not replaced
    by another step; an index naming a checkpoint outside the folder means the folder's own
    files of that name, and is refused when the folder has none (what is restored is always
    in the folder given)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        steps = sorted((int(m.group(2)), m.group(1))
                       for m in map(_STEP_PREFIX.match, os.listdir(path)) if m)
        named = _index_prefix(path)
        if named is None and steps:
            return os.path.join(path, steps[-1][1])
        if named is None:
            raise BsattackError(f"no checkpoint in {path}: expected a 'checkpoint' file or "
                                f"checkpoint-STEP.index")
        # the folder's own files win: an index written elsewhere (another machine, a copied
        # folder) names a foreign folder, so its base name counts here; a foreign checkpoint
        # the folder does not hold is refused rather than silently restored
        local = os.path.join(path, os.path.basename(named))
        inside = os.path.realpath(os.path.dirname(named)) == os.path.realpath(path)
        if os.path.exists(local + ".index"):
            return local
        found = ", ".join(name for _, name in steps) or "no checkpoint-STEP.index"
        if not inside and os.path.exists(named + ".index"):
            raise BsattackError(f"{os.path.join(path, 'checkpoint')} names {named}, outside "
                                f"{path} (found: {found}); pass {named} as --checkpoint if it "
                                f"is the one meant, or fix the index file")
        raise BsattackError(f"{os.path.join(path, 'checkpoint')} names "
                            f"{os.path.basename(named)}, which is not in {path} (found: {found}); "
                            f"pass one of those as --checkpoint or fix the index file")
    if os.path.exists(path + ".index"):
        return path
    if not os.path.exists(os.path.dirname(path) or "."):
        raise BsattackError(f"checkpoint directory not found: {path}")
    raise BsattackError(f"checkpoint not found: {path} (neither a directory nor a prefix with .index)")


def _index_prefix(folder):
    """The prefix the ``checkpoint`` index file of ``folder`` names (joined to ``folder`` when
    relative), or None without an index file; an index file that cannot be parsed is refused
    (TF would silently ignore it)."""
    if not os.path.isfile(os.path.join(folder, "checkpoint")):
        return None
    try:
        state = tf.train.get_checkpoint_state(folder)
    except Exception as exc:  # a text-proto parse error, an unreadable file
        raise BsattackError(f"{os.path.join(folder, 'checkpoint')}: unreadable index file "
                            f"({cause(exc)})") from None
    if state is None or not state.model_checkpoint_path:   # TF logs a parse error, returns None
        raise BsattackError(f"{os.path.join(folder, 'checkpoint')}: unreadable index file (no "
                            f"model_checkpoint_path); fix or remove it")
    named = state.model_checkpoint_path
    return named if os.path.isabs(named) else os.path.join(folder, named)


def _reader(prefix):
    try:
        return tf.train.load_checkpoint(prefix)
    except Exception as exc:  # TF raises several types for unreadable files
        raise BsattackError(f"cannot read checkpoint {prefix}: {cause(exc)}") from None


_DAMAGED = ("DATA_LOSS", "OUT_OF_RANGE")


def cause(exc):
    """TF's reason in one line: the status code (DATA_LOSS, OUT_OF_RANGE, ...) and the message
    line that states it, without the "Graph execution error" and node-trace wrapping."""
    lines = [line.strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line and not line.startswith(("[[", "File ", "Node:"))
             and not line.endswith(":") and not line.startswith("Detected at node")]
    text = lines[-1] if lines else type(exc).__name__
    if isinstance(exc, tf.errors.OpError):
        code = re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__[:-len("Error")]).upper()
        text = f"{code}: {text}"
        if code in _DAMAGED:
            text += " (a .data or .index file is truncated, damaged or from another checkpoint)"
    return text


def variable_shapes(path):
    """{name: shape} of every variable stored in the checkpoint at ``path``."""
    prefix = resolve_prefix(path)
    return {k: list(v) for k, v in _reader(prefix).get_variable_to_shape_map().items()}


def read_variables(path, names):
    """Values of ``names`` as numpy arrays (independent of any graph)."""
    prefix = resolve_prefix(path)
    reader = _reader(prefix)
    return {n: reader.get_tensor(n) for n in names}


def check_ranks(prefix, shapes, ranks):
    """Before widths are read off ``shapes`` ({name: shape} of the checkpoint): each
    {name: rank} of ``ranks`` must be stored with that rank and non-zero sizes."""
    for name, rank in ranks.items():
        if name not in shapes:
            raise BsattackError(f"checkpoint {prefix} has no variable '{name}'")
        shape = list(shapes[name])
        if len(shape) != rank or 0 in shape:
            raise BsattackError(f"checkpoint {prefix}: variable '{name}' has shape {shape}, the "
                                f"model expects a non-empty array of rank {rank}")


def check_variables(prefix, variables):
    """Every {checkpoint name: tf.Variable} must exist in the checkpoint with the same shape
    and dtype."""
    reader = _reader(prefix)
    stored, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    for name, var in variables.items():
        if name not in stored:
            raise BsattackError(f"checkpoint {prefix} has no variable '{name}'")
        want = var.shape.as_list()
        if list(stored[name]) != want:
            raise BsattackError(f"checkpoint {prefix}: variable '{name}' has shape "
                                f"{list(stored[name])}, the model expects {want}")
        want_dtype = var.dtype.base_dtype
        if dtypes[name] != want_dtype:
            raise BsattackError(f"checkpoint {prefix}: variable '{name}' is stored as "
                                f"{dtypes[name].name}, the model expects {want_dtype.name}")


def restore(sess, path, variables):
    """Restore {checkpoint name: tf.Variable} from ``path`` into ``sess``; returns the prefix."""
    prefix = resolve_prefix(path)
    check_variables(prefix, variables)
    saver = tf1.train.Saver(var_list=dict(variables))
    try:
        saver.restore(sess, prefix)
    except Exception as exc:
        raise BsattackError(f"cannot restore {prefix}: {cause(exc)}") from None
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
