"""Each shift family against an independent computation (numpy loops, hand-written bilinear
sampling and Gaussian convolution), plus range and strength validation."""
import math

import numpy as np
import pytest

from bsattack import shifts
from bsattack.errors import BsattackError
from bsattack.shifts import DEFAULT_SHIFTS, ORIGINAL, BlindSpot, Shift, parse
from bsattack.transforms import blindspot

SIDE = 28


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(1)
    x = rng.random((4, SIDE * SIDE)).astype(np.float32) - 0.5
    x[:, :SIDE * 3] = -0.5          # some black background, as in the data
    return x


def _pad(x, width):
    return np.pad(x.reshape(-1, SIDE, SIDE), ((0, 0), (width, width), (width, width)),
                  constant_values=-0.5)


@pytest.mark.parametrize("gamma", [0.5, 0.75, 1.5, 2.0])
def test_gamma_is_a_power_curve_on_0_1(images, gamma):
    x01 = images.astype(np.float64) + 0.5
    expected = np.array([[v ** gamma for v in row] for row in x01[:2]]) - 0.5
    np.testing.assert_allclose(Shift("gamma", gamma)(images[:2]), expected, atol=1e-6)


@pytest.mark.parametrize("sigma", [0.5, 1.0])
def test_blur_equals_a_direct_gaussian_convolution(images, sigma):
    radius = int(4.0 * sigma + 0.5)             # scipy's truncate=4 kernel support
    taps = np.array([math.exp(-t * t / (2 * sigma * sigma)) for t in range(-radius, radius + 1)])
    kernel = np.outer(taps, taps) / taps.sum() ** 2
    padded = _pad(images.astype(np.float64), radius)
    expected = np.zeros((len(images), SIDE, SIDE))
    for i in range(2 * radius + 1):
        for j in range(2 * radius + 1):
            expected += kernel[i, j] * padded[:, i:i + SIDE, j:j + SIDE]
    np.testing.assert_allclose(Shift("blur", sigma)(images).reshape(-1, SIDE, SIDE), expected,
                               atol=1e-5)


@pytest.mark.parametrize("pixels", [-2, -1, 1, 2])
def test_translations_move_whole_pixels_and_fill_black(images, pixels):
    x = images.reshape(-1, SIDE, SIDE)
    for family, axis in (("translate-x", 2), ("translate-y", 1)):
        expected = np.full_like(x, -0.5)
        src = [slice(None)] * 3
        dst = [slice(None)] * 3
        if pixels > 0:
            src[axis], dst[axis] = slice(0, SIDE - pixels), slice(pixels, SIDE)
        else:
            src[axis], dst[axis] = slice(-pixels, SIDE), slice(0, SIDE + pixels)
        expected[tuple(dst)] = x[tuple(src)]
        np.testing.assert_array_equal(Shift(family, pixels)(images).reshape(x.shape), expected)


def test_rotation_direction_is_counter_clockwise(images):
    x = images.reshape(-1, SIDE, SIDE)
    np.testing.assert_allclose(shifts._rotate(x, 90.0), np.rot90(x, 1, axes=(1, 2)), atol=1e-6)


def _bilinear_rotation(image, degrees):
    """Counter-clockwise rotation about the centre, black outside, by explicit bilinear
    sampling of the inverse-rotated coordinates."""
    theta = math.radians(degrees)
    centre = (SIDE - 1) / 2
    padded = np.pad(image.astype(np.float64), 2, constant_values=-0.5)
    out = np.empty((SIDE, SIDE))
    for r in range(SIDE):
        for c in range(SIDE):
            x, y = c - centre, centre - r                         # y axis up
            xs = math.cos(theta) * x + math.sin(theta) * y
            ys = -math.sin(theta) * x + math.cos(theta) * y
            rs, cs = centre - ys + 2, xs + centre + 2              # into the padded array
            r0, c0 = math.floor(rs), math.floor(cs)
            if not (0 <= r0 < SIDE + 3 and 0 <= c0 < SIDE + 3):
                out[r, c] = -0.5
                continue
            fr, fc = rs - r0, cs - c0
            out[r, c] = ((1 - fr) * (1 - fc) * padded[r0, c0] + (1 - fr) * fc * padded[r0, c0 + 1]
                         + fr * (1 - fc) * padded[r0 + 1, c0] + fr * fc * padded[r0 + 1, c0 + 1])
    return out


