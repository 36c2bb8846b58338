"""Shared fixtures: the small committed data sets and checkpoints under tests/fixtures/.
The tests live in sub-folders mirroring the code (tests/attacks/, tests/library/, ...); the
helpers they share, and the paths below, are in tests/support/."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:            # tests/: the support package (pytest also puts it first)
    sys.path.insert(0, HERE)

from support import FIXTURE_VALIDATION_SIZE, FIXTURES, ROOT, SHARED  # noqa: E402

sys.path.insert(0, ROOT)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: end-to-end checks on ../shared (run with -m slow)")


@pytest.fixture(scope="session")
def fixture_data_dir():
    return os.path.join(FIXTURES, "data")


@pytest.fixture(scope="session")
def small_checkpoint():
    """Path of a small MNIST-architecture checkpoint for a data set ('mnist' or 'fashion')."""
    return lambda dataset: os.path.join(FIXTURES, "checkpoints", f"{dataset}_small")


@pytest.fixture(scope="session")
def small_split(fixture_data_dir):
    """The fixture data of a data set: 1,000 training and 500 test images."""
    from bsattack import data
    from bsattack.datasets import get_spec
    cache = {}

    def load(dataset):
        if dataset not in cache:
            cache[dataset] = data.load(get_spec(dataset), fixture_data_dir,
                                       validation_size=FIXTURE_VALIDATION_SIZE, download=False)
        return cache[dataset]
    return load


@pytest.fixture(scope="session")
def shared_dir():
    if not os.path.isdir(os.path.join(SHARED, "checkpoints")):
        pytest.skip("../shared is not present")
    return SHARED


@pytest.fixture
def full_disk_probe(monkeypatch):
    """os.write fails with ENOSPC for the writability probe (outputs.PROBE_BYTES bytes) only,
    as on a full disk where an empty file can still be created."""
    import errno

    from bsattack import outputs
    real_write = os.write

    def write(fd, data):
        if len(data) == outputs.PROBE_BYTES:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)
    monkeypatch.setattr(outputs.os, "write", write)
