"""PGD, APGD, FGSM and the worst case against independent per-image numpy loops written from
the algorithms' definitions, on the small fixture networks (units [-0.5, 0.5])."""
import os

import numpy as np
import pytest
import tensorflow as tf

from bsattack import data
from bsattack.attacks import apgd as apgd_module
from bsattack.attacks.apgd import APGD, APGDSettings
from bsattack.attacks.base import STREAMS
from bsattack.attacks.cw import CarliniLinf, CWSettings
from bsattack.attacks.fgsm import FGSM, FGSMSettings
from bsattack.attacks.model import Model
from bsattack.attacks.network import AttackSession
from bsattack.attacks.pgd import LinfPGD, PGDSettings
from bsattack.attacks.worst import WorstCase, WorstSettings
from bsattack.datasets import get_spec
from support.plain_model import apgd_loop, PlainModel, correctly_classified, recording_build

tf1 = tf.compat.v1
TOLERANCE = 1e-6            # an L∞ within a threshold up to float rounding


@pytest.fixture(scope="module")
def mnist(small_checkpoint, small_split):
    """(independent oracle, attack Model, correctly classified fixture images in [-0.5, 0.5],
    labels, their test indices)."""
    split = small_split("mnist")
    checkpoint = small_checkpoint("mnist")
    plain = PlainModel(get_spec("mnist"), checkpoint)
    model = Model(get_spec("mnist"), checkpoint)
    yield (plain, model, *correctly_classified(plain, split, 80))
    model.close()


def box(v, x, eps):
    """Onto the ε-ball around x, then onto [-0.5, 0.5]."""
    return np.clip(np.clip(v, x - eps, x + eps), -0.5, 0.5)


# --- PGD ----------------------------------------------------------------------------------

def pgd_loop(plain, x, y, eps, step, steps, loss, start):
    """Madry's PGD for one image from ``start``, stopping at the first iterate the network
    misclassifies: (example, fooled, gradient evaluations)."""
    adv = start.copy()
    for k in range(steps):
        _, grad, logits = plain.evaluate(adv, y, loss)
        if logits.argmax() != y:
            return adv, True, k + 1
        adv = box(adv + np.float32(step) * np.sign(grad), x, np.float32(eps))
    return adv, plain.predict(adv)[0] != y, steps


@pytest.mark.parametrize("loss", ["xent", "cw"])
def test_pgd_matches_numpy_loop_without_random_start(mnist, loss):
    """Two thresholds: an image fooled at the smaller is decided; the others are attacked again
    at the larger, and their evaluations add up."""
    plain, model, x, y, _ = mnist
    x, y, limits = x[:24], y[:24], (0.05, 0.1)
    settings = PGDSettings(steps=10, step_size=0.01, loss=loss, random_start=False,
                           batch_size=7)
    result = LinfPGD(model, settings).run(x, y, limits)
    expected, linf, evals = x.copy(), np.full(len(x), np.inf), np.zeros(len(x), np.int64)
    for i in range(len(x)):
        for eps in limits:
            adv, fooled, spent = pgd_loop(plain, x[i], y[i], eps, 0.01, 10, loss, x[i])
            evals[i] += spent
            if fooled:
                expected[i], linf[i] = adv, np.abs(adv - x[i]).max()
                break
    assert np.isfinite(linf).any() and not np.isfinite(linf).all(), linf
    np.testing.assert_array_equal(result.success_table,
                                  np.stack([linf <= t + TOLERANCE for t in limits], 1))
    np.testing.assert_array_equal(result.grad_evals, evals)
    same = np.abs(result.adversarial - expected).max(axis=1) < 1e-5
    assert same.sum() >= len(x) - 1, same        # a float sign tie may flip a pixel
    np.testing.assert_array_equal(result.success(limits[-1]),
                                  result.found & (plain.predict(result.adversarial) != y))
    found = result.found
    np.testing.assert_array_equal(result.linf[found],
                                  np.abs(result.adversarial - x).max(axis=1)[found])
    assert set(result.found_by[found]) == {"pgd"} and set(result.found_by[~found]) == {""}


