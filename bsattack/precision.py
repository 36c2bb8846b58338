"""The arithmetic the attacks' gradient oracle runs in: ``fp32``, ``bf16`` or ``auto``.

``bf16`` asks TensorFlow's graph rewriter for mixed precision: on a CPU oneDNN's bfloat16
rewrite (``auto_mixed_precision_onednn_bfloat16``: matmuls and convolutions in bfloat16,
accumulation and the rest in float32), on a GPU its own mixed precision
(``auto_mixed_precision``).  ``auto`` picks ``bf16`` where the hardware runs it natively (a CPU
with AVX512-BF16 or AMX-BF16, a GPU of compute capability 8.0 or more) and ``fp32`` elsewhere.
Whatever the oracle's precision, results are float32 facts: the experiment classifies every
stored example with a float32 copy of the network (:meth:`bsattack.attacks.model.Model.verified_predict`).
A float32 run's files are as they were before precisions existed; a run in another precision
says so in its headers (:func:`header`).
"""
from bsattack.errors import BsattackError

CHOICES = ("fp32", "bf16", "auto")
DEFAULT = "fp32"
NATIVE_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def _gpu_capability():
    """The first visible GPU's compute capability (major, minor), or None."""
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    return details.get("compute_capability")


def resolve(precision):
    """(``fp32`` or ``bf16``, why) for a requested ``precision``.  ``bf16`` asked for on a CPU
    without native bfloat16 (and no GPU) becomes ``fp32``: TensorFlow does not apply oneDNN's
    bfloat16 rewrite there, so the arithmetic, and the results, are float32's."""
    if precision not in CHOICES:
        raise BsattackError(f"--precision must be one of {', '.join(CHOICES)} (got {precision})")
    if precision == "fp32":
        return precision, "requested"
    capability = _gpu_capability()
    native = sorted(set(NATIVE_CPU_FLAGS) & _cpu_flags())
    if precision == "bf16":
        if capability is None and not native:
            return "fp32", (f"this CPU has no native bfloat16 ({' or '.join(NATIVE_CPU_FLAGS)}), "
                            f"where TensorFlow does not apply the bfloat16 rewrite")
        return "bf16", "requested"
    if capability is not None:
        if tuple(capability) >= (8, 0):
            return "bf16", f"GPU of compute capability {capability[0]}.{capability[1]}"
        return "fp32", f"GPU of compute capability {capability[0]}.{capability[1]} (< 8.0)"
    if native:
        return "bf16", f"CPU with {', '.join(native)}"
    return "fp32", "no native bfloat16 on this CPU"


def stated(precision):
    """How results state ``precision``: the gradients' arithmetic, and float32 predictions."""
    return f"gradients in {precision}, predictions in fp32"


def header(precision):
    """The header lines a results file adds for ``precision``: none for fp32, else one."""
    return [] if precision == DEFAULT else [f"precision: {stated(precision)}"]


def configure(config, precision):
    """Turn on the mixed-precision rewrite in a ``tf.compat.v1.ConfigProto`` for ``bf16``."""
    if precision == "fp32":
        return config
    from tensorflow.core.protobuf import rewriter_config_pb2
    on = rewriter_config_pb2.RewriterConfig.ON
    options = config.graph_options.rewrite_options
    if _gpu_capability() is not None:
        options.auto_mixed_precision = on
    else:
        options.auto_mixed_precision_onednn_bfloat16 = on
    return config
