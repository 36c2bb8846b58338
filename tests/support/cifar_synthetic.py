"""Synthetic CIFAR-10 files in both official formats, for the tests.

The python-version batches of the official archive were written by Python 2 ``cPickle``
(protocol 2): strings are ``BINSTRING`` opcodes, numpy arrays are
``numpy.core.multiarray._reconstruct`` + BUILD.  :class:`Py2StylePickler` writes the same
opcodes, so the tests read files shaped like the real ones.
"""
import io
import os
import pickle
import struct

import numpy as np

PIXELS = 3072


class Py2StylePickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it: str/bytes as (SHORT_)BINSTRING, numpy.core globals."""

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    def save_str(self, obj):
        self.save_bytes(obj.encode("latin1"))

    def save_global(self, obj, name=None):
        module = getattr(obj, "__module__", "").replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__name__}\n".encode())
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def python_batch_bytes(images, labels, name="batch", style="py2"):
    """A batch dict as the official files hold it, pickled in ``style``: 'py2' (as released),
    or a Python 3 protocol ('p2', 'p3', 'p5') for re-pickled copies."""
    batch = {b"batch_label": name.encode(), b"labels": [int(v) for v in labels],
             b"data": images.transpose(0, 3, 1, 2).reshape(len(images), PIXELS).copy(),
             b"filenames": [f"img_{i}.png".encode() for i in range(len(images))]}
    if style == "py2":
        out = io.BytesIO()
        Py2StylePickler(out, protocol=2).dump(batch)
        return out.getvalue()
    return pickle.dumps(batch, protocol=int(style[1:]))


def binary_batch_bytes(images, labels):
    records = np.concatenate([labels.astype(np.uint8)[:, None],
                              images.transpose(0, 3, 1, 2).reshape(len(images), PIXELS)], axis=1)
    return records.astype(np.uint8).tobytes()


def blocky_images(rng, n):
    """uint8 [n,32,32,3]: random 4x4 colour blocks scaled up, plus noise, so that images differ
    at the scales a network sees (i.i.d. noise all looks alike after standardisation)."""
    blocks = np.kron(rng.uniform(0, 255, (n, 4, 4, 3)), np.ones((1, 8, 8, 1)))
    return np.clip(blocks + rng.normal(0, 20, blocks.shape), 0, 255).astype(np.uint8)


def write_dataset(folder, fmt="python", per_batch=8, n_test=12, seed=0, style="py2"):
    """Random blocky uint8 images in the official file set of ``fmt``; returns (train_x, train_y,
    test_x, test_y) as uint8 NHWC / int labels in file order."""
    rng = np.random.RandomState(seed)
    os.makedirs(folder, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    arrays = []
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        images = blocky_images(rng, n)
        labels = rng.randint(0, 10, size=n)
        arrays.append((images, labels))
        if fmt == "python":
            raw, path = python_batch_bytes(images, labels, name, style), os.path.join(folder, name)
        else:
            raw, path = binary_batch_bytes(images, labels), os.path.join(folder, name + ".bin")
        with open(path, "wb") as handle:
            handle.write(raw)
    train_x = np.concatenate([a[0] for a in arrays[:5]])
    train_y = np.concatenate([a[1] for a in arrays[:5]])
    return train_x, train_y, arrays[5][0], arrays[5][1]


def _conv_same(x, kernel, stride):
    """TF 'SAME' convolution: pad (total // 2) before and the rest after, then stride."""
    k = kernel.shape[0]
    size = x.shape[1]
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    before = total // 2
    xp = np.pad(x, ((0, 0), (before, total - before), (before, total - before), (0, 0)))
    result = np.zeros((x.shape[0], out, out, kernel.shape[3]))
    for i in range(k):
        for j in range(k):
            patch = xp[:, i:i + stride * out:stride, j:j + stride * out:stride, :]
            result += np.tensordot(patch, kernel[i, j], axes=1)
    return result


def numpy_forward(weights, images01, calibrate=None):
    """Independent float64 forward pass of the CIFAR10-challenge ResNet from the facts of its
    model.py; returns (logits, embedding).  ``calibrate(bn_scope, x)`` (fixture making only)
    may set a batch norm's weights from its input before it is applied."""
    def bn(scope, x):
        if calibrate is not None:
            calibrate(scope, x)
        p = {n: weights[f"{scope}/BatchNorm/{n}"].astype(np.float64)
             for n in ("beta", "gamma", "moving_mean", "moving_variance")}
        scale = p["gamma"] / np.sqrt(p["moving_variance"] + 0.001)
        return (x - p["moving_mean"]) * scale + p["beta"]

    def lrelu(x):
        return np.where(x < 0, 0.1 * x, x)

    x = images01.astype(np.float64) * 255.0
    flat = x.reshape(len(x), -1)
    std = np.maximum(flat.std(axis=1), 1.0 / np.sqrt(flat.shape[1]))
    x = ((flat - flat.mean(axis=1, keepdims=True)) / std[:, None]).reshape(x.shape)
    x = _conv_same(x, weights["input/init_conv/DW"], 1)
    for stage in (1, 2, 3):
        for i in range(5):
            unit = f"unit_{stage}_{i}"
            kernel1 = weights[f"{unit}/sub1/conv1/DW"]
            stride = 2 if (i == 0 and stage > 1) else 1
            if unit == "unit_1_0":
                x = lrelu(bn(f"{unit}/shared_activation", x))
                shortcut = x
            else:
                shortcut = x
                x = lrelu(bn(f"{unit}/residual_only_activation", x))
            x = _conv_same(x, kernel1, stride)
            x = _conv_same(lrelu(bn(f"{unit}/sub2", x)), weights[f"{unit}/sub2/conv2/DW"], 1)
            grow = kernel1.shape[3] - kernel1.shape[2]
            if grow:
                n, h, w, c = shortcut.shape
                shortcut = shortcut.reshape(n, h // stride, stride, w // stride, stride, c)
                shortcut = shortcut.mean(axis=(2, 4))
                shortcut = np.pad(shortcut, ((0, 0), (0, 0), (0, 0), (grow // 2, grow // 2)))
            x = x + shortcut
    embedding = lrelu(bn("unit_last", x)).mean(axis=(1, 2))
    return embedding @ weights["logit/DW"] + weights["logit/biases"], embedding
