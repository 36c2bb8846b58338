"""C&W L∞: the box variant against a per-image numpy loop of cw.py's algorithm, the reference
variant against li_attack.py's loop run per image in TF and bit for bit against the results
of the code before the attack contract, and the properties both variants promise."""
import os

import numpy as np
import pytest
import tensorflow as tf

from bsattack import models
from bsattack.attacks.cw import CarliniLinf, CWSettings
from bsattack.attacks.model import Model
from bsattack.attacks.pgd import LinfPGD, PGDSettings
from bsattack.datasets import get_spec
from support import FIXTURES, float32_kernels_of_the_fixtures
from support.plain_model import PlainModel, correctly_classified

tf1 = tf.compat.v1
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def mnist(small_checkpoint, small_split):
    split = small_split("mnist")
    checkpoint = small_checkpoint("mnist")
    plain = PlainModel(get_spec("mnist"), checkpoint)
    model = Model(get_spec("mnist"), checkpoint)
    yield (plain, model, checkpoint, *correctly_classified(plain, split, 60))
    model.close()


# --- box variant --------------------------------------------------------------------------

def box_cw_loop(plain, x, y, image_id, thresholds, max_iterations, inits=("gray", "noise"),
                seed=0, step=0.1):
    """cw.py's box variant, threshold mode, for one image: per start, τ from the largest
    threshold, projected Adam (lr step·τ) on c·max(0, margin) + hinge inside the τ-ball ∩ box;
    a misclassified iterate with loss < 1e-4·c ends the round: τ ← 0.9·min(τ, L∞), landing
    on a threshold it would step over, the next round warm-starts there (c kept, Adam reset);
    max_iterations steps per c, c doubling from 1e-5 to < 20.  (best L∞, evaluations)."""
    x32, smallest = x.astype(np.float32), thresholds[0]
    best, evals = np.inf, 0
    for init in inits:
        if best <= smallest + TOLERANCE:
            break
        if init == "gray":
            start = np.zeros_like(x32)
        else:
            noise = np.random.default_rng([seed, int(image_id)]).normal(0.0, 0.2, x.shape)
            start = np.clip(x32 + noise, -0.5, 0.5).astype(np.float32)
        tau = np.float32(thresholds[-1])
        adv = np.clip(np.clip(start, x32 - tau, x32 + tau), -0.5, 0.5)
        const, iters = np.float32(1e-5), 0
        m = v = np.zeros_like(x32)
        t = np.float32(0)
        while True:
            margin, grad, logits = plain.evaluate(adv, y, "margin")
            evals += 1
            dist = adv - x32
            outside = np.abs(dist) > tau
            hinge = np.sum(np.where(outside, np.abs(dist) - tau, 0))
            if const * max(margin, 0) + hinge < 1e-4 * const and logits.argmax() != y:
                linf = np.abs(dist).max()
                best = min(best, linf)
                new_tau = min(tau, linf) * 0.9
                over = [th for th in thresholds if new_tau < th < linf - TOLERANCE]
                new_tau = max(over) if over else new_tau
                if best <= smallest + TOLERANCE or new_tau <= 1 / 256:
                    break
                tau = np.float32(new_tau)
                adv = np.clip(np.clip(adv, x32 - tau, x32 + tau), -0.5, 0.5)
                m = v = np.zeros_like(x32)
                t, iters = np.float32(0), 0
                continue
            g = const * np.float32(margin > 0) * grad + np.sign(dist) * outside
            t = t + np.float32(1)
            m = np.float32(0.9) * m + np.float32(0.1) * g
            v = np.float32(0.999) * v + np.float32(0.001) * g * g
            lr = np.float32(step) * tau * np.sqrt(1 - np.float32(0.999) ** t) / (
                1 - np.float32(0.9) ** t)
            adv = np.clip(np.clip(adv - lr * m / (np.sqrt(v) + np.float32(1e-8)),
                                  x32 - tau, x32 + tau), -0.5, 0.5)
            iters += 1
            if iters >= max_iterations:
                const, iters = const * np.float32(2), 0
                if const >= 20:
                    break
    return best, evals


def test_box_variant_matches_numpy_loop(mnist):
    plain, model, _, x, y, ids = mnist
    x, y, ids, limits = x[:10], y[:10], ids[:10], (0.03, 0.06)
    settings = CWSettings(variant="box", max_iterations=3, batch_size=4)
    result = CarliniLinf(model, settings).run(x, y, limits, ids)
    runs = [box_cw_loop(plain, x[i], y[i], ids[i], limits, 3) for i in range(len(x))]
    linf = np.array([r[0] for r in runs])
    evals = np.array([r[1] for r in runs])
    for t in limits:
        expected = linf <= t + TOLERANCE
        assert expected.any() and not expected.all(), (t, linf)
        np.testing.assert_array_equal(result.success(t), expected)
    found = np.isfinite(linf)
    np.testing.assert_array_equal(result.found, found)
    np.testing.assert_allclose(result.linf[found], linf[found], atol=1e-5)
    np.testing.assert_array_equal(result.grad_evals, evals)
    assert evals.max() > 2 * 21 * 3 * 0.9           # some image ran both starts to the end


