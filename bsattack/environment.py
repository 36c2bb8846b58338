"""What produced a set of results: software versions, the CPU's relevant flags, the network's
raw forward+backward rate, checkpoints with content hashes and data files with SHA-256.
Paths are shown as :func:`bsattack.display.display_path` gives them (never this machine's
absolute paths when a relative one exists)."""
import os
import platform
import sys

from bsattack import data, file_digests
from bsattack.display import display_path

# the instruction-set flags that decide the network's speed on a CPU (/proc/cpuinfo names)
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu():
    """{'model': name, 'cores': count, 'flags': [the CPU_FLAGS it has]} (Linux; elsewhere the
    platform's processor name and no flags)."""
    model, flags = platform.processor(), set()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not model:
                    model = value.strip()
                elif key.strip() == "model name":
                    model = model or value.strip()
                elif key.strip() == "flags":
                    flags.update(value.split())
    except OSError:
        pass
    return {"model": model, "cores": os.cpu_count(),
            "flags": [f for f in CPU_FLAGS if f in flags]}


def versions():
    import numpy
    import tensorflow
    return {"python": platform.python_version(), "tensorflow": tensorflow.__version__,
            "numpy": numpy.__version__, "platform": f"{sys.platform} {platform.machine()}"}


def data_files(spec, data_dir=None):
    """[{'file', 'sha256', 'published'}] of the files the data set ``spec`` is read from
    (none when they are not found); 'published' says whether the file is the published one
    ('file'), a recompressed copy of its published content ('content') or neither ('no')."""
    folder = data.locate(spec, data_dir)
    if folder is None:
        return []
    found = []
    for data_file in spec.files.values():
        path = os.path.join(folder, data_file.name)
        if os.path.exists(path):
            digests = file_digests.digests(path)
            found.append({"file": display_path(path), "sha256": digests[0],
                          "published": _published(digests, data_file)})
    return found


def _published(digests, data_file):
    if digests[0] == data_file.sha256:
        return "file"
    raw = getattr(data_file, "raw_sha256", "")
    return "content" if raw and digests[1] == raw else "no"


def checkpoint_entry(path):
    from madry_models.checkpoint import content_hash, resolve_prefix
    return {"checkpoint": display_path(resolve_prefix(path)), "sha256": content_hash(path)}


def raw_rate(spec, checkpoint, split, batch_size=500, precision="fp32"):
    """The network's image-gradients per second (forward+backward, cross-entropy, in
    ``precision``) on the first ``batch_size`` test images."""
    from bsattack.attacks.model import Model
    from bsattack.transforms import to_pm
    model = Model(spec, checkpoint, precision)
    try:
        x = to_pm(split.test_x[:batch_size]).reshape(min(batch_size, len(split.test_x)), -1)
        return float(model.gradient_rate(x, split.test_y[:batch_size], repeats=3))
    finally:
        model.close()
