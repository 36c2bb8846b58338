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
file keyed by the checkpoint's content hash, the data fingerprint, ε, the transform and the
attack settings, so an interrupted run resumes at the first missing chunk, a longer run
extends a shorter one, and a cache made with anything else is never reused.  Every random
draw is keyed by the image's test index, so these give the same records as one fresh run.

Public API: ``run_blindspot(dataset, checkpoint, transform, settings, n, ...)`` ->
:class:`BlindspotResult`; :class:`Models` (one restored network per checkpoint, shared by
the settings of a table).
"""
import time
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from bsattack import data
from bsattack.attacks.base import LINF_TOLERANCE, AttackResult
from bsattack.attacks.cw import CWSettings
from bsattack.datasets import PAPER_N, get_spec
from bsattack.errors import BsattackError
from bsattack.h5store import H5Store
from bsattack.paths import CACHE_DIR, cache_file
from bsattack.shifts import ORIGINAL, BlindSpot
from bsattack.transforms import to_pm
from madry_models.checkpoint import content_hash

CHUNK_SIZE = 500


class Models:
    """Restored networks (:class:`bsattack.attacks.model.Model`), one per (data set,
    checkpoint), built on first use and closed together."""

    def __init__(self):
        self._models = {}

    def get(self, dataset, checkpoint):
        key = (dataset, checkpoint)
        if key not in self._models:
            from bsattack.attacks.model import Model
            self._models[key] = Model(dataset, checkpoint)
        return self._models[key]

    def close(self):
        for model in self._models.values():
            model.close()
        self._models.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class BlindspotResult:
    dataset: str
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
        return {"dataset": self.dataset, "alpha": self.alpha, "beta": self.beta,
                "transform": self.transform.name, "eps": self.eps,
                "alpha_eps": self.thresholds[0], "attack": self.attack,
                "n": len(self.label), "accuracy": float(self.correct.mean()),
                "attacked": attacked, "success_eps": rate(self.success_eps),
                "success_alpha_eps": rate(self.success_alpha_eps),
                "grad_evals_per_attacked": (float(self.grad_evals.sum()) / attacked
                                            if attacked else float("nan")),
                "checkpoint": self.checkpoint, "settings": self.settings.key()}

    def records(self):
        """One dict per image (for CSV / JSON)."""
        return [{"index": int(i), "label": int(y), "prediction": int(p), "correct": bool(p == y),
                 "adv_prediction": int(a), "linf": (float(d) if np.isfinite(d) else None),
                 "found_by": str(f), "success_eps": bool(s1), "success_alpha_eps": bool(s2),
                 "grad_evals": int(g)}
                for i, y, p, a, d, f, s1, s2, g in zip(
                    self.index, self.label, self.prediction, self.adv_prediction, self.linf,
                    self.found_by, self.success_eps, self.success_alpha_eps, self.grad_evals)]


def _thresholds(transform, eps):
    return transform.thresholds(eps) if hasattr(transform, "thresholds") else (eps,)


def _file_key(spec, checkpoint, split, eps, transform, settings, chunk_size):
    """The cache file's identity; a blind-spot transform is keyed by its α and β."""
    blind = isinstance(transform, BlindSpot)
    key = {"dataset": spec.name, "checkpoint_sha256": content_hash(checkpoint),
           "data": split.fingerprint, "eps": eps,
           "alpha": transform.alpha if blind else 1.0, "beta": transform.beta if blind else 0.0,
           "settings": settings.key(), "chunk_size": chunk_size}
    if not blind:
        key["transform"] = transform.key()
    return key


def run_blindspot(dataset, checkpoint, transform=ORIGINAL, settings=None, n=PAPER_N,
                  data_dir=None, eps=None, cache_dir=CACHE_DIR, chunk_size=CHUNK_SIZE,
                  split=None, echo=print, progress_for=None, models=None):
    """Transform, classify, attack the correct ones, and account success at the thresholds.

    ``checkpoint`` is a resolved path; ``settings`` an attack's settings (default: C&W);
    ``split`` (a :class:`bsattack.data.Split`) skips loading the data again;
    ``cache_dir=None`` disables the cache; ``progress_for(total, label)`` returns a context
    manager with ``update(k)`` (a progress bar); ``models`` (:class:`Models`) shares restored
    networks between calls."""
    spec = get_spec(dataset)
    eps = spec.eps if eps is None else float(eps)
    settings = settings or CWSettings()
    if n is None or n < 1:
        raise BsattackError(f"--n must be a positive number of images (got {n})")
    split = split or data.load(dataset, data_dir, echo=echo)
    if n > len(split.test_x):
        raise BsattackError(f"--n {n} is more than the {len(split.test_x)} test images")
    owned = models is None
    models = models or Models()
    try:
        return _run(spec, checkpoint, transform, settings, n, eps, cache_dir, chunk_size,
                    split, echo, progress_for, models)
    finally:
        if owned:
            models.close()


