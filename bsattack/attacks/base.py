"""The attack contract, shared by every attack in :mod:`bsattack.attacks`.

Units: an attack sees images as flat rows [N, d] in the model's box (``model.bounds``, the
paper's [-0.5, 0.5] for every data set here; the network adapter maps them to its own input),
and thresholds (ε, α·ε) in the same units.  An attack is a class built as
``Attack(model, settings)`` (``settings`` a :class:`Settings`) whose
``run(x, labels, thresholds, ids=None, known=None)`` returns one :class:`AttackResult`.
``ids`` (the test-set index of each row) key every random draw, so an image's result never
depends on the batch, chunk or process it was attacked in; each attack draws from its own
stream, :data:`STREAMS`.  ``known`` (member name -> AttackResult on the same rows) lets an
attack made of attacks reuse a member's result; a single attack ignores it.

Two families share the multi-threshold logic written here once:
- fixed-budget attacks (PGD, APGD, FGSM, Square) implement ``attack_at(x, labels, eps, ids,
  restart) -> (adversarial, fooled, evaluations)`` (gradient evaluations, or forward ones for
  a score-based attack: its ``evaluation`` names which); :class:`FixedBudgetAttack` runs them
  at the smallest threshold first and, for the images not fooled there, at the next one;
- minimal-distance attacks (C&W L∞) implement ``run_once(x, labels, thresholds, ids,
  restart)`` and decide every threshold in one run.
:func:`run_with_restarts` is the one restart wrapper: restart r reruns the attack (random
stream r) on the images not yet successful at every threshold and keeps the smallest-L∞
success.
"""
from collections import deque
from dataclasses import asdict, dataclass, field

import numpy as np

# float32 rounding of a projection or of tanh: an L∞ counts as within a threshold up to this
LINF_TOLERANCE = 1e-6
# the random stream of each attack that draws (registry name -> the number keyed_rng gets
# after the seed and the image): distinct, and fixed, since every draw and so every cached
# result depends on it
STREAMS = {"pgd": 1, "apgd": 2, "cw": 3, "apgd-t": 5, "square": 6}


@dataclass
class AttackResult:
    """Per image: the best example (the input when none found), its L∞ to the input (inf when
    none found), success at each threshold, the gradient evaluations and the forward-only
    evaluations (queries of a score-based attack; zeros when not given) spent."""
    adversarial: np.ndarray      # [N, d] in the model's units
    linf: np.ndarray             # [N]
    grad_evals: np.ndarray       # [N] int64: forward+backward passes of one image
    thresholds: tuple = ()
    found_by: np.ndarray = field(default=None)   # [N] name of the attack that found it ('' none)
    forward_evals: np.ndarray = field(default=None)   # [N] int64: forward passes alone

    def __post_init__(self):
        if self.forward_evals is None:
            self.forward_evals = np.zeros(len(self.linf), np.int64)

    @property
    def found(self):
        return np.isfinite(self.linf)

    def success(self, threshold):
        """A misclassified example within ``threshold`` (up to float rounding)."""
        return self.found & (self.linf <= threshold + LINF_TOLERANCE)

    @property
    def success_table(self):
        """[N, T] bool: success at each of ``thresholds``."""
        return np.stack([self.success(t) for t in self.thresholds], axis=1)

    @classmethod
    def empty(cls, x, thresholds, name=""):
        n = len(x)
        return cls(np.array(x, np.float32, copy=True), np.full(n, np.inf),
                   np.zeros(n, np.int64), tuple(thresholds), np.full(n, name, dtype=object))

    def improve(self, rows, other):
        """Take ``other``'s example for ``rows`` (indices into self) where it is a success of
        smaller L∞; add its evaluations (gradient and forward)."""
        better = other.linf < self.linf[rows]
        self.adversarial[rows[better]] = other.adversarial[better]
        self.linf[rows[better]] = other.linf[better]
        self.found_by[rows[better]] = other.found_by[better]
        self.grad_evals[rows] += other.grad_evals
        self.forward_evals[rows] += other.forward_evals


class Settings:
    """Base of every attack's settings dataclass.

    What callers read of any attack's settings: ``name`` (the registry's), ``version``
    (counts changes of the algorithm behind the same settings: from 2 on it enters the key,
    version 1, the original algorithm, keeps the key it always had, so a changed algorithm
    never reads an older one's cached results), ``uses_forward_queries`` (whether the attack
    spends forward evaluations; its records then carry them), ``restarts`` (runs per image;
    an attack that runs once keeps 1), and ``batch_size`` and ``seed``, which every subclass
    makes dataclass fields (the commands replace them).  ``members``: the attacks it runs (a
    plain attack is its own one member); ``describe()``: one line for logs and reports.
    ``key()`` is what decides the results (the cache key): the dataclass fields except the
    batch size, which the caches add themselves when it is not the default (float32 batched
    convolutions round differently per batch); attributes that are not fields stay out."""
    name: str = ""
    version: int = 1
    uses_forward_queries: bool = False
    restarts: int = 1
    batch_size: int
    seed: int

    @property
    def members(self):
        return (self,)

    def map_members(self, change):
        """These settings with ``change(settings) -> settings`` applied to every member."""
        return change(self)

    def key(self):
        key = asdict(self)
        key.pop("batch_size", None)
        key["attack"] = self.name
        return versioned(self, {k: list(v) if isinstance(v, tuple) else v for k, v in key.items()})

    def describe(self):
        """One line naming the attack and its settings, for logs and reports."""
        raise NotImplementedError(f"{type(self).__name__} defines no describe(): every attack's "
                                  f"settings must (logs and reports print it)")


