"""Helpers the tests share (no tests here): where the repository and its fixtures are, and the
helper modules beside this file (``hostile_cases``, ``plain_model``, ``mnist_forward``,
``cifar_synthetic``).  A test module imports helpers only from here, never from another test
module or from conftest (tests/project/test_architecture.py checks it)."""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTS = os.path.join(ROOT, "tests")
FIXTURES = os.path.join(TESTS, "fixtures")
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
FIXTURE_VALIDATION_SIZE = 100


def float32_kernels_of_the_fixtures():
    """Whether this CPU runs the float32 kernels the stored reference results were made with:
    oneDNN picks its kernels by instruction set, and the fixtures were made on a CPU with
    AVX-512.  Elsewhere an attack's long run of steps reproduces them within float rounding,
    not byte for byte."""
    from bsattack.environment import cpu
    return "avx512f" in cpu()["flags"]
