"""APGD-T against a plain numpy loop on a linear network (closed-form gradients): the
targeted DLR loss and its gradient, the target order, APGD's step-size schedule (η halvings,
restarts from the best point) and momentum per target, the cascade over targets on the
images not yet fooled, the budget."""
import numpy as np
import pytest
import tensorflow as tf

from bsattack.attacks import apgd as apgd_module
from bsattack.attacks.apgd_targeted import (APGDTargeted, APGDTSettings, TargetedDLR,
                                            target_classes)
from bsattack.attacks.base import STREAMS
from bsattack.attacks.model import LogitsModel
from support.plain_model import apgd_loop

DIM, CLASSES = 24, 10


@pytest.fixture(scope="module")
def linear():
    rng = np.random.default_rng(2)
    w = rng.normal(0, 1, (DIM, CLASSES)).astype(np.float32)
    b = rng.normal(0, 0.1, CLASSES).astype(np.float32)
    model = LogitsModel(lambda x: tf.matmul(x, tf.constant(w)) + tf.constant(b), DIM,
                        (-0.5, 0.5))
    x = rng.uniform(-0.5, 0.5, (40, DIM)).astype(np.float32)
    labels = (x @ w + b).argmax(1).astype(np.int64)       # correctly classified by definition
    yield model, w, b, x, labels
    model.close()


def dlr_targeted(z, y, t):
    z = z.astype(np.float64)
    ranked = np.sort(z)[::-1]
    return -(z[y] - z[t]) / (ranked[0] - (ranked[2] + ranked[3]) / 2 + 1e-12)


def dlr_targeted_gradient(z, y, t, w):
    """d DLR_t / d x for logits z = x·W + b."""
    z = z.astype(np.float64)
    order = np.argsort(-z, kind="stable")
    scale = z[order[0]] - (z[order[2]] + z[order[3]]) / 2 + 1e-12
    d_scale = np.zeros(len(z))
    d_scale[order[0]], d_scale[order[2]], d_scale[order[3]] = 1, -0.5, -0.5
    d = (z[y] - z[t]) / scale ** 2 * d_scale
    d[y] -= 1 / scale
    d[t] += 1 / scale
    return w.astype(np.float64) @ d


def test_targeted_dlr_and_its_gradient_are_the_formula(linear):
    model, w, b, x, labels = linear
    targets = target_classes(x @ w + b, labels, 3)[:, 2]
    value, grad, logits = model.value_and_grad(x, labels, TargetedDLR, targets)
    for i in range(len(x)):
        assert value[i] == pytest.approx(dlr_targeted(logits[i], labels[i], targets[i]),
                                         rel=1e-4, abs=1e-6)
        np.testing.assert_allclose(grad[i], dlr_targeted_gradient(logits[i], labels[i],
                                                                  targets[i], w),
                                   rtol=1e-3, atol=1e-5)


def test_targets_are_the_highest_other_logits():
    z = np.array([[0.1, 5.0, 3.0, -1.0, 4.0]])
    np.testing.assert_array_equal(target_classes(z, np.array([1]), 3), [[4, 2, 0]])
    np.testing.assert_array_equal(target_classes(z, np.array([4]), 2), [[1, 2]])