def versioned(settings, key):
    """``key`` with the settings' algorithm version when it is 2 or more."""
    if settings.version > 1:
        key["version"] = settings.version
    return key


def keyed_rng(seed, image_id, *stream):
    """The random generator of one image: keyed by (seed, test-set index, stream...), never by
    batch, chunk or process."""
    return np.random.default_rng([int(seed), int(image_id), *[int(s) for s in stream]])


def run_with_restarts(run_once, x, labels, thresholds, ids, restarts):
    """``run_once(x, labels, thresholds, ids, restart) -> AttackResult`` for restart 0, then for
    each further restart on the images not successful at every threshold; the smallest-L∞
    success per image is kept."""
    thresholds = tuple(sorted(float(t) for t in thresholds))
    result = run_once(x, labels, thresholds, ids, 0)
    for restart in range(1, restarts):
        todo = np.flatnonzero(~result.success(thresholds[0]))
        if not len(todo):
            break
        result.improve(todo, run_once(x[todo], labels[todo], thresholds, ids[todo], restart))
    return result


class RestartedAttack:
    """An attack whose ``run`` is ``_run_once(x, labels, thresholds, ids, restart)`` under
    :func:`run_with_restarts` (``settings.restarts`` of them), on flat float32 rows; ``known``
    is ignored (a single attack has no members to reuse)."""

    def __init__(self, model, settings):
        self.model, self.settings = model, settings

    def run(self, x, labels, thresholds, ids=None, known=None):
        x = np.asarray(x, np.float32).reshape(len(x), -1)
        labels = np.asarray(labels, np.int64)
        ids = np.arange(len(x)) if ids is None else np.asarray(ids)
        return run_with_restarts(self._run_once, x, labels, thresholds, ids,
                                 self.settings.restarts)


class FixedBudgetAttack(RestartedAttack):
    """Multi-threshold runs of an attack that works at one L∞ budget at a time; the
    evaluations ``attack_at`` returns add to the result's ``evaluation`` field."""
    evaluation = "grad_evals"

    def _run_once(self, x, labels, thresholds, ids, restart):
        """Smallest threshold first; an image fooled at t is decided for every larger one."""
        result = AttackResult.empty(x, thresholds)
        todo = np.arange(len(x))
        for eps in thresholds:
            if not len(todo):
                break
            adversarial, fooled, evals = self.attack_at(x[todo], labels[todo], eps, ids[todo],
                                                        restart)
            getattr(result, self.evaluation)[todo] += evals
            hit = todo[fooled]
            result.adversarial[hit] = adversarial[fooled]
            result.linf[hit] = np.abs(adversarial[fooled] - x[hit]).max(axis=1)
            result.found_by[hit] = self.settings.name
            todo = todo[~fooled]
        return result

    def attack_at(self, x, labels, eps, ids, restart):
        raise NotImplementedError


def project(x_adv, x, eps, bounds):
    """Onto the L∞ ball of radius ``eps`` around ``x``, then the box (Madry's order)."""
    return np.clip(np.clip(x_adv, x - eps, x + eps), bounds[0], bounds[1])


def batches(n, size):
    """Row slices of at most ``size``."""
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def pool_loop(model, jobs, n_jobs, batch_size, loss, start, step, finish, labels_of,
              targets_of=None):
    """Run per-row state machines over a queue of jobs (ints < ``n_jobs``), batch kept full.

    ``start(jobs) -> dict`` of row arrays for the jobs it takes on (key 'job': which; key 'x':
    the point whose gradient is taken next); each iteration evaluates
    ``model.value_and_grad`` on every row ('loss' names the oracle's loss) and calls
    ``step(state, value, grad, logits) -> done`` (a bool per row; it updates ``state`` in
    place); the rows that are done go to ``finish(jobs, state_rows)``, which may return new
    jobs for the queue, and new jobs take their place.  ``labels_of(jobs)`` gives the true
    labels, ``targets_of(jobs)`` (when given) the target classes a targeted loss needs.
    Returns the gradient evaluations per job."""
    evals = np.zeros(n_jobs, np.int64)
    queue = deque(jobs)
    state = None
    while queue or (state is not None and len(state["job"])):
        free = batch_size - (0 if state is None else len(state["job"]))
        if queue and free > 0:
            fresh = start(np.asarray([queue.popleft() for _ in range(min(free, len(queue)))],
                                     np.int64))
            state = fresh if state is None else {k: np.concatenate([state[k], fresh[k]])
                                                 for k in state}
            if not len(state["job"]):
                continue
        targets = None if targets_of is None else targets_of(state["job"])
        value, grad, logits = model.value_and_grad(state["x"], labels_of(state["job"]), loss,
                                                   targets)
        evals[state["job"]] += 1
        done = np.asarray(step(state, value, grad, logits), bool)
        if done.any():
            queue.extend(finish(state["job"][done], {k: v[done] for k, v in state.items()})
                         or ())
            state = {k: v[~done] for k, v in state.items()}
    return evals
