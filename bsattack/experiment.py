"""The blind-spot experiment with the paper's success accounting (§4.1, §4.4).

For the first ``n`` test images x (in [-0.5, 0.5]): x' = transform(x) (the paper's α·x + β,
:class:`bsattack.shifts.BlindSpot`, or another shift); the accuracy is measured on the x';
only the x' the model classifies correctly are attacked; an attack succeeds at a threshold t
when its example is misclassified (re-checked by a separate forward pass) and
‖x_adv − x'‖∞ ≤ t (up to float32 rounding).  Success rates are over the attacked images, at
ε and at α·ε (the transform's thresholds).

Any attack of :mod:`bsattack.attacks.registry` runs here, named by its settings.  The worst
case reuses its full members' own runs (their caches), then runs its cascade members on the
images they leave.

Per-image results are cached in HDF5 (:class:`bsattack.h5store.H5Store`) in chunks, in a
file keyed by the checkpoint's content hash, the data fingerprint, ε, the transform, the
attack settings and the batch size (when it is not the default 500), so an interrupted run
resumes at the first missing chunk, a longer run extends a shorter one, and a cache made with
anything else is never reused.  Every random draw is keyed by the image's test index, so
these give the same records as one fresh run.

The chunks are read, computed and merged by :mod:`bsattack.chunks`, on an executor of
:mod:`bsattack.parallel` (this process, or Ray workers); only this driver writes the cache, as
each chunk arrives.

Public API: ``run_blindspot(spec, checkpoint, transform, settings, n, ...)`` ->
:class:`BlindspotResult`; ``run_many`` (several (transform, settings) runs on one checkpoint,
their chunks handed out together); ``run_table`` (the paper's grid).  ``spec`` is the data
set's :class:`bsattack.datasets.DatasetSpec`; its name enters the cache keys, file names and
records, and travels in each :class:`bsattack.parallel.Job`.
"""
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from bsattack import data
from bsattack.attacks.base import LINF_TOLERANCE, AttackResult
from bsattack.attacks.cw import CWSettings
from bsattack.chunks import CHUNK_SIZE, COMPUTE_SECONDS, Chunks, run as run_chunks
from bsattack.datasets import PAPER_N
from bsattack.errors import BsattackError
from bsattack.h5store import H5Store
from bsattack.parallel import Job, LocalExecutor
from bsattack.paths import CACHE_DIR, cache_file
from bsattack.shifts import ORIGINAL, BlindSpot
from bsattack.transforms import to_pm
from madry_models.checkpoint import content_hash


