"""The blind-spot transform x' = αx + β: validation and values against float64 numpy."""
import math

import numpy as np
import pytest
import tensorflow as tf

from bsattack.errors import BsattackError
from bsattack.transforms import blindspot, to_01, to_pm, validate

PAPER_GRID = [(1.0, 0.0), (0.9, 0.0), (0.9, 0.05), (0.8, 0.0), (0.8, 0.1), (0.7, 0.0),
              (0.7, 0.15), (0.95, 0.0), (0.95, 0.025), (0.9, -0.05)]


@pytest.mark.parametrize("alpha,beta", PAPER_GRID)
def test_paper_grid_is_valid_and_stays_in_range(alpha, beta):
    x = np.concatenate([np.array([[-0.5, 0.5, 0.0]], np.float32),
                        np.random.default_rng(0).uniform(-0.5, 0.5, (4, 3)).astype(np.float32)])
    out = blindspot(x, alpha, beta)
    assert out.dtype == np.float32
    assert out.min() >= -0.5 and out.max() <= 0.5          # no clip was needed
    expected = x.astype(np.float64) * alpha + beta
    np.testing.assert_allclose(out, expected, atol=1e-7)


@pytest.mark.parametrize("alpha,beta,fragment", [
    (1.2, 0.0, "alpha must be in (0, 1]"),
    (0.0, 0.0, "alpha must be in (0, 1]"),
    (-0.5, 0.0, "alpha must be in (0, 1]"),
    (0.9, 0.2, "|beta| must be <= (1 - alpha)/2 = 0.05"),
    (0.9, -0.06, "|beta| must be <= (1 - alpha)/2"),
    (1.0, 0.01, "|beta| must be <= (1 - alpha)/2 = 0"),
    (math.nan, 0.0, "finite"),
    (0.9, math.inf, "finite"),
    ("a", 0.0, "numbers"),
])
def test_invalid_settings_raise_one_line_errors(alpha, beta, fragment):
    with pytest.raises(BsattackError) as info:
        validate(alpha, beta)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_edge_tolerance_accepts_float_rounding_only():
    validate(0.9, 0.05 + 1e-12)
    with pytest.raises(BsattackError):
        validate(0.9, 0.05 + 1e-6)


def test_tensor_input_matches_numpy():
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (3, 5)).astype(np.float32)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        out = sess.run(blindspot(tf.constant(x), 0.8, 0.1))
    np.testing.assert_allclose(out, x * 0.8 + 0.1, atol=1e-6)


def test_unit_shift_round_trip():
    x01 = np.linspace(0, 1, 11, dtype=np.float32)
    np.testing.assert_array_equal(to_pm(x01), x01 - np.float32(0.5))
    np.testing.assert_allclose(to_01(to_pm(x01)), x01, atol=1e-7)
