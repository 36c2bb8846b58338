"""Evaluate a challenge-format attack file with the semantics of MadryLab's ``run_attack.py``
(mnist_challenge and cifar10_challenge).

Checks, in the reference order: the checkpoint exists; the array has shape (10000, 784) for
MNIST / (10000, 32, 32, 3) for CIFAR10; pixels lie in [0, 1] / [0, 255] with 1e-4 tolerance;
max |x_adv - x_test| <= ε + 1e-4 against the clean test images in file order.  Then the
accuracy over the whole file ("Accuracy: xx.xx%", batches of 64 / 100) and the int64 argmax
predictions saved to pred.npy.  Stricter than the reference: the file must be a .npy whose
header matches its size (checked before anything is allocated), it is read with
``allow_pickle=False`` (no object arrays, no pickles), its dtype must be a real number type,
and NaN / inf are refused for both data sets (the CIFAR script has no NaN check).  The
predictions' location is checked for writability before the work starts.
"""
import math
import os
import zipfile

import numpy as np

from bsattack import models, outputs
from bsattack.errors import BsattackError
from madry_models import checkpoint as ckpt

TOLERANCE = 1e-4          # run_attack.py: range and ε are both checked with +0.0001
CHALLENGE_SIZE = 10000    # run_attack.py hard-codes num_eval_examples = 10000


def expected_shape(spec, n=CHALLENGE_SIZE):
    """The attack file's shape for the data set ``spec``: n images in the network's layout."""
    return (n, *spec.input_shape)


_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


def _npy_header(path):
    """(shape, dtype) from the header of the .npy file at ``path``, after checking that the
    file holds exactly the bytes the header announces (a crafted header cannot make numpy
    allocate more than the file's size)."""
    with open(path, "rb") as handle:
        try:
            version = np.lib.format.read_magic(handle)
        except ValueError:
            handle.seek(0)
            what = ("a pickled object" if handle.read(1) == b"\x80" else
                    "not an .npy file (it does not start with NumPy's header)")
            raise BsattackError(f"{path} is {what}; refused: the challenge expects one plain "
                                f"numeric .npy array") from None
        if version not in _HEADER_READERS:
            raise BsattackError(f"{path}: .npy format version {version[0]}.{version[1]} is not "
                                f"supported (1.0 and 2.0 are)")
        try:
            shape, _, dtype = _HEADER_READERS[version](handle)
        except ValueError as exc:
            raise BsattackError(f"{path} is not a valid .npy file (malformed header: "
                                f"{exc})") from None
        body = os.fstat(handle.fileno()).st_size - handle.tell()
    if dtype.hasobject:
        raise BsattackError(f"{path} holds a pickled object (or an object array); refused: "
                            f"attack files must be plain numeric .npy arrays")
    announced = math.prod(shape) * dtype.itemsize
    if body != announced:
        raise BsattackError(f"{path}: its header announces shape {_shape(shape)} of {dtype} "
                            f"({announced:,} bytes) but the file holds {body:,} bytes of data "
                            f"(truncated or not a valid .npy file)")
    return shape, dtype