@dataclass
class BlindspotResult:
    spec: object                   # the data set's DatasetSpec (its name in the records)
    checkpoint: str
    transform: object
    eps: float
    settings: object
    index: np.ndarray              # test-set index of each image
    label: np.ndarray
    prediction: np.ndarray         # on the transformed image
    adv_prediction: np.ndarray     # on the stored adversarial example (-1: not attacked)
    linf: np.ndarray               # of the stored example to x' (inf: none found / not attacked)
    found_by: np.ndarray           # name of the attack that found the stored example ('' none)
    adversarial: np.ndarray        # [n, d] in [-0.5, 0.5] (x' itself when none found)
    transformed: np.ndarray        # [n, d] x' in [-0.5, 0.5]
    grad_evals: np.ndarray         # gradient evaluations spent per image
    seconds: float = 0.0           # wall time of the attacks run now (0 when all cached)
    new_grad_evals: int = 0        # gradient evaluations of the attacks run now
    raw_rate: float = float("nan")  # forward+backward image-gradients/s measured before them
    members: dict = None           # the worst case's full members' results, by attack name
                                   # ({} for a single attack)
    precision: str = "fp32"        # the attack's gradient oracle (predictions are float32)
    forward_evals: np.ndarray = None   # forward-only evaluations spent per image (a
                                       # score-based attack's queries; zeros for the others)
    new_forward_evals: int = 0     # forward-only evaluations of the attacks run now
    compute_seconds: float = float("nan")   # compute time of every chunk behind the result,
                                            # its members' included, cached or not (NaN:
                                            # a chunk cached before times were recorded)

    def __post_init__(self):
        if self.forward_evals is None:
            self.forward_evals = np.zeros(len(self.label), np.int64)

    @property
    def attack(self):
        return self.settings.name

    @property
    def alpha(self):
        return getattr(self.transform, "alpha", 1.0)

    @property
    def beta(self):
        return getattr(self.transform, "beta", 0.0)

    @property
    def thresholds(self):
        return _thresholds(self.transform, self.eps)

    @property
    def correct(self):
        return self.prediction == self.label

    def success(self, threshold):
        """Per image: attacked, misclassified example, L∞ within ``threshold``."""
        return (self.correct & (self.adv_prediction != self.label)
                & (self.linf <= threshold + LINF_TOLERANCE))

    @property
    def success_eps(self):
        return self.success(self.thresholds[-1])

    @property
    def success_alpha_eps(self):
        return self.success(self.thresholds[0])

    def summary(self):
        attacked = int(self.correct.sum())
        rate = (lambda s: float(s[self.correct].mean()) if attacked else float("nan"))
        return {"dataset": self.spec.name, "alpha": self.alpha, "beta": self.beta,
                "transform": self.transform.name, "eps": self.eps,
                "alpha_eps": self.thresholds[0], "attack": self.attack,
                "n": len(self.label), "accuracy": float(self.correct.mean()),
                "attacked": attacked, "success_eps": rate(self.success_eps),
                "success_alpha_eps": rate(self.success_alpha_eps),
                "grad_evals_per_attacked": (float(self.grad_evals.sum()) / attacked
                                            if attacked else float("nan")),
                "checkpoint": self.checkpoint, "settings": self.settings.key(),
                "precision": self.precision, **self._forward_summary(attacked)}

    def _forward_summary(self, attacked):
        """The forward evaluations per attacked image, for an attack that makes forward
        queries (the others' summaries stay as they were)."""
        if not self.settings.uses_forward_queries:
            return {}
        return {"forward_evals_per_attacked": (float(self.forward_evals.sum()) / attacked
                                               if attacked else float("nan"))}

    def records(self):
        """One dict per image (for CSV / JSON); ``forward_evals`` only for an attack that
        makes forward queries."""
        forward = self.settings.uses_forward_queries
        return [{"index": int(i), "label": int(y), "prediction": int(p), "correct": bool(p == y),
                 "adv_prediction": int(a), "linf": (float(d) if np.isfinite(d) else None),
                 "found_by": str(f), "success_eps": bool(s1), "success_alpha_eps": bool(s2),
                 "grad_evals": int(g), **({"forward_evals": int(q)} if forward else {})}
                for i, y, p, a, d, f, s1, s2, g, q in zip(
                    self.index, self.label, self.prediction, self.adv_prediction, self.linf,
                    self.found_by, self.success_eps, self.success_alpha_eps, self.grad_evals,
                    self.forward_evals)]


def _thresholds(transform, eps):
    return transform.thresholds(eps) if hasattr(transform, "thresholds") else (eps,)


def _file_key(spec, checkpoint, split, eps, transform, settings, chunk_size, precision):
    """The cache file's identity; a blind-spot transform is keyed by its α and β."""
    blind = isinstance(transform, BlindSpot)
    key = {"dataset": spec.name, "checkpoint_sha256": content_hash(checkpoint),
           "data": split.fingerprint, "eps": eps,
           "alpha": transform.alpha if blind else 1.0, "beta": transform.beta if blind else 0.0,
           "settings": settings.key(), "chunk_size": chunk_size}
    if not blind:
        key["transform"] = transform.key()
    if precision != "fp32":      # float32 runs keep the keys they had before precisions
        key["precision"] = precision
    key.update(batch_key(settings))
    return key


DEFAULT_BATCH_SIZE = 500


