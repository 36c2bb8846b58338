"""The Fashion-MNIST models the project ships (checkpoints/fashion_adv, fashion_nat): default
resolution, weights-only official layout, size, and accuracy on the fixture test images."""
import os

import numpy as np
import pytest

from bsattack import models
from bsattack.datasets import get_spec
from bsattack.manifest import resolve_checkpoint
from bsattack.paths import CHECKPOINTS_DIR
from madry_models import checkpoint as ckpt
from madry_models.mnist import VARIABLE_NAMES, variable_shapes
from support.mnist_forward import numpy_forward


@pytest.mark.parametrize("natural,name", [(False, "fashion_adv"), (True, "fashion_nat")])
def test_shipped_fashion_checkpoint(natural, name, small_split):
    path = resolve_checkpoint(get_spec("fashion"), natural=natural)
    assert os.path.abspath(path) == os.path.join(CHECKPOINTS_DIR, name)
    prefix = ckpt.resolve_prefix(path)
    assert os.path.basename(prefix).startswith("checkpoint-")
    files = [f for f in os.listdir(path) if f.startswith(os.path.basename(prefix))]
    assert sum(os.path.getsize(os.path.join(path, f)) for f in files) < 20e6
    shapes = ckpt.variable_shapes(path)
    assert shapes == {**variable_shapes(), "global_step": []}        # no optimizer slots
    step = int(ckpt.read_variables(path, ["global_step"])["global_step"])
    assert prefix.endswith(f"-{step}")

    images, labels = small_split("fashion").test_x[:100], small_split("fashion").test_y[:100]
    acc = models.accuracy(get_spec("fashion"), path, images, labels)
    weights = ckpt.read_variables(path, VARIABLE_NAMES)
    expected = np.mean(numpy_forward(weights, images).argmax(1) == labels)
    assert acc == pytest.approx(expected, abs=1 / 100)
    assert acc > 0.75                                                 # trained, not random
