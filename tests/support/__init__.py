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