def test_pgd_random_start_is_keyed_per_image(mnist):
    """The same image gives the same result alone, in another batch size, in another order,
    or as part of a longer run; the start is x + U(−ε, ε) from the image's own generator."""
    plain, model, x, y, ids = mnist
    x, y, ids = x[:20], y[:20], ids[:20]
    settings = PGDSettings(steps=6, step_size=0.01, seed=3, batch_size=8)
    whole = LinfPGD(model, settings).run(x, y, [0.1], ids)
    order = np.arange(len(x))[::-1]
    reversed_ = LinfPGD(model, PGDSettings(steps=6, step_size=0.01, seed=3, batch_size=3)).run(
        x[order], y[order], [0.1], ids[order])
    part = LinfPGD(model, settings).run(x[5:9], y[5:9], [0.1], ids[5:9])
    for i in range(5, 9):
        alone = LinfPGD(model, settings).run(x[i:i + 1], y[i:i + 1], [0.1], ids[i:i + 1])
        for other, j in ((alone, 0), (part, i - 5), (reversed_, len(x) - 1 - i)):
            np.testing.assert_array_equal(other.adversarial[j], whole.adversarial[i])
            assert other.grad_evals[j] == whole.grad_evals[i]
            assert other.linf[j] == whole.linf[i]
    np.testing.assert_array_equal(reversed_.linf[order], whole.linf)
    # the example of an image fooled at its start is the keyed start itself
    rng = [np.random.default_rng([3, int(i), 1, 0]) for i in ids]
    starts = np.stack([np.clip(x[k] + np.float32(0.1) * r.uniform(-1, 1, x.shape[1])
                               .astype(np.float32), -0.5, 0.5) for k, r in enumerate(rng)])
    at_start = whole.grad_evals == 1
    np.testing.assert_array_equal(at_start & whole.found,
                                  plain.predict(starts) != y)
    np.testing.assert_allclose(whole.adversarial[at_start], starts[at_start], atol=1e-7)
    other_seed = LinfPGD(model, PGDSettings(steps=6, step_size=0.01, seed=4)).run(
        x, y, [0.1], ids)
    assert not np.array_equal(other_seed.adversarial, whole.adversarial)


def test_pgd_restarts_add_successes_and_spend_only_on_images_not_fooled(mnist):
    plain, model, x, y, ids = mnist
    x, y, ids = x[:30], y[:30], ids[:30]
    one = LinfPGD(model, PGDSettings(steps=4, restarts=1, seed=1)).run(x, y, [0.06], ids)
    three = LinfPGD(model, PGDSettings(steps=4, restarts=3, seed=1)).run(x, y, [0.06], ids)
    for r in (one, three):
        assert r.linf[r.found].max() <= 0.06 + TOLERANCE
        assert r.adversarial.min() >= -0.5 and r.adversarial.max() <= 0.5
        np.testing.assert_array_equal(r.found, plain.predict(r.adversarial) != y)
    fooled = one.found
    assert fooled.any() and not fooled.all()
    assert (three.found >= one.found).all() and three.found.sum() > one.found.sum()
    # restart 0 is the one-restart run; later restarts only on the images it left
    np.testing.assert_array_equal(three.grad_evals[fooled], one.grad_evals[fooled])
    np.testing.assert_array_equal(three.adversarial[fooled], one.adversarial[fooled])
    assert (three.grad_evals[~fooled] > one.grad_evals[~fooled]).all()
    assert (three.grad_evals <= 12).all()
    assert (three.grad_evals[~three.found] == 12).all()


# --- APGD ---------------------------------------------------------------------------------

def xent(logits, y):
    z = logits.astype(np.float64)
    return np.log(np.exp(z - z.max()).sum()) + z.max() - z[y]


def dlr(logits, y):
    z = logits.astype(np.float64)
    other = np.max(np.delete(z, y))
    ranked = np.sort(z)[::-1]
    return -(z[y] - other) / (ranked[0] - ranked[2] + 1e-12)


@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_apgd_matches_numpy_loop(mnist, loss):
    plain, model, x, y, ids = mnist
    x, y, ids, eps = x[:12], y[:12], ids[:12], 0.05
    result = APGD(model, APGDSettings(iterations=20, loss=loss, batch_size=5, seed=2)).run(
        x, y, [eps], ids)
    starts = apgd_module.random_start(x, eps, ids, 2, (STREAMS["apgd"], 0), (-0.5, 0.5))
    f_of, oracle = {"ce": (xent, "xent"), "dlr": (dlr, "dlr")}[loss]
    runs = [apgd_loop(lambda v, i=i: plain.evaluate(v, y[i], oracle)[1:],
                      lambda z, i=i: f_of(z, y[i]), x[i], y[i], eps, 20, starts[i])
            for i in range(len(x))]
    fooled = np.array([r[1] for r in runs])
    evals = np.array([r[2] for r in runs])
    expected = np.stack([r[0] for r in runs])
    assert fooled.any() and not fooled.all(), fooled
    assert (evals[fooled] > 1).any() and (evals[~fooled] == 21).all()
    assert sum(r[3] for r in runs) > 0               # η was halved: restarts from x_max ran
    np.testing.assert_array_equal(result.found, fooled)
    np.testing.assert_array_equal(result.grad_evals, evals)
    close = np.abs(result.adversarial[fooled] - expected[fooled]).max(axis=1) < 1e-5
    assert close.sum() >= fooled.sum() - 1, close   # a float sign tie may flip a pixel
    np.testing.assert_array_equal(result.found, plain.predict(result.adversarial) != y)