def batch_key(settings):
    """``{"batch_size": ...}`` when ``settings`` (or a member of it) batches other than
    :data:`DEFAULT_BATCH_SIZE` images, else ``{}`` (the keys made before batch sizes entered
    them stay valid).  Records depend on the batch: float32 batched convolutions round
    differently, so an image can need another gradient evaluation at another batch size."""
    sizes = [getattr(s, "batch_size", DEFAULT_BATCH_SIZE)
             for s in (settings, *getattr(settings, "members", ()))]
    if all(size == DEFAULT_BATCH_SIZE for size in sizes):
        return {}
    return {"batch_size": sizes[0] if len(set(sizes)) == 1 else sizes}


def run_blindspot(spec, checkpoint, transform=ORIGINAL, settings=None, n=PAPER_N,
                  data_dir=None, eps=None, cache_dir=CACHE_DIR, chunk_size=CHUNK_SIZE,
                  split=None, echo=print, progress_for=None, executor=None, precision="fp32"):
    """Transform, classify, attack the correct ones, and account success at the thresholds.

    ``spec`` is the data set's :class:`bsattack.datasets.DatasetSpec`; ``checkpoint`` a
    resolved path; ``settings`` an attack's settings (default: C&W);
    ``split`` (a :class:`bsattack.data.Split`) skips loading the data again;
    ``cache_dir=None`` disables the cache; ``progress_for(total, label)`` returns a context
    manager with ``update(k)`` (a progress bar); ``executor`` (:mod:`bsattack.parallel`)
    computes the chunks (default: this process); ``precision``: the attack's gradient oracle
    ('fp32' or 'bf16'; every prediction in the records is float32's)."""
    split = split or data.load(spec, data_dir, echo=echo)
    return run_many(spec, checkpoint, [(transform, settings or CWSettings())], n, split,
                    eps=eps, cache_dir=cache_dir, chunk_size=chunk_size, echo=echo,
                    progress_for=progress_for, executor=executor, precision=precision)[0]


def run_many(spec, checkpoint, runs, n, split, eps=None, cache_dir=CACHE_DIR,
             chunk_size=CHUNK_SIZE, echo=print, progress_for=None, executor=None,
             on_result=None, precision="fp32"):
    """:func:`run_blindspot` for every (transform, settings) of ``runs`` on one checkpoint,
    their missing chunks handed to ``executor`` together (so workers share them out); the
    results in the order of ``runs``.  ``on_result(results so far)`` is called as each
    result is complete and all before it are.  A worst case first gets its full members'
    runs (their own caches)."""
    eps = spec.eps if eps is None else float(eps)
    if n is None or n < 1:
        raise BsattackError(f"--n must be a positive number of images (got {n})")
    if n > len(split.test_x):
        raise BsattackError(f"--n {n} is more than the {len(split.test_x)} test images")
    # every cache read, and checked writable where chunks are missing, before any attack
    # (a worst case's before its members run)
    plans = [_Plan(spec, checkpoint, t, s, n, eps, cache_dir, chunk_size, split, echo,
                   precision) for t, s in runs]
    owned = executor is None
    executor = executor or LocalExecutor()
    try:
        member_runs = [(t, m) for t, s in runs for m in getattr(s, "full", ())]
        members = iter(run_many(spec, checkpoint, member_runs, n, split, eps, cache_dir,
                                chunk_size, echo, progress_for, executor, precision=precision)
                       if member_runs else ())
        for plan in plans:
            plan.known = {m.name: next(members) for m in getattr(plan.settings, "full", ())}
        return _execute(plans, executor, echo, progress_for, on_result)
    finally:
        if owned:
            executor.close()