def _run(spec, checkpoint, transform, settings, n, eps, cache_dir, chunk_size, split, echo,
         progress_for, models):
    limits = _thresholds(transform, eps)
    file_key = _file_key(spec, checkpoint, split, eps, transform, settings, chunk_size)
    store = (H5Store(cache_file(cache_dir, "blindspot", f"{spec.name}_{settings.name}",
                                file_key), file_key, echo=echo) if cache_dir else None)
    x = transform(to_pm(split.test_x[:n]).reshape(n, -1))
    labels = split.test_y[:n]
    known = {}
    if settings.name == "worst":        # the full members' own (cached) runs
        known = {member.name: run_blindspot(
            spec.name, checkpoint, transform, member, n, eps=eps, cache_dir=cache_dir,
            chunk_size=chunk_size, split=split, echo=echo, progress_for=progress_for,
            models=models) for member in settings.full}
    names = [m.name for m in getattr(settings, "members", (settings,))]
    parts, missing = {}, []
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        name, key = f"chunk_{start:05d}_{stop:05d}", {"start": start, "stop": stop}
        cached = store.get(name, key, {"linf": (stop - start,)}) if store else None
        if cached is not None:
            parts[start] = cached
        else:
            missing.append((start, stop, name, key))
    began, spent, rate = time.perf_counter(), 0, float("nan")
    if missing:
        model = models.get(spec.name, checkpoint)
        rate = _announce(model, settings, x, labels, missing, limits, echo)
        total = sum(stop - start for start, stop, _, _ in missing)
        bar = (progress_for(total, f"{settings.name} {transform.name}") if progress_for
               else nullcontext(None))
        with bar as progress:
            for start, stop, name, key in missing:
                rows = slice(start, stop)
                member_parts = {m: _rows_result(r, rows, limits) for m, r in known.items()}
                part = _run_chunk(model, settings, names, x[rows], labels[rows],
                                  np.arange(start, stop), limits, member_parts)
                spent += int(part["grad_evals"].sum()) - sum(
                    int(r.grad_evals[rows].sum()) for r in known.values())
                if store:
                    store.put(name, part, key)
                parts[start] = part
                if progress is not None:
                    progress.update(stop - start)
    spent += sum(r.new_grad_evals for r in known.values())    # members run just now
    merged = {k: np.concatenate([parts[s][k] for s in sorted(parts)]) for k in parts[0]}
    found_by = np.array([names[i] if i >= 0 else "" for i in merged["found_by"]], object)
    return BlindspotResult(
        dataset=spec.name, checkpoint=checkpoint, transform=transform, eps=eps,
        settings=settings, index=np.arange(n), label=labels, prediction=merged["prediction"],
        adv_prediction=merged["adv_prediction"], linf=merged["linf"], found_by=found_by,
        adversarial=merged["adversarial"], transformed=x, grad_evals=merged["grad_evals"],
        seconds=(time.perf_counter() - began if missing else 0.0)
        + sum(r.seconds for r in known.values()), new_grad_evals=spent,
        raw_rate=rate)


def _rows_result(result, rows, limits):
    """A member's :class:`BlindspotResult` on ``rows``, restricted to its attacked images, as
    the :class:`AttackResult` the worst case combines."""
    attacked = result.correct[rows]
    linf = np.where(result.adv_prediction[rows] != result.label[rows], result.linf[rows],
                    np.inf)[attacked]
    return AttackResult(result.adversarial[rows][attacked].astype(np.float32), linf,
                        result.grad_evals[rows][attacked].astype(np.int64), tuple(limits),
                        np.where(np.isfinite(linf), result.attack, "").astype(object))


def _run_chunk(model, settings, names, x, labels, ids, limits, known):
    """Classify x', attack the correct ones, re-classify their examples independently."""
    from bsattack.attacks import registry
    prediction = model.predict(x)
    correct = prediction == labels
    adversarial, linf = x.copy(), np.full(len(x), np.inf)
    adv_prediction = np.full(len(x), -1, np.int64)
    found_by = np.full(len(x), -1, np.int64)
    evals = np.zeros(len(x), np.int64)
    if correct.any():
        attack = registry.build(model, settings)
        args = (x[correct], labels[correct], limits, ids[correct])
        result = attack.run(*args, known=known) if known else attack.run(*args)
        adversarial[correct], evals[correct] = result.adversarial, result.grad_evals
        linf[correct] = np.where(result.found, np.abs(result.adversarial - x[correct]).max(1),
                                 np.inf)
        found_by[correct] = [names.index(f) if f else -1 for f in result.found_by]
        adv_prediction[correct] = model.predict(result.adversarial)
    return {"prediction": prediction, "adv_prediction": adv_prediction, "linf": linf,
            "found_by": found_by, "adversarial": adversarial, "grad_evals": evals}


def _announce(model, settings, x, labels, missing, limits, echo):
    """Print the budget and the network's raw gradient rate; return the rate."""
    count = sum(stop - start for start, stop, _, _ in missing)
    probe = slice(0, min(settings.batch_size, len(x)))
    rate = model.gradient_rate(x[probe], labels[probe])
    echo(f"{settings.describe()} on {count} images at thresholds "
         f"{', '.join(f'{t:g}' for t in limits)}; the network does {rate:,.0f} "
         f"image-gradients/s here (forward+backward, batch {probe.stop})")
    return rate


def paper_grid(dataset):
    """The paper's (α, β) settings of ``dataset``'s table, as transforms."""
    from bsattack.report.tables import paper_table
    return [BlindSpot(row["alpha"], row["beta"]) for row in paper_table(dataset)["rows"]]


def run_table(dataset, checkpoint, settings, n, split, on_setting=None, **kwargs):
    """Every (α, β) of the paper's table for ``dataset`` with one restored network;
    ``on_setting(results so far)`` after each (e.g. to rewrite the table files).  For the worst
    case, each result carries its full members' results in ``members`` (by attack name)."""
    results = []
    with Models() as models:
        for transform in paper_grid(dataset):
            members = {m.name: run_blindspot(dataset, checkpoint, transform, m, n, split=split,
                                             models=models, **kwargs)
                       for m in getattr(settings, "full", ())}
            result = run_blindspot(dataset, checkpoint, transform, settings, n, split=split,
                                   models=models, **kwargs)
            result.members = members
            results.append(result)
            if on_setting is not None:
                on_setting(results)
    return results