def test_apgd_t_is_the_numpy_loop_target_after_target(linear):
    model, w, b, x, labels = linear
    eps, iterations, count = 0.08, 12, 3
    ids = np.arange(len(x)) + 100
    result = APGDTargeted(model, APGDTSettings(iterations=iterations, targets=count,
                                               batch_size=7, seed=3)).run(x, labels, [eps], ids)
    targets = target_classes(x @ w + b, labels, count)
    found, evals, examples, fooled_by_rank = [], [], [], []
    for i in range(len(x)):
        spent, hit, example = 0, False, x[i]
        for rank in range(count):
            start = apgd_module.random_start(x[i:i + 1], eps, ids[i:i + 1], 3,
                                             (STREAMS["apgd-t"], 0, rank), (-0.5, 0.5))[0]
            t = targets[i, rank]

            def evaluate(v, t=t, i=i):
                z = (v @ w + b).astype(np.float32)
                return dlr_targeted_gradient(z, labels[i], t, w).astype(np.float32), z
            example, hit, used, _ = apgd_loop(evaluate,
                                              lambda z, t=t, i=i: dlr_targeted(z, labels[i], t),
                                              x[i], labels[i], eps, iterations, start)
            spent += used
            if hit:
                fooled_by_rank.append(rank)
                break
        found.append(hit)
        evals.append(spent)
        examples.append(example)
    found, evals = np.array(found), np.array(evals)
    assert found.any() and not found.all(), found
    assert max(fooled_by_rank) > 0                  # a later target fooled what earlier ones left
    np.testing.assert_array_equal(result.found, found)
    np.testing.assert_array_equal(result.grad_evals, evals)
    np.testing.assert_allclose(result.adversarial[found], np.array(examples)[found], atol=1e-5)
    assert (result.grad_evals <= count * (iterations + 1)).all()
    assert (evals[~found] == count * (iterations + 1)).all()
    adv = result.adversarial
    assert (np.abs(adv - x).max(axis=1) <= eps + 1e-6).all()
    assert adv.min() >= -0.5 and adv.max() <= 0.5
    np.testing.assert_array_equal((adv @ w + b).argmax(1)[result.found] != labels[result.found],
                                  True)


def test_apgd_t_only_attacks_what_is_left(linear):
    """A second threshold runs only on the images the first left (FixedBudgetAttack), and a
    target runs only on the images the earlier targets left: no evaluation is spent on a
    fooled image."""
    model, w, b, x, labels = linear
    settings = APGDTSettings(iterations=10, targets=4, batch_size=16)
    one = APGDTargeted(model, settings).run(x, labels, [0.05], np.arange(len(x)))
    two = APGDTargeted(model, settings).run(x, labels, [0.05, 0.5], np.arange(len(x)))
    at_first = one.success(0.05)
    np.testing.assert_array_equal(two.grad_evals[at_first], one.grad_evals[at_first])
    assert (two.grad_evals[~at_first] > one.grad_evals[~at_first]).all()


@pytest.mark.parametrize("eps", [0.02, 0.04])
def test_apgd_t_step_schedule_is_the_numpy_loop_to_the_last_iterate(linear, eps):
    """On the images one target cannot fool, the APGD core under the targeted DLR loss walks
    the numpy loop's path to its last iterate: every η halving at the checkpoints, the restart
    from the best point and the momentum step (a wrong schedule moves the last iterate)."""
    model, w, b, x, labels = linear
    iterations, ids = 40, np.arange(len(x))
    targets = target_classes(x @ w + b, labels, 1)[:, 0]
    start = apgd_module.random_start(x, eps, ids, 5, (STREAMS["apgd-t"], 0, 0), (-0.5, 0.5))
    last, hit, evals = apgd_module.apgd(model, x, labels, eps, start, iterations, 9,
                                        TargetedDLR, targets)
    runs = []
    for i in range(len(x)):
        def evaluate(v, i=i):
            z = (v @ w + b).astype(np.float32)
            return dlr_targeted_gradient(z, labels[i], targets[i], w).astype(np.float32), z
        runs.append(apgd_loop(evaluate, lambda z, i=i: dlr_targeted(z, labels[i], targets[i]),
                              x[i], labels[i], eps, iterations, start[i]))
    expected = np.stack([r[0] for r in runs])
    fooled = np.array([r[1] for r in runs])
    halvings = np.array([r[3] for r in runs])
    np.testing.assert_array_equal(hit, fooled)
    np.testing.assert_array_equal(evals, [r[2] for r in runs])
    left = ~fooled
    assert left.sum() >= 10 and (halvings[left] >= 3).all()     # the schedule was exercised
    close = np.abs(last[left] - expected[left]).max(axis=1) < 1e-5
    assert close.all(), close