def load_attack_file(path):
    """The array in a .npy file, refusing non-regular files (a FIFO would block), files that
    are not .npy, headers that do not match
    the file's size, pickles, object arrays, .npz archives and non-numeric dtypes."""
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isfile(path):
        raise BsattackError(f"{path} is not a regular file (a pipe, device or folder); the "
                            f"challenge expects a .npy file")
    try:
        if zipfile.is_zipfile(path):
            raise BsattackError(f"{path} is a .npz archive; the challenge expects one .npy array")
        _, dtype = _npy_header(path)
        if dtype.kind not in "fiu":
            raise BsattackError(f"{path}: wrong dtype {dtype}; expected a float (or integer) "
                                f"array of pixel values")
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise BsattackError(f"{path} is not a valid .npy file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise BsattackError(f"cannot read {path}: {exc}") from None
    return array


def check_attack(x_adv, clean, spec):
    """Raise BsattackError with run_attack.py's reason when ``x_adv`` is not a valid attack on
    ``clean`` (both in file units) under the challenge rules of ``spec``; return the largest
    perturbation."""
    rules = spec.challenge
    want = clean.shape
    if x_adv.shape != want:
        raise BsattackError(f"Invalid shape: expected {_shape(want)}, found {_shape(x_adv.shape)}")
    values = x_adv.astype(np.float64, copy=False)
    low, high = float(np.min(values)), float(np.max(values))
    bad_values = np.isnan(high) or np.isinf(low) or np.isinf(high)
    if bad_values or high > rules.high + TOLERANCE or low < -TOLERANCE:
        what = (" (contains NaN)" if np.isnan(high) else
                " (contains inf)" if bad_values else "")
        raise BsattackError(f"Invalid pixel range. Expected [0, {rules.high:g}], "
                            f"found [{low}, {high}]{what}")
    per_image = np.concatenate([  # in chunks: CIFAR in float64 is 250 MB per copy
        np.abs(values[i:i + 1000] - clean[i:i + 1000].astype(np.float64))
        .reshape(-1, int(np.prod(want[1:]))).max(axis=1) for i in range(0, len(values), 1000)])
    allowed = rules.eps + TOLERANCE
    over = per_image > allowed
    if over.any():
        worst = int(np.argmax(per_image))
        raise BsattackError(
            f"maximum perturbation found: {per_image[worst]:.6f} (image {worst}), maximum "
            f"allowed: {allowed:g} (ε={rules.eps:g} + {TOLERANCE:g}); {int(over.sum())} of "
            f"{len(values)} images are over budget, by {np.min(per_image[over] - rules.eps):.6f}"
            f" to {np.max(per_image[over] - rules.eps):.6f}")
    return float(per_image.max())


def _shape(shape):
    return "(" + ",".join(str(d) for d in shape) + ")"


def clean_test_images(split, spec, n):
    """The first ``n`` clean test images in file units and layout, and their labels."""
    rules = spec.challenge
    if len(split.test_x) < n:
        raise BsattackError(f"{spec.name} test set has {len(split.test_x)} images, the attack file "
                            f"is checked against {n}")
    images = split.test_x[:n].reshape(expected_shape(spec, n))
    if rules.high != 1.0:      # [0,1] float32 -> the exact integer pixels of the file
        images = np.rint(images.astype(np.float64) * rules.high)
    return images, split.test_y[:n]


# the names bsattack/commands/challenge.py writes its outputs with
save_atomic = outputs.save_npy
save_text_atomic = outputs.save_text


def evaluate(spec, checkpoint, attack_file, split, n=CHALLENGE_SIZE, pred_out="pred.npy",
             echo=print):
    """run_attack.py: validate ``attack_file``, print the accuracy of ``checkpoint`` on it,
    save the int64 predictions to ``pred_out``.  Returns the accuracy in [0, 1]."""
    outputs.check_writable_file(pred_out, what=f"the predictions to {pred_out}")
    ckpt.resolve_prefix(checkpoint)
    x_adv = load_attack_file(attack_file)
    clean, labels = clean_test_images(split, spec, n)
    largest = check_attack(x_adv, clean, spec)
    rules = spec.challenge
    echo(f"{len(x_adv)} images, largest L∞ perturbation {largest:.6f} (ε = {rules.eps:g})")
    inputs = (x_adv.astype(np.float64) / rules.high).astype(np.float32)
    predictions = models.predict(spec, checkpoint, inputs, rules.batch_size)
    accuracy = float(np.sum(predictions == labels)) / len(labels)
    echo("Accuracy: {:.2f}%".format(100.0 * accuracy))
    outputs.save_npy(pred_out, predictions)
    echo(f"Output saved at {pred_out}")
    return accuracy