@pytest.mark.parametrize("degrees", [-10.0, 15.0])
def test_rotation_equals_explicit_bilinear_sampling(images, degrees):
    got = Shift("rotate", degrees)(images[:2]).reshape(-1, SIDE, SIDE)
    for g, x in zip(got, images[:2].reshape(-1, SIDE, SIDE)):
        np.testing.assert_allclose(g, _bilinear_rotation(x, degrees), atol=1e-5)


def test_invert(images):
    np.testing.assert_array_equal(Shift("invert", 1)(images), -images)


def test_every_default_shift_stays_in_range_and_keeps_shape(images):
    for shift in DEFAULT_SHIFTS:
        out = shift(images)
        assert out.shape == images.shape and out.dtype == images.dtype
        assert out.min() >= -0.5 and out.max() <= 0.5, shift.name


@pytest.mark.parametrize("family, strength", [
    ("gamma", 0.0), ("gamma", 9), ("blur", 0), ("blur", -1), ("translate-x", 1.5),
    ("translate-y", 7), ("translate-x", 0), ("rotate", 90), ("rotate", 0), ("invert", 2),
    ("gamma", float("nan")), ("zoom", 1)])
def test_bad_strengths_are_one_line_errors(family, strength):
    with pytest.raises(BsattackError) as err:
        Shift(family, strength)
    assert "\n" not in str(err.value)


def test_parse_and_labels():
    assert parse("rotate:-10") == Shift("rotate", -10)
    assert parse("translate-x:2").name == "translate-x2"
    with pytest.raises(BsattackError):
        parse("rotate")
    with pytest.raises(BsattackError):
        Shift("blur", 1)(np.zeros((2, 10), np.float32))
    assert ORIGINAL.is_original and ORIGINAL.name == "original" and BlindSpot() == ORIGINAL
    assert BlindSpot(0.9, 0.05).name == "alpha0.9-beta0.05"
    assert BlindSpot(0.9, 0.05).family == "scale-shift (paper)"
    assert Shift("blur", 0.5).family == "blur" and not Shift("blur", 0.5).is_original


@pytest.mark.parametrize("alpha, beta", [(0.9, 0.05), (0.7, -0.15), (0.8, 0.0), (1.0, 0.0)])
def test_blindspot_shift_is_the_transform_bit_for_bit(images, alpha, beta):
    t = BlindSpot(alpha, beta)
    out = t(images)
    np.testing.assert_array_equal(out, blindspot(images, alpha, beta))
    expected = (images.astype(np.float64) * alpha + beta).astype(np.float32)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == images.dtype and (t.alpha, t.beta) == (alpha, beta)
    assert t.key() == {"alpha": alpha, "beta": beta}


def test_blindspot_thresholds_ascend_and_collapse_at_alpha_one():
    assert BlindSpot(0.8, 0.1).thresholds(0.3) == (0.8 * 0.3, 0.3)
    assert BlindSpot().thresholds(0.1) == (0.1,)
    assert Shift("rotate", 10).thresholds(0.1) == (0.1,)


@pytest.mark.parametrize("alpha, beta", [(0.0, 0.0), (1.1, 0.0), (0.8, 0.2), (float("nan"), 0),
                                         ("a", 0)])
def test_invalid_blindspot_is_a_one_line_error(alpha, beta):
    with pytest.raises(BsattackError) as err:
        BlindSpot(alpha, beta)
    assert "\n" not in str(err.value)


def test_shifts_take_any_square_side():
    x = np.full((2, 16 * 16), -0.5, np.float32)
    x[:, 0] = 0.5
    out = Shift("translate-x", 1)(x).reshape(2, 16, 16)
    assert out[0, 0, 1] == 0.5 and out[0, 0, 0] == -0.5
