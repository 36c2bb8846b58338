"""The reference variant of :mod:`bsattack.attacks.cw`: li_attack.py's algorithm, run for a
whole batch of (image, start) jobs at once in one tf.compat.v1 graph, bit for bit as the
project always ran it.

The reference algorithm, per image (units [-0.5, 0.5]):
  τ = 1, c = 1e-5, start = the initial image; while τ > 1/256:
    optimise w (tanh space: x_adv = tanh(w + arctanh(1.999999·start))/2, w = 0, fresh Adam,
    lr 5e-3) on  c·max(0, z_true − max_{j≠true} z_j) + Σ_i max(0, |x_adv,i − x_i| − τ);
    stop as soon as loss < 1e-4·c and x_adv is misclassified (abort early); after
    ``max_iterations`` steps without that, c ×= 2 (keeping w and Adam), give up at c ≥ 20.
    On success: τ = min(τ, ‖x_adv − x‖∞)·0.9, start = x_adv (warm start), c kept.
  The answer is the last success.

Batched here: each row of the graph is one (image, start) job with its own τ, c, iteration
count, Adam moments and step counter (per-row bias correction).  One ``session.run`` does a
forward/backward pass and one Adam step for every row; the per-row decisions (abort, c
doubling, τ shrink) are made in Python on the fetched per-row loss, prediction and L∞.  A row
whose job ends (or starts a new τ round, which resets w and Adam as the reference does) is
dropped from the graph state and refilled from the queue with an in-graph gather + concat.

Differences from li_attack.py, all deliberate: abort-early checks the loss and prediction of
the same (pre-update) image, and that image is the one kept; the distance term uses the input
itself rather than tanh(arctanh(1.999999·x))/2 (which differs by < 3e-7); the threshold
mode and the two starts of :mod:`bsattack.attacks.cw`; ``max_iterations`` caps the Adam steps
per constant.
"""
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from bsattack.attacks.base import LINF_TOLERANCE
from bsattack.attacks.cw_schedule import (ABORT_FACTOR, ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON,
                                          CONST_FACTOR, DECREASE_FACTOR, TAU_END, TAU_START,
                                          initial_image, next_tau)
from bsattack.attacks.network import flatten

tf1 = tf.compat.v1

TANH_SCALE = 1.999999
LOGIT_MASK = 1e4


@dataclass
class CWResult:
    adversarial: np.ndarray   # [N, ...] in [-0.5, 0.5], the input's layout: best example found (the input if none)
    linf: np.ndarray          # [N] its L∞ distance to the input (inf if none found)
    found: np.ndarray         # [N] bool: a misclassified example was found
    grad_evals: np.ndarray    # [N] gradient evaluations (graph rows × steps) spent per image
    thresholds: tuple = field(default_factory=tuple)

    def success(self, threshold):
        """Found and within ``threshold`` (up to float rounding)."""
        return self.found & (self.linf <= threshold + LINF_TOLERANCE)