def test_apgd_checkpoint_schedule():
    """⌊0.22N⌋ first, periods ⌊0.03N⌋ shorter down to ⌊0.06N⌋ (Croce & Hein's N = 100:
    checkpoints 22, 41, 57, 70, 80, 86, ...)."""
    assert apgd_module.schedule(100) == (22, 3, 6)
    assert apgd_module.schedule(20) == (4, 1, 1)
    assert apgd_module.schedule(3) == (1, 1, 1)


# --- FGSM ---------------------------------------------------------------------------------

def test_fgsm_is_the_closed_form(mnist):
    plain, model, x, y, ids = mnist
    x, y, ids = x[:30], y[:30], ids[:30]
    limits = (0.05, 0.15)
    result = FGSM(model, FGSMSettings(batch_size=7)).run(x, y, limits, ids)
    grad = plain.gradient(x, y, "xent")
    linf, evals = np.full(len(x), np.inf), np.zeros(len(x), np.int64)
    expected = x.copy()
    for eps in limits:
        step = np.clip(x + np.float32(eps) * np.sign(grad), -0.5, 0.5)
        fooled = (plain.predict(step) != y) & ~np.isfinite(linf)
        evals += ~np.isfinite(linf)
        expected[fooled] = step[fooled]
        linf[fooled] = np.abs(step - x).max(axis=1)[fooled]
    assert np.isfinite(linf).any() and not np.isfinite(linf).all()
    assert (np.abs(result.adversarial - expected).max(axis=1) < 1e-6).mean() >= 0.9
    assert (result.found == np.isfinite(linf)).mean() >= 0.95
    np.testing.assert_array_equal(result.grad_evals, evals)


# --- worst case ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def worst_members():
    return WorstSettings(full=(PGDSettings(steps=3, step_size=0.01, batch_size=9),
                               CWSettings(max_iterations=2, batch_size=9)),
                         cascade=(APGDSettings(iterations=5, batch_size=9),),
                         square_queries=0)     # Square's place: tests/attacks/test_worst_square.py


def test_worst_case_is_the_best_member_per_image(mnist, worst_members):
    """Success at each threshold = OR of the members' (full members on every image, the
    cascade member from the largest threshold down on the images still left at it and, below
    the largest, fooled at the next larger one), the smallest-L∞ example kept with the name of
    the member that found it, evaluations summed."""
    plain, model, x, y, ids = mnist
    x, y, ids, limits = x[:24], y[:24], ids[:24], (0.04, 0.08)
    seen = []
    worst = WorstCase(model, worst_members, build=recording_build(seen)).run(x, y, limits, ids)
    pgd = LinfPGD(model, worst_members.full[0]).run(x, y, limits, ids)
    cw = CarliniLinf(model, worst_members.full[1]).run(x, y, limits, ids)
    linf, name = np.full(len(x), np.inf), np.full(len(x), "", object)
    evals = pgd.grad_evals + cw.grad_evals
    success = {t: cw.success(t) | pgd.success(t) for t in limits}

    def take(result, rows, member):
        for k, i in enumerate(rows):
            if result.linf[k] < linf[i]:
                linf[i], name[i] = result.linf[k], member
    take(pgd, np.arange(len(x)), "pgd")
    take(cw, np.arange(len(x)), "cw")
    expected_seen = [("pgd", list(ids)), ("cw", list(ids))]
    for t in sorted(limits, reverse=True):    # the cascade, largest threshold first
        left = ~success[t] & (success[max(limits)] if t < max(limits) else True)
        left = np.flatnonzero(left)
        assert 0 < len(left) < len(x)
        expected_seen.append(("apgd", list(ids[left])))
        part = APGD(model, worst_members.cascade[0]).run(x[left], y[left], (t,), ids[left])
        evals[left] += part.grad_evals
        take(part, left, "apgd")
        for u in limits:
            success[u][left] |= part.success(u)
    assert seen == expected_seen
    for t in limits:
        np.testing.assert_array_equal(worst.success(t), success[t])
    np.testing.assert_array_equal(worst.linf, linf)
    np.testing.assert_array_equal(worst.found_by, name)
    np.testing.assert_array_equal(worst.grad_evals, evals)
    assert {"cw", "pgd"} <= set(name), name     # ties go to the earlier member
    np.testing.assert_array_equal(worst.found, plain.predict(worst.adversarial) != y)


