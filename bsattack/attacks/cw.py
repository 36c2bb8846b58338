"""Carlini & Wagner's L∞ attack (``nn_robust_attacks/li_attack.py``), untargeted, as the paper
runs it: two starts (a blank gray image, and x + N(0, 0.2²) clipped to the box), each
minimising  c·max(0, z_y − max_{j≠y} z_j) + Σ_i max(0, |x_adv,i − x_i| − τ)  under the τ
schedule (a round ends in success when the loss is below 1e-4·c and x_adv is misclassified:
then τ ← 0.9·min(τ, ‖x_adv − x‖∞) and the next round warm-starts from the success; a round
tries constants c = 1e-5, 2e-5, ... < 20, ``max_iterations`` Adam steps each, before it
fails); the best (smallest-L∞) success is kept.

Two variants of this objective and schedule:
- ``reference``: li_attack.py's optimiser, bit for bit as the project always ran it
  (:mod:`bsattack.attacks.cw_reference`): Adam (lr 5e-3) on w in tanh space,
  x_adv = tanh(w + arctanh(1.999999·s))/2.  Its dx/dw = (1 − 4x²)/2 vanishes at the box edge,
  where over half the pixels of these images sit, so it needs ~1,000 steps per constant.
- ``box`` (default): projected Adam on x_adv itself.  Each step is clipped to the τ-ball
  around x and to the box, so edge pixels move at full speed and the hinge term is zero at
  every iterate (the τ-ball it penalises leaving is enforced exactly); the success test is
  then "misclassified".  The step is ``box_step``·τ (Adam's learning rate scales with the
  ball).  With the hinge at zero, c only rescales the margin's gradient, to which Adam is
  invariant: the constant schedule keeps its 21 doublings as the round's patience
  (21 × ``max_iterations`` steps).  In threshold mode the schedule starts at the largest
  threshold rather than τ = 1, so the gray start becomes x moved ε towards gray and the noise
  start x + N(0, 0.2²) clipped into the ε-ball.

``mode='threshold'`` (default) decides success at the given thresholds only: an image stops
once it has an example within the smallest, and a τ step that would jump over a threshold not
yet met lands on it.  ``mode='minimal'`` runs the whole schedule (to τ ≤ 1/256) for both
starts and keeps the smallest L∞.
"""
from dataclasses import dataclass, field

import numpy as np

from bsattack.attacks.base import (LINF_TOLERANCE, AttackResult, RestartedAttack, Settings,
                                   pool_loop, project)
from bsattack.attacks.cw_schedule import (ABORT_FACTOR, ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON,
                                          CONST_FACTOR, DECREASE_FACTOR, INITIAL_CONST, INITS,
                                          LARGEST_CONST, LEARNING_RATE, MAX_ITERATIONS, TAU_END,
                                          TAU_START, initial_image, next_tau)
from bsattack.errors import BsattackError

MODES = ("threshold", "minimal")
VARIANTS = ("box", "reference")
DEFAULT_ITERATIONS = {"box": 5, "reference": MAX_ITERATIONS}
BOX_STEP = 0.1