class _Graph:
    """Batch state in variables of dynamic size, the Adam step and the row rebuild op."""

    def __init__(self, net, settings):
        dim = net.x01.shape[1]
        self.dim = dim

        def state(shape, dtype=tf.float32):
            return tf1.Variable(tf.zeros([0] + shape, dtype), shape=[None] + shape,
                                validate_shape=False, trainable=False, use_resource=True)
        self.w = state([dim])            # the optimised modifier
        self.m = state([dim])
        self.v = state([dim])
        self.t = state([])               # per-row Adam step count
        self.start_w = state([dim])      # arctanh(1.999999 · start)
        self.x = state([dim])            # the input being attacked
        self.label = state([], tf.int64)
        self.tau = tf1.placeholder(tf.float32, [None], name="tau")
        self.const = tf1.placeholder(tf.float32, [None], name="const")

        w = self.w.read_value()
        new_img = tf.tanh(w + self.start_w) / 2
        logits = net.logits_fn(new_img + 0.5)
        onehot = tf.one_hot(self.label, tf.shape(logits)[1], dtype=logits.dtype)
        real = tf.reduce_sum(onehot * logits, axis=1)
        other = tf.reduce_max((1 - onehot) * logits - LOGIT_MASK * onehot, axis=1)
        dist = tf.abs(new_img - self.x)
        loss = (self.const * tf.nn.relu(real - other)
                + tf.reduce_sum(tf.nn.relu(dist - self.tau[:, None]), axis=1))
        self.fetch = {"loss": loss, "pred": tf.argmax(logits, 1),
                      "linf": tf.reduce_max(dist, axis=1), "image": new_img}
        grad = tf.gradients(tf.reduce_sum(loss), w)[0]
        with tf.control_dependencies(list(self.fetch.values())):   # fetch the pre-step image
            t = self.t + 1
            m = ADAM_BETA1 * self.m + (1 - ADAM_BETA1) * grad
            v = ADAM_BETA2 * self.v + (1 - ADAM_BETA2) * tf.square(grad)
            lr = settings.learning_rate * tf.sqrt(1 - ADAM_BETA2 ** t) / (1 - ADAM_BETA1 ** t)
            step = lr[:, None] * m / (tf.sqrt(v) + ADAM_EPSILON)
            self.step = tf.group(self.w.assign(w - step), self.m.assign(m),
                                 self.v.assign(v), self.t.assign(t))

        # rebuild: keep rows `keep` (state intact) and append fresh rows (w, Adam reset)
        self.keep = tf1.placeholder(tf.int32, [None], name="keep")
        self.new_start_w = tf1.placeholder(tf.float32, [None, dim], name="new_start_w")
        self.new_x = tf1.placeholder(tf.float32, [None, dim], name="new_x")
        self.new_label = tf1.placeholder(tf.int64, [None], name="new_label")
        n_new = tf.shape(self.new_x)[0]
        fresh = {self.w: tf.zeros([n_new, dim]), self.m: tf.zeros([n_new, dim]),
                 self.v: tf.zeros([n_new, dim]), self.t: tf.zeros([n_new]),
                 self.start_w: self.new_start_w, self.x: self.new_x, self.label: self.new_label}
        self.rebuild = tf.group(*[
            var.assign(tf.concat([tf.gather(var.read_value(), self.keep), rows], 0),
                       read_value=False)
            for var, rows in fresh.items()])


def to_tanh_space(start):
    """The reference's arctanh(1.999999 · x) for a start image in [-0.5, 0.5]."""
    return np.arctanh(np.asarray(start, np.float64) * TANH_SCALE).astype(np.float32)


class _Rows:
    """The numpy side of the batch: one entry per graph row (job image, init, τ, c, steps)."""
    fields = ("image", "init", "tau", "const", "iters")

    def __init__(self):
        self.image = np.zeros(0, np.int64)
        self.init = np.zeros(0, np.int64)
        self.tau = np.zeros(0, np.float32)
        self.const = np.zeros(0, np.float32)
        self.iters = np.zeros(0, np.int64)

    def __len__(self):
        return len(self.image)

    def rebuilt(self, keep, new):
        """Rows ``keep`` followed by ``new`` (a dict of field -> array)."""
        for name in self.fields:
            setattr(self, name, np.concatenate([getattr(self, name)[keep],
                                                np.asarray(new[name], getattr(self, name).dtype)]))


class ReferenceCW:
    """The reference C&W graph in ``model``'s graph (settings: :class:`~bsattack.attacks.cw.
    CWSettings`)."""

    def __init__(self, model, settings):
        self.settings = settings
        self.net = model.net
        self.graph = model.add_ops(lambda net: _Graph(net, settings))

    def attack(self, x_pm, labels, thresholds, ids=None, progress=None):
        """Attack ``x_pm`` ([N,d] in [-0.5,0.5]) with true ``labels``; ``thresholds`` are the
        L∞ bounds success is decided at (ε, α·ε).  ``ids`` seed each image's noise start
        (default 0..N-1); ``progress(k)`` is called as images finish."""
        result = _Run(self, flatten(x_pm).astype(np.float32), np.asarray(labels, np.int64),
                      sorted(float(t) for t in thresholds),
                      np.arange(len(x_pm)) if ids is None else np.asarray(ids), progress).result()
        result.adversarial = result.adversarial.reshape(np.shape(x_pm))
        return result

    def step_rate(self, x_pm, labels, steps=5):
        """Row-gradient evaluations per second of the attack loop (bookkeeping included) with
        the batch full of ``x_pm`` (its first ``batch_size`` images), over ``steps`` steps."""
        run = _Run(self, flatten(x_pm).astype(np.float32), np.asarray(labels, np.int64), [],
                   np.arange(len(x_pm)), None)
        run._refill([], {}, [])
        run._step()                                         # warm-up
        before, start = run.evals.sum(), time.perf_counter()
        for _ in range(steps):
            run._step()
        return (run.evals.sum() - before) / (time.perf_counter() - start)