def test_worst_case_uses_known_member_results(mnist, worst_members):
    _, model, x, y, ids = mnist
    x, y, ids, limits = x[:16], y[:16], ids[:16], (0.04, 0.08)
    built = []

    def build(model_, settings):
        from bsattack.attacks import registry
        built.append(settings.name)
        return registry.build(model_, settings)

    from bsattack.attacks import registry
    cw = CarliniLinf(model, worst_members.full[1]).run(x, y, limits, ids)
    fresh = WorstCase(model, worst_members, build=registry.build).run(x, y, limits, ids)
    reused = WorstCase(model, worst_members, build=build).run(x, y, limits, ids,
                                                             known={"cw": cw})
    assert "cw" not in built and "pgd" in built
    for field in ("adversarial", "linf", "grad_evals", "found_by"):
        np.testing.assert_array_equal(getattr(reused, field), getattr(fresh, field))


def test_shared_logits_fn_reuses_the_same_weights(mnist):
    plain, model, x, _, _ = mnist
    net = AttackSession(get_spec("mnist"), model.net.checkpoint)
    with net.graph.as_default():
        other = tf1.placeholder(tf.float32, [None, 784])
        logits = net.logits_fn(other)
        n_vars = len(tf1.global_variables())
    net.start()
    assert n_vars == len(net.model.variables)                 # no second set of weights
    np.testing.assert_allclose(net.sess.run(logits, {other: x + 0.5}), plain.logits(x),
                               atol=1e-4)
    net.close()


# --- slow: the stand-in checkpoints of ../shared ------------------------------------------

@pytest.fixture(scope="module")
def fashion_adv(shared_dir):
    """The stand-in fashion_adv, its first 1,000 test images (in [-0.5, 0.5]) and PGD-100
    (ε=0.1, step 0.01, one random start) on them."""
    checkpoint = os.path.join(shared_dir, "checkpoints", "fashion_adv")
    split = data.load(get_spec("fashion"), os.path.join(shared_dir, "data"), download=False)
    x = split.test_x[:1000].reshape(1000, -1) - np.float32(0.5)
    y = split.test_y[:1000].astype(np.int64)
    model = Model(get_spec("fashion"), checkpoint)
    result = LinfPGD(model, PGDSettings(steps=100, step_size=0.01)).run(x, y, [0.1])
    yield model, x, y, PlainModel(get_spec("fashion"), checkpoint), result
    model.close()


@pytest.mark.slow
def test_fashion_adv_pgd100_matches_independent_loop(fashion_adv):
    """Robust accuracy under PGD-100 vs Madry's batched numpy loop (last iterate), within 1
    point."""
    model, x, y, plain, result = fashion_adv
    natural = plain.predict(x) == y
    robust = np.mean(natural & (plain.predict(result.adversarial) == y))
    rng = np.random.default_rng(123)
    adv = np.clip(x + rng.uniform(-0.1, 0.1, x.shape).astype(np.float32), -0.5, 0.5)
    for _ in range(100):
        grad = np.concatenate([plain.gradient(adv[i:i + 200], y[i:i + 200], "xent")
                               for i in range(0, 1000, 200)])
        adv = box(adv + np.float32(0.01) * np.sign(grad), x, np.float32(0.1))
    robust_independent = np.mean(natural & (plain.predict(adv) == y))
    print(f"PGD-100 robust accuracy: bsattack {robust:.2%}, independent loop "
          f"{robust_independent:.2%}")
    assert abs(robust - robust_independent) <= 0.01


@pytest.mark.slow
def test_fashion_adv_cw_success_at_least_pgd(fashion_adv):
    """The default C&W (box variant) succeeds at ε at least as often as PGD-100 on the first
    100 attacked Fashion-MNIST images."""
    model, x, y, plain, result = fashion_adv
    sub = np.flatnonzero(plain.predict(x) == y)[:100]
    cw = CarliniLinf(model, CWSettings()).run(x[sub], y[sub], [0.1], sub)
    cw_success, pgd_success = cw.success(0.1).mean(), result.success(0.1)[sub].mean()
    print(f"success at ε on {len(sub)} images: C&W L∞ {cw_success:.2%}, "
          f"PGD-100 {pgd_success:.2%}")
    assert cw_success >= pgd_success