def test_start_order_changes_cost_not_success(mnist):
    """Threshold mode keeps the best of the starts: success is that of either start alone,
    whatever their order; an image its first start decides never runs the second."""
    _, model, _, x, y, ids = mnist
    x, y, ids, limits = x[:10], y[:10], ids[:10], (0.03, 0.06)

    def run(inits):    # batch 1: every job computed alone
        settings = CWSettings(max_iterations=3, inits=inits, batch_size=1)
        return CarliniLinf(model, settings).run(x, y, limits, ids)
    gray, noise = run(("gray",)), run(("noise",))
    gray_first, noise_first = run(("gray", "noise")), run(("noise", "gray"))
    for limit in limits:
        either = gray.success(limit) | noise.success(limit)
        np.testing.assert_array_equal(gray_first.success(limit), either)
        np.testing.assert_array_equal(noise_first.success(limit), either)
    decided = gray.success(limits[0])
    assert decided.any() and not decided.all()
    np.testing.assert_array_equal(gray_first.grad_evals[decided], gray.grad_evals[decided])
    np.testing.assert_array_equal(gray_first.grad_evals[~decided],
                                  (gray.grad_evals + noise.grad_evals)[~decided])


@pytest.fixture(scope="module")
def cw_run(mnist):
    plain, model, _, x, y, ids = mnist
    x, y, ids = x[:16], y[:16], ids[:16]
    result = CarliniLinf(model, CWSettings(max_iterations=5, batch_size=16)).run(
        x, y, [0.1, 0.2], ids)
    return plain, model, x, y, ids, result


def test_cw_examples_are_real(cw_run):
    plain, _, x, y, _, result = cw_run
    assert result.found.any()
    adv = result.adversarial[result.found]
    assert adv.min() >= -0.5 and adv.max() <= 0.5
    assert (plain.predict(adv) != y[result.found]).all()
    np.testing.assert_array_equal(result.linf[result.found],
                                  np.abs(adv - x[result.found]).max(axis=1))
    np.testing.assert_array_equal(result.adversarial[~result.found], x[~result.found])


def test_cw_success_at_least_pgd(cw_run):
    _, model, x, y, ids, result = cw_run
    pgd = LinfPGD(model, PGDSettings(steps=20, step_size=0.01)).run(x, y, [0.1, 0.2], ids)
    for t in (0.1, 0.2):
        assert result.success(t).mean() >= pgd.success(t).mean()
    assert result.success(0.1).mean() < 1               # not trivially everything


def test_minimal_mode_goes_at_least_as_low(cw_run):
    _, model, x, y, ids, result = cw_run
    rows = slice(1, 4)
    minimal = CarliniLinf(model, CWSettings(mode="minimal", max_iterations=5, batch_size=2)).run(
        x[rows], y[rows], [0.1, 0.2], ids[rows])
    both = minimal.found & result.found[rows]
    assert both.any()
    assert (minimal.linf[both] <= result.linf[rows][both] + 1e-6).all()
    assert minimal.found.sum() >= result.found[rows].sum()
    assert minimal.grad_evals.sum() > result.grad_evals[rows].sum()   # threshold mode stops early


# --- reference variant --------------------------------------------------------------------

class ReferenceCW:
    """li_attack.py's loop for ONE image, one session.run per step, TF1's own AdamOptimizer;
    the abort test reads loss and prediction of the same (pre-step) image, as bsattack does."""

    def __init__(self, spec, checkpoint, max_iterations):
        self.max_iterations = max_iterations
        self.graph = tf1.Graph()
        with self.graph.as_default():
            self.modifier = tf1.Variable(np.zeros((1, 784), np.float32))
            self.simg = tf1.placeholder(tf.float32, (1, 784))
            self.x = tf1.placeholder(tf.float32, (1, 784))
            self.lab = tf1.placeholder(tf.float32, (1, 10))
            self.tau = tf1.placeholder(tf.float32, [])
            self.const = tf1.placeholder(tf.float32, [])
            self.newimg = tf.tanh(self.modifier + self.simg) / 2
            self.sess = models.new_session(self.graph)
            model = models.load(self.sess, spec, checkpoint, self.newimg + 0.5)
            self.output = model.logits
            real = tf.reduce_sum(self.lab * self.output)
            other = tf.reduce_max((1 - self.lab) * self.output - self.lab * 10000)
            loss2 = tf.reduce_sum(tf.maximum(0.0, tf.abs(self.newimg - self.x) - self.tau))
            self.loss = self.const * tf.maximum(0.0, real - other) + loss2
            before = set(v.name for v in tf1.global_variables())
            self.train = tf1.train.AdamOptimizer(5e-3).minimize(self.loss,
                                                                var_list=[self.modifier])
            new = [v for v in tf1.global_variables() if v.name not in before]
            self.init = tf1.variables_initializer([self.modifier] + new)

    def doit(self, x, label, start, tau, const):
        onehot = np.eye(10, dtype=np.float32)[[label]]
        feed = {self.x: x[None], self.lab: onehot, self.tau: tau,
                self.simg: np.arctanh(start[None].astype(np.float64) * 1.999999)}
        self.sess.run(self.init)
        steps = 0
        while const < 20:
            feed[self.const] = const
            for _ in range(self.max_iterations):
                loss, out, img = self.sess.run([self.loss, self.output, self.newimg], feed)
                steps += 1
                if loss < 1e-4 * const and np.argmax(out) != label:
                    return img[0], const, steps
                self.sess.run(self.train, feed)
            const *= 2
        return None, const, steps

    def attack(self, x, label, start, threshold):
        tau, const, best, evals = 1.0, 1e-5, np.inf, 0
        while tau > 1 / 256:
            img, const, steps = self.doit(x, label, start, tau, const)
            evals += steps
            if img is None:
                break
            actual = np.abs(img - x).max()
            best = min(best, actual)
            if best <= threshold + TOLERANCE:
                break
            tau = min(tau, actual) * 0.9
            if tau < threshold < best:          # threshold mode: do not step over ε
                tau = threshold
            start = img
        return best, evals