class _Plan:
    """One (transform, settings) run: its inputs and its :class:`Chunks` (cache read, missing
    chunks listed, the cache checked writable when any is missing); ``known`` (a worst case's
    full members' results) is set once they have run."""

    def __init__(self, spec, checkpoint, transform, settings, n, eps, cache_dir, chunk_size,
                 split, echo, precision):
        self.spec, self.checkpoint, self.transform, self.settings = (spec, checkpoint,
                                                                     transform, settings)
        self.precision = precision
        self.n, self.eps, self.known = n, eps, {}
        self.limits = _thresholds(transform, eps)
        file_key = _file_key(spec, checkpoint, split, eps, transform, settings, chunk_size,
                             precision)
        store = (H5Store(cache_file(cache_dir, "blindspot", f"{spec.name}_{settings.name}",
                                    file_key), file_key, echo=echo) if cache_dir else None)
        self.x = transform(to_pm(split.test_x[:n]).reshape(n, -1))
        self.labels = split.test_y[:n]
        self.names = [m.name for m in getattr(settings, "members", (settings,))]
        self.chunks = Chunks(store, n, chunk_size,
                             lambda start, stop: f"chunk_{start:05d}_{stop:05d}",
                             lambda start, stop: {"start": start, "stop": stop},
                             lambda start, stop: {"linf": (stop - start,)}, self.job, self.done)
        self.seconds, self.spent, self.spent_forward, self.rate = 0.0, 0, 0, float("nan")

    def job(self, start, stop):
        rows = slice(start, stop)
        payload = {"settings": self.settings, "names": self.names, "x": self.x[rows],
                   "labels": self.labels[rows], "ids": np.arange(start, stop),
                   "limits": self.limits,
                   "known": {m: _rows_result(r, rows, self.limits)
                             for m, r in self.known.items()}}
        return Job(self.spec.name, self.checkpoint, _run_chunk, payload, self.precision)

    def done(self, start, stop, part, seconds):
        """Count a computed chunk's evaluations (not its known members') and wall time."""
        rows = slice(start, stop)
        self.spent += int(part["grad_evals"].sum()) - sum(
            int(r.grad_evals[rows].sum()) for r in self.known.values())
        self.spent_forward += int(_forward_evals(part).sum()) - sum(
            int(r.forward_evals[rows].sum()) for r in self.known.values())
        self.seconds += seconds

    def result(self):
        merged = self.chunks.merged({"forward_evals": 0})
        found_by = np.array([self.names[i] if i >= 0 else "" for i in merged["found_by"]],
                            object)
        known = self.known.values()
        return BlindspotResult(
            spec=self.spec, checkpoint=self.checkpoint, transform=self.transform,
            eps=self.eps, settings=self.settings, index=np.arange(self.n), label=self.labels,
            prediction=merged["prediction"], adv_prediction=merged["adv_prediction"],
            linf=merged["linf"], found_by=found_by, adversarial=merged["adversarial"],
            transformed=self.x, grad_evals=merged["grad_evals"],
            seconds=self.seconds + sum(r.seconds for r in known),
            new_grad_evals=self.spent + sum(r.new_grad_evals for r in known),
            raw_rate=self.rate, members=self.known, precision=self.precision,
            forward_evals=np.asarray(merged["forward_evals"], np.int64),
            new_forward_evals=self.spent_forward + sum(r.new_forward_evals for r in known),
            compute_seconds=float(np.sum(merged[COMPUTE_SECONDS]))
            + sum(r.compute_seconds for r in known))


def _forward_evals(part):
    """A chunk's forward evaluations per image (zeros in a chunk of an attack without forward
    queries, or cached before they were recorded)."""
    return np.asarray(part.get("forward_evals", np.zeros(len(part["linf"]))), np.int64)


def _execute(plans, executor, echo, progress_for, on_result):
    """Run every plan's missing chunks on ``executor`` (:func:`bsattack.chunks.run`) and
    report complete results in order."""
    todo = [plan for plan in plans if plan.chunks.missing]
    for plan in todo:
        plan.rate = _announce(executor, plan, echo)
    results = []

    def report():
        while len(results) < len(plans) and plans[len(results)].chunks.complete:
            results.append(plans[len(results)].result())
            if on_result is not None:
                on_result(results)

    report()
    total = sum(plan.chunks.missing_images for plan in todo)
    label = f"{plans[0].settings.name} on {len(todo)} setting(s)" if todo else ""
    bar = progress_for(total, label) if progress_for and todo else nullcontext(None)
    with bar as progress:
        def arrived(images):
            if progress is not None:
                progress.update(images)
            report()
        run_chunks([plan.chunks for plan in plans], executor, arrived)
    return results