@dataclass
class CWSettings(Settings):
    """Everything that decides the attack's result (also its cache key)."""
    name = "cw"
    variant: str = field(default="box", metadata={
        "choices": VARIANTS, "option": "--cw-variant",
        "help": "box: Adam on the image clipped to the box, rounds start inside the τ-ball "
                "(converges in tens of steps per constant); reference: li_attack.py's tanh "
                "space, bit for bit (needs ~1,000)."})
    mode: str = field(default="threshold", metadata={
        "choices": MODES, "option": "--cw-mode",
        "help": "threshold: stop an image once success at every threshold is decided; "
                "minimal: the whole τ schedule, for the smallest L∞."})
    max_iterations: int = field(default=None, metadata={
        "option": "--max-iterations", "help": "Adam steps per loss constant [default: 5 for "
        "box, li_attack.py's 1000 for reference]."})
    inits: tuple = field(default=INITS, metadata={
        "option": "--cw-inits", "help": "Starts, in this order, best kept (the paper's two). "
        "An image its first start decides skips the second."})
    learning_rate: float = field(default=LEARNING_RATE, metadata={"cli": False})   # reference
    box_step: float = field(default=BOX_STEP, metadata={"cli": False})             # box: lr / τ
    initial_const: float = field(default=INITIAL_CONST, metadata={"cli": False})
    largest_const: float = field(default=LARGEST_CONST, metadata={"cli": False})
    restarts: int = field(default=1, metadata={
        "option": "--cw-restarts", "help": "Restart r > 0 reruns the noise start (stream r) on "
                                           "the images not yet fooled."})
    batch_size: int = 500
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.inits, str):
            self.inits = tuple(name.strip() for name in self.inits.split(",") if name.strip())
        if self.variant not in VARIANTS:
            raise BsattackError(f"unknown C&W variant '{self.variant}' "
                                f"(known: {', '.join(VARIANTS)})")
        if self.max_iterations is None:
            self.max_iterations = DEFAULT_ITERATIONS[self.variant]
        if self.mode not in MODES:
            raise BsattackError(f"unknown C&W mode '{self.mode}' (known: {', '.join(MODES)})")
        if (set(self.inits) - set(INITS) or not self.inits
                or len(set(self.inits)) < len(self.inits)):
            raise BsattackError(f"C&W starts {','.join(self.inits) or '(none)'}: give distinct "
                                f"ones from {','.join(INITS)}")
        if self.max_iterations < 1 or self.batch_size < 1 or self.restarts < 1:
            raise BsattackError("C&W needs max_iterations, restarts and batch_size >= 1")
        if not all(np.isfinite(v) and v > 0 for v in
                   (self.learning_rate, self.box_step, self.initial_const, self.largest_const)):
            raise BsattackError("C&W learning rate and constants must be finite and > 0")
        self.inits = tuple(self.inits)

    def key(self):
        key = super().key()
        if self.variant == "reference":      # the key the reference always had: caches stay valid
            for name in ("variant", "restarts", "box_step"):
                key.pop(name)
        else:
            key.pop("learning_rate")
        return key

    def describe(self):
        step = (f"lr {self.learning_rate:g}" if self.variant == "reference"
                else f"step {self.box_step:g}·τ")
        return (f"C&W L∞ ({self.variant} variant, {self.mode} mode, ≤{self.max_iterations} "
                f"Adam steps per constant, constants {self.initial_const:g}..<"
                f"{self.largest_const:g} ×2, {step}, starts "
                f"{'+'.join(self.inits)}, {self.restarts} restart(s), seed {self.seed})")

    def estimate(self, n):
        """Gradient evaluations for ``n`` images whose every start ends in a failed τ round
        (the successful rounds before it come on top)."""
        return n * len(self.inits) * n_constants(self) * self.max_iterations


def n_constants(settings):
    """How many constants a failing τ round tries (21 for the reference defaults)."""
    count, const = 0, settings.initial_const
    while const < settings.largest_const:
        count, const = count + 1, const * CONST_FACTOR
    return count


class CarliniLinf(RestartedAttack):
    """The C&W L∞ attack on a :class:`~bsattack.attacks.model.Model`."""

    def __init__(self, model, settings=None):
        super().__init__(model, settings or CWSettings())

    def _run_once(self, x, labels, thresholds, ids, restart):
        s = self.settings
        if restart:                           # further restarts: a new noise start only
            s = type(s)(**{**s.__dict__, "inits": ("noise",)})
        if s.variant == "reference":
            return self._run_reference(s, x, labels, thresholds, ids, restart)
        return _BoxRun(self.model, s, x, labels, thresholds, ids, restart).result()

    def _run_reference(self, s, x, labels, thresholds, ids, restart):
        from bsattack.attacks import cw_reference
        if not hasattr(self.model, "net"):
            raise BsattackError("the reference C&W variant runs on the data sets' networks "
                                "only (its tanh space is the paper's [-0.5, 0.5]); use "
                                "variant='box' on your own model")
        if restart:
            s = type(s)(**{**s.__dict__, "seed": s.seed + restart})
        attack = cw_reference.ReferenceCW(self.model, s)
        found = attack.attack(x, labels, thresholds, ids)
        result = AttackResult(found.adversarial, found.linf, found.grad_evals,
                              tuple(thresholds), np.where(found.found, s.name, ""))
        return result


