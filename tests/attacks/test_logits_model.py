"""The Python API: any logits function in its own units (:class:`LogitsModel`), checked on a
linear model whose gradients are known in closed form."""
import numpy as np
import pytest
import tensorflow as tf

from bsattack.attacks import registry
from bsattack.attacks.apgd import APGDSettings
from bsattack.attacks.cw import CWSettings
from bsattack.attacks.fgsm import FGSMSettings
from bsattack.attacks.model import LogitsModel
from bsattack.attacks.pgd import LinfPGD, PGDSettings

DIM, CLASSES, BOUNDS = 20, 3, (0.0, 1.0)


@pytest.fixture(scope="module")
def linear():
    """logits = x·W + b on inputs in [0, 1], and 40 points it classifies by construction."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(DIM, CLASSES)).astype(np.float32)
    b = rng.normal(size=CLASSES).astype(np.float32)
    model = LogitsModel(lambda x: tf.matmul(x, tf.constant(w)) + tf.constant(b), DIM, BOUNDS)
    x = rng.uniform(0, 1, (40, DIM)).astype(np.float32)
    y = (x @ w + b).argmax(axis=1)
    yield model, w, b, x, y
    model.close()


def test_oracle_gradients_are_the_closed_form(linear):
    model, w, b, x, y = linear
    logits = x @ w + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(CLASSES)[y]
    value, grad, got = model.value_and_grad(x, y, "xent")
    np.testing.assert_allclose(got, logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(value, -np.log(p[np.arange(len(y)), y]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grad, (p - onehot) @ w.T, rtol=1e-4, atol=1e-5)
    other = np.where(onehot > 0, -np.inf, logits).argmax(1)
    value, grad, _ = model.value_and_grad(x, y, "margin")
    np.testing.assert_allclose(value, logits[np.arange(len(y)), y] - logits[np.arange(len(y)),
                                                                            other], atol=1e-5)
    np.testing.assert_allclose(grad, (w[:, y] - w[:, other]).T, atol=1e-5)


def test_pgd_in_the_model_units_matches_a_closed_form_loop(linear):
    model, w, b, x, y = linear
    eps, step, steps = 0.1, 0.02, 8
    result = LinfPGD(model, PGDSettings(steps=steps, step_size=step, random_start=False)).run(
        x, y, [eps])
    for i in range(len(x)):
        adv, fooled, evals = x[i].copy(), False, 0
        for _ in range(steps):
            z = adv @ w + b
            evals += 1
            if z.argmax() != y[i]:
                fooled = True
                break
            p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
            grad = (p - np.eye(CLASSES)[y[i]]) @ w.T
            adv = np.clip(np.clip(adv + np.float32(step) * np.sign(grad), x[i] - np.float32(eps),
                                  x[i] + np.float32(eps)), *BOUNDS)
        fooled = fooled or (adv @ w + b).argmax() != y[i]
        assert result.found[i] == fooled and result.grad_evals[i] == evals, i
        if fooled:
            np.testing.assert_allclose(result.adversarial[i], adv, atol=1e-6)
    assert result.found.any() and not result.found.all()


@pytest.mark.parametrize("settings", [PGDSettings(steps=10, step_size=0.02),
                                      APGDSettings(iterations=10), FGSMSettings(),
                                      CWSettings(max_iterations=3)],
                         ids=lambda s: s.name)
def test_every_attack_stays_in_the_model_box(linear, settings):
    """Examples in the model's own bounds [0, 1] (not the paper's [-0.5, 0.5]), within their
    threshold and misclassified."""
    model, w, b, x, y = linear
    limits = (0.05, 0.1)
    result = registry.build(model, settings).run(x, y, limits)
    assert result.adversarial.min() >= BOUNDS[0] and result.adversarial.max() <= BOUNDS[1]
    found = result.found
    assert found.any()
    assert ((result.adversarial[found] @ w + b).argmax(1) != y[found]).all()
    np.testing.assert_allclose(result.linf[found],
                               np.abs(result.adversarial - x).max(1)[found], atol=1e-6)
    assert (result.linf[found] <= limits[-1] + 1e-6).all()