def test_reference_variant_matches_per_image_reference_loop(mnist):
    _, model, checkpoint, x, y, _ = mnist
    x, y, eps = x[:4], y[:4], 0.3
    settings = CWSettings(variant="reference", max_iterations=10, inits=("noise",),
                          batch_size=3)
    batched = CarliniLinf(model, settings).run(x, y, [eps])
    reference = ReferenceCW(get_spec("mnist"), checkpoint, 10)
    expected = []
    for i in range(len(y)):
        noise = np.random.default_rng([0, i]).normal(0.0, 0.2, x[i].shape)
        start = np.clip(x[i] + noise, -0.5, 0.5).astype(np.float32)
        expected.append(reference.attack(x[i], y[i], start, eps))
    ref_linf = np.array([e[0] for e in expected])
    ref_evals = np.array([e[1] for e in expected])
    np.testing.assert_array_equal(batched.success(eps), ref_linf <= eps + TOLERANCE)
    assert np.isfinite(ref_linf).any()
    found = np.isfinite(ref_linf)
    np.testing.assert_allclose(batched.linf[found], ref_linf[found], atol=2e-3)
    np.testing.assert_allclose(batched.grad_evals, ref_evals, rtol=0.05)


def test_reference_variant_reproduces_the_old_code_bit_for_bit(mnist):
    """``--cw-variant reference`` gives exactly what the batched C&W gave before the attack
    contract (commit 2742bd0; tests/fixtures/make_reference_cw_old.py made the file), on a CPU
    with the fixtures' float32 kernels; elsewhere the same images are found with the same L∞
    and evaluations up to float rounding over the hundreds of Adam steps."""
    _, model, _, _, _, _ = mnist
    old = np.load(os.path.join(FIXTURES, "reference_cw_old.npz"))
    settings = CWSettings(variant="reference", max_iterations=10, batch_size=5)
    new = CarliniLinf(model, settings).run(old["x_pm"], old["label"], list(old["thresholds"]))
    at_smaller = old["linf"] <= old["thresholds"][0] + TOLERANCE
    assert at_smaller.any() and not at_smaller.all()
    for field in ("adversarial", "linf", "grad_evals", "found"):
        assert getattr(new, field).dtype == old[field].dtype, field
    if float32_kernels_of_the_fixtures():
        for field in ("adversarial", "linf", "grad_evals", "found"):
            assert np.array_equal(getattr(new, field), old[field]), field
        return
    assert np.array_equal(new.found, old["found"])
    np.testing.assert_allclose(new.linf, old["linf"], atol=1e-3)
    assert np.abs(new.grad_evals - old["grad_evals"]).max() <= 3
    np.testing.assert_allclose(np.abs(new.adversarial - old["x_pm"]).max(axis=1), new.linf,
                               atol=1e-6)


def test_reference_fixture_inputs_are_the_fixture_images(mnist, small_split):
    old = np.load(os.path.join(FIXTURES, "reference_cw_old.npz"))
    split = small_split("mnist")
    np.testing.assert_array_equal(old["x_pm"], split.test_x[old["index"]].reshape(8, -1) - 0.5)
    np.testing.assert_array_equal(old["label"], split.test_y[old["index"]])


def test_settings_keys_and_refusals():
    """The reference key is the one the project always had (caches stay valid); the box key
    names its variant; bad settings are refused."""
    from bsattack.errors import BsattackError
    assert CWSettings(variant="reference", batch_size=3).key() == {   # as at commit 2742bd0
        "mode": "threshold", "max_iterations": 1000, "inits": ["gray", "noise"], "seed": 0,
        "learning_rate": 5e-3, "initial_const": 1e-5, "largest_const": 20.0, "attack": "cw"}
    assert CWSettings().key()["variant"] == "box" and CWSettings().max_iterations == 5
    assert CWSettings(batch_size=1).key() == CWSettings(batch_size=7).key()
    for bad in ({"variant": "tanh"}, {"mode": "fast"}, {"inits": "gray,gray"},
                {"max_iterations": 0}, {"box_step": float("nan")}, {"restarts": 0}):
        with pytest.raises(BsattackError):
            CWSettings(**bad)