class _Run:
    """One call of :meth:`CarliniLinf.attack`: the job queue and the per-row state machine."""

    def __init__(self, attack, x, labels, thresholds, ids, progress):
        self.s, self.g, self.sess = attack.settings, attack.graph, attack.net.sess
        self.x, self.labels, self.ids, self.progress = x, labels, ids, progress
        self.thresholds = thresholds
        n = len(x)
        self.best = x.copy()
        self.linf = np.full(n, np.inf)
        self.evals = np.zeros(n, np.int64)
        self.jobs_left = np.full(n, len(self.s.inits))   # initialisations not yet finished
        self.queue = deque((i, 0) for i in range(n))
        self.rows = _Rows()
        self.sess.run(self.g.rebuild, self._feed_new([], [], []))    # empty batch

    def decided(self, i):
        return (self.s.mode == "threshold" and bool(self.thresholds)
                and self.linf[i] <= self.thresholds[0] + LINF_TOLERANCE)

    def _feed_new(self, keep, starts, images):
        g = self.g
        images = np.asarray(images, np.int64)
        return {g.keep: np.asarray(keep, np.int32),
                g.new_start_w: to_tanh_space(np.reshape(starts, (-1, g.dim))),
                g.new_x: self.x[images].reshape(-1, g.dim),
                g.new_label: self.labels[images]}

    def _end_job(self, i):
        """One initialisation of image ``i`` is over: queue the next, or report it done."""
        self.jobs_left[i] -= 1
        job = len(self.s.inits) - self.jobs_left[i]
        if self.jobs_left[i] > 0 and not self.decided(i):
            self.queue.append((i, job))
            return
        self.jobs_left[i] = 0
        if self.progress is not None:
            self.progress(1)

    def result(self):
        while len(self.rows) or self.queue:
            if not len(self.rows):
                self._refill([], {}, [])
            self._step()
        found = np.isfinite(self.linf)
        linf = np.where(found, np.abs(self.best - self.x).max(axis=1) if len(self.x) else 0,
                        np.inf)
        return CWResult(self.best, linf, found, self.evals, tuple(self.thresholds))

    def _step(self):
        rows, g = self.rows, self.g
        out, _ = self.sess.run([g.fetch, g.step], {g.tau: rows.tau, g.const: rows.const})
        np.add.at(self.evals, rows.image, 1)
        ok = (out["loss"] < ABORT_FACTOR * rows.const) & (out["pred"] != self.labels[rows.image])
        keep, restart = [], {name: [] for name in _Rows.fields}
        starts = []
        for r in range(len(rows)):
            i = rows.image[r]
            if ok[r]:
                if out["linf"][r] < self.linf[i]:
                    self.linf[i] = out["linf"][r]
                    self.best[i] = out["image"][r]
                tau = next_tau(self.s, self.thresholds, out["linf"][r],
                                    min(rows.tau[r], out["linf"][r]) * DECREASE_FACTOR)
                if self.decided(i) or tau <= TAU_END:
                    self._end_job(i)
                    continue
                restart["image"].append(i)
                restart["init"].append(rows.init[r])
                restart["tau"].append(tau)
                restart["const"].append(rows.const[r])
                restart["iters"].append(0)
                starts.append(out["image"][r])
                continue
            rows.iters[r] += 1
            if rows.iters[r] >= self.s.max_iterations:
                rows.const[r] *= CONST_FACTOR
                rows.iters[r] = 0
                if rows.const[r] >= self.s.largest_const:
                    self._end_job(i)           # this τ round failed: the last success stands
                    continue
            keep.append(r)
        if len(keep) < len(rows):
            self._refill(keep, restart, starts)

    def _refill(self, keep, restart, starts):
        """Drop the rows not in ``keep``, append the restarted rows and new jobs up to the
        batch size."""
        new = {name: list(restart.get(name, [])) for name in _Rows.fields}
        starts = list(starts)
        while self.queue and len(keep) + len(new["image"]) < self.s.batch_size:
            i, job = self.queue.popleft()
            new["image"].append(i)
            new["init"].append(job)
            new["tau"].append(TAU_START)
            new["const"].append(self.s.initial_const)
            new["iters"].append(0)
            starts.append(initial_image(self.s.inits[job], self.x[i], self.ids[i], self.s.seed))
        self.sess.run(self.g.rebuild, self._feed_new(keep, starts, new["image"]))
        self.rows.rebuilt(np.asarray(keep, np.int64), new)