def _rows_result(result, rows, limits):
    """A member's :class:`BlindspotResult` on ``rows``, restricted to its attacked images, as
    the :class:`AttackResult` the worst case combines."""
    attacked = result.correct[rows]
    linf = np.where(result.adv_prediction[rows] != result.label[rows], result.linf[rows],
                    np.inf)[attacked]
    return AttackResult(result.adversarial[rows][attacked].astype(np.float32), linf,
                        result.grad_evals[rows][attacked].astype(np.int64), tuple(limits),
                        np.where(np.isfinite(linf), result.attack, "").astype(object),
                        result.forward_evals[rows][attacked].astype(np.int64))


def _run_chunk(model, payload):
    """Classify x', attack the correct ones, re-classify their examples independently (both
    classifications by the float32 network, whatever the attack's precision)."""
    from bsattack.attacks import registry
    x, labels, ids = payload["x"], payload["labels"], payload["ids"]
    names, known = payload["names"], payload["known"]
    prediction = model.verified_predict(x)
    correct = prediction == labels
    adversarial, linf = x.copy(), np.full(len(x), np.inf)
    adv_prediction = np.full(len(x), -1, np.int64)
    found_by = np.full(len(x), -1, np.int64)
    evals, forward = np.zeros(len(x), np.int64), np.zeros(len(x), np.int64)
    if correct.any():
        attack = registry.build(model, payload["settings"])
        result = attack.run(x[correct], labels[correct], payload["limits"], ids[correct],
                            known=known)
        adversarial[correct], evals[correct] = result.adversarial, result.grad_evals
        forward[correct] = result.forward_evals
        linf[correct] = np.where(result.found, np.abs(result.adversarial - x[correct]).max(1),
                                 np.inf)
        found_by[correct] = [names.index(f) if f else -1 for f in result.found_by]
        adv_prediction[correct] = model.verified_predict(result.adversarial)
    part = {"prediction": prediction, "adv_prediction": adv_prediction, "linf": linf,
            "found_by": found_by, "adversarial": adversarial, "grad_evals": evals}
    if payload["settings"].uses_forward_queries:    # the other attacks' chunks keep their arrays
        part["forward_evals"] = forward
    return part


def _gradient_rate(model, payload):
    return model.gradient_rate(payload["x"], payload["labels"])


def _announce(executor, plan, echo):
    """Print the budget and the network's raw gradient rate; return the rate."""
    count = plan.chunks.missing_images
    probe = slice(0, min(plan.settings.batch_size, len(plan.x)))
    rate = executor.call(Job(plan.spec.name, plan.checkpoint, _gradient_rate,
                             {"x": plan.x[probe], "labels": plan.labels[probe]}, plan.precision))
    echo(f"{plan.settings.describe()} on {count} images at thresholds "
         f"{', '.join(f'{t:g}' for t in plan.limits)}; the network does {rate:,.0f} "
         f"image-gradients/s here (forward+backward, {plan.precision}, batch {probe.stop})")
    return rate


def paper_grid(spec):
    """The paper's (α, β) settings of the table of the data set ``spec``, as transforms."""
    from bsattack.report.tables import paper_table
    return [BlindSpot(row["alpha"], row["beta"]) for row in paper_table(spec.name)["rows"]]


def run_table(spec, checkpoint, settings, n, split, on_setting=None, **kwargs):
    """Every (α, β) of the paper's table for the data set ``spec``, all handed to one executor;
    ``on_setting(results so far)`` as each is complete (e.g. to rewrite the table files).
    For the worst case, each result carries its full members' results in ``members``."""
    return run_many(spec, checkpoint, [(t, settings) for t in paper_grid(spec)], n,
                    split, on_result=on_setting, **kwargs)