class _BoxRun:
    """One run of the box variant: per row an (image, start) job with its τ, c, Adam state."""

    def __init__(self, model, settings, x, labels, thresholds, ids, restart):
        self.model, self.s, self.x, self.labels = model, settings, x, labels
        self.thresholds, self.ids, self.restart = thresholds, ids, restart
        n = len(x)
        self.best = x.copy()
        self.linf = np.full(n, np.inf)
        self.n_inits = len(settings.inits)

    def decided(self, i):
        return (self.s.mode == "threshold" and self.linf[i] <= self.thresholds[0]
                + LINF_TOLERANCE)

    def tau_start(self):
        """The largest threshold (threshold mode), or li_attack.py's 1 = the box's width."""
        low, high = self.model.bounds
        return self.thresholds[-1] if self.s.mode == "threshold" else TAU_START * (high - low)

    def begin(self, jobs):
        images, inits = jobs // self.n_inits, jobs % self.n_inits
        keep = np.array([not self.decided(i) for i in images], bool)
        jobs, images, inits = jobs[keep], images[keep], inits[keep]
        k, dim = len(jobs), self.x.shape[1]
        tau = np.full(k, self.tau_start(), np.float32)
        starts = np.array([initial_image(self.s.inits[j], self.x[i], self.ids[i], self.s.seed,
                                         self.restart, self.model.bounds)
                           for i, j in zip(images, inits)],
                          np.float32).reshape(k, dim)
        return {"job": jobs, "x": self._into_ball(starts, images, tau),
                "m": np.zeros((k, dim), np.float32), "v": np.zeros((k, dim), np.float32),
                "t": np.zeros(k, np.float32), "tau": tau,
                "const": np.full(k, self.s.initial_const, np.float32),
                "iters": np.zeros(k, np.int64)}

    def _into_ball(self, points, images, tau):
        """Clip to the τ-ball around the images, then to the box."""
        anchor = self.x[images]
        return project(points, anchor, tau[:, None], self.model.bounds).astype(np.float32)

    def step(self, st, margin, grad, logits):
        s = self.s
        images = st["job"] // self.n_inits
        dist = st["x"] - self.x[images]
        outside = np.abs(dist) > st["tau"][:, None]
        hinge = np.where(outside, np.abs(dist) - st["tau"][:, None], 0).sum(axis=1)
        loss = st["const"] * np.maximum(margin, 0) + hinge
        ok = (loss < ABORT_FACTOR * st["const"]) & (logits.argmax(axis=1) != self.labels[images])
        done = np.zeros(len(images), bool)
        linf = np.abs(dist).max(axis=1)
        for r in np.flatnonzero(ok):
            i = images[r]
            if linf[r] < self.linf[i]:
                self.linf[i], self.best[i] = linf[r], st["x"][r]
            tau = next_tau(s, self.thresholds, linf[r],
                           min(st["tau"][r], linf[r]) * DECREASE_FACTOR)
            if self.decided(i) or tau <= TAU_END:
                done[r] = True
                continue
            st["tau"][r] = tau                  # a new round: warm start inside the new ball
            st["x"][r] = self._into_ball(st["x"][r:r + 1], images[r:r + 1], st["tau"][r:r + 1])[0]
            st["m"][r], st["v"][r], st["t"][r], st["iters"][r] = 0, 0, 0, 0
        go = ~ok
        g = (st["const"] * (margin > 0))[:, None] * grad + np.sign(dist) * outside
        t = st["t"] + 1
        m = ADAM_BETA1 * st["m"] + (1 - ADAM_BETA1) * g
        v = ADAM_BETA2 * st["v"] + (1 - ADAM_BETA2) * g * g
        lr = s.box_step * st["tau"] * np.sqrt(1 - ADAM_BETA2 ** t) / (1 - ADAM_BETA1 ** t)
        moved = self._into_ball(st["x"] - lr[:, None] * m / (np.sqrt(v) + ADAM_EPSILON),
                                images, st["tau"])
        for name, value in (("x", moved), ("m", m), ("v", v), ("t", t)):
            st[name][go] = value[go]
        st["iters"][go] += 1
        exhausted = go & (st["iters"] >= s.max_iterations)
        st["const"][exhausted] *= CONST_FACTOR
        st["iters"][exhausted] = 0
        done |= exhausted & (st["const"] >= s.largest_const)
        return done

    def finish(self, jobs, rows):
        """A start is over: queue the image's next start unless it is decided."""
        images, inits = jobs // self.n_inits, jobs % self.n_inits
        return [job + 1 for job, i, k in zip(jobs, images, inits)
                if k + 1 < self.n_inits and not self.decided(i)]

    def result(self):
        n = len(self.x)
        first = np.arange(n) * self.n_inits
        evals = pool_loop(self.model, first, n * self.n_inits, self.s.batch_size, "margin",
                          self.begin, self.step, self.finish,
                          lambda jobs: self.labels[jobs // self.n_inits])
        per_image = evals.reshape(n, self.n_inits).sum(axis=1)
        found = np.isfinite(self.linf)
        return AttackResult(self.best, self.linf, per_image, tuple(self.thresholds),
                            np.where(found, self.s.name, "").astype(object))
