"""The blind-spot experiment with the paper's success accounting (§4.1, §4.4).

For the first ``n`` test images x (in [-0.5, 0.5]): x' = α·x + β; the accuracy is measured on
the x'; only the x' the model classifies correctly are attacked; an attack succeeds at a
threshold t when its example is misclassified (re-checked by a separate forward pass) and
‖x_adv − x'‖∞ ≤ t (up to ``LINF_TOLERANCE`` of float32 rounding).  Success rates are over
the attacked images, at ε and at α·ε.

C&W decides every threshold in one run (it keeps the smallest-L∞ success).  PGD is run at
α·ε first and, for the images it does not fool there, at ε (a success within α·ε is one
within ε too).  The stored example of an image is its smallest-threshold success.

Per-image results are cached in HDF5 (:class:`bsattack.h5store.H5Store`) in chunks, in a
file keyed by the checkpoint's content hash, the data fingerprint, ε, (α, β) and the attack
settings, so an interrupted run resumes at the first missing chunk and a cache made with
anything else is never reused.

Public API: ``run_blindspot(dataset, checkpoint, alpha, beta, attack, n, ...)`` ->
:class:`BlindspotResult` (per-image arrays, ``summary()``, ``records()``);
``make_attack(attack, dataset, checkpoint, settings)``; ``default_settings(attack)``.
"""
import hashlib
import json
import os
import time
from dataclasses import dataclass

import click
import numpy as np

from bsattack import data
from bsattack.attacks.cw_linf import LINF_TOLERANCE, CarliniLinf, CWSettings
from bsattack.attacks.pgd import LinfPGD, PGDSettings
from bsattack.datasets import get_spec
from bsattack.errors import BsattackError
from bsattack.h5store import CACHE_DIR, H5Store
from bsattack.transforms import blindspot, to_01, to_pm, validate
from madry_models.checkpoint import content_hash

ATTACKS = ("cw", "pgd")
DEFAULT_N = 2000
CHUNK_SIZE = 500


def default_settings(attack):
    if attack == "cw":
        return CWSettings()
    if attack == "pgd":
        return PGDSettings()
    raise BsattackError(f"unknown attack '{attack}' (known: {', '.join(ATTACKS)})")


def make_attack(attack, dataset, checkpoint, settings=None):
    """The attack runner (it owns a graph and a session with the restored network)."""
    settings = settings or default_settings(attack)
    return (CarliniLinf if attack == "cw" else LinfPGD)(dataset, checkpoint, settings)


def thresholds(eps, alpha):
    """The L∞ thresholds success is decided at, ascending: (α·ε, ε), or (ε,) when α = 1."""
    return (eps,) if alpha >= 1.0 else (alpha * eps, eps)


@dataclass
class BlindspotResult:
    dataset: str
    checkpoint: str
    alpha: float
    beta: float
    eps: float
    attack: str
    settings: dict
    index: np.ndarray              # test-set index of each image
    label: np.ndarray
    prediction: np.ndarray         # on the transformed image
    adv_prediction: np.ndarray     # on the stored adversarial example (-1: not attacked)
    linf: np.ndarray               # of the stored example to x' (inf: none found / not attacked)
    success_eps: np.ndarray
    success_alpha_eps: np.ndarray
    adversarial: np.ndarray        # [n, d] in [-0.5, 0.5] (x' itself when none found)
    transformed: np.ndarray        # [n, d] x' in [-0.5, 0.5]
    grad_evals: np.ndarray         # gradient evaluations spent per image
    seconds: float = 0.0

    @property
    def correct(self):
        return self.prediction == self.label

    def summary(self):
        attacked = int(self.correct.sum())
        rate = (lambda s: float(s[self.correct].mean()) if attacked else float("nan"))
        return {"dataset": self.dataset, "alpha": self.alpha, "beta": self.beta,
                "eps": self.eps, "alpha_eps": self.alpha * self.eps, "attack": self.attack,
                "n": len(self.label), "accuracy": float(self.correct.mean()),
                "attacked": attacked, "success_eps": rate(self.success_eps),
                "success_alpha_eps": rate(self.success_alpha_eps),
                "grad_evals_per_attacked": (float(self.grad_evals.sum()) / attacked
                                            if attacked else float("nan")),
                "checkpoint": self.checkpoint, "settings": self.settings}

    def records(self):
        """One dict per image (for CSV / JSON)."""
        return [{"index": int(i), "label": int(y), "prediction": int(p), "correct": bool(p == y),
                 "adv_prediction": int(a), "linf": (float(d) if np.isfinite(d) else None),
                 "success_eps": bool(s1), "success_alpha_eps": bool(s2)}
                for i, y, p, a, d, s1, s2 in zip(self.index, self.label, self.prediction,
                                                 self.adv_prediction, self.linf,
                                                 self.success_eps, self.success_alpha_eps)]


def _attack_chunk(runner, attack, x_pm, labels, ids, limits, progress):
    """(adversarial [-0.5,0.5], linf, gradient evaluations) of the best example per image for
    ascending ``limits``."""
    if attack == "cw":
        result = runner.attack(x_pm, labels, limits, ids=ids, progress=progress)
        return result.adversarial, result.linf, result.grad_evals
    adversarial, linf = x_pm.copy(), np.full(len(x_pm), np.inf)
    evals = np.zeros(len(x_pm), np.int64)
    todo = np.arange(len(x_pm))
    for limit in limits:                        # smallest first; fooled images are decided
        if not len(todo):
            break
        result = runner.attack(to_01(x_pm[todo]), labels[todo], limit)
        fooled = todo[result.misclassified]
        adversarial[fooled] = to_pm(result.adversarial[result.misclassified])
        linf[fooled] = result.linf[result.misclassified]
        evals[todo] += result.grad_evals
        todo = todo[~result.misclassified]
    if progress is not None:
        progress(len(x_pm))
    return adversarial, linf, evals


def _cache_path(cache_dir, dataset, attack, file_key):
    digest = hashlib.sha256(json.dumps(file_key, sort_keys=True).encode()).hexdigest()[:16]
    return os.path.join(cache_dir, "blindspot", f"{dataset}_{attack}_{digest}.h5")


def run_blindspot(dataset, checkpoint, alpha=1.0, beta=0.0, attack="cw", n=DEFAULT_N,
                  data_dir=None, settings=None, eps=None, cache_dir=CACHE_DIR,
                  chunk_size=CHUNK_SIZE, split=None, echo=click.echo, show_progress=True,
                  transform=None):
    """Transform, classify, attack the correct ones, and account success at ε and α·ε.

    ``checkpoint`` is a resolved path; ``split`` (a :class:`bsattack.data.Split`) skips
    loading the data again; ``cache_dir=None`` disables the cache.  ``transform`` (e.g. a
    :class:`bsattack.shifts.Shift`: ``x_pm -> x_pm`` with ``name`` and ``key()``) replaces
    x' = αx + β (then α = 1, β = 0 and success is decided at ε)."""
    alpha, beta = validate(alpha, beta)
    if transform is not None and (alpha, beta) != (1.0, 0.0):
        raise BsattackError(f"a transform ({transform.name}) replaces alpha/beta; leave them "
                            f"at 1 and 0")
    spec = get_spec(dataset)
    eps = spec.eps if eps is None else float(eps)
    settings = settings or default_settings(attack)
    if n is None or n < 1:
        raise BsattackError(f"--n must be a positive number of images (got {n})")
    split = split or data.load(dataset, data_dir, echo=echo)
    if n > len(split.test_x):
        raise BsattackError(f"--n {n} is more than the {len(split.test_x)} test images")
    limits = thresholds(eps, alpha)
    file_key = {"dataset": spec.name, "checkpoint_sha256": content_hash(checkpoint),
                "data": split.fingerprint, "eps": eps, "alpha": alpha, "beta": beta,
                "settings": settings.key(), "chunk_size": chunk_size}
    if transform is not None:
        file_key["transform"] = transform.key()
    store = (H5Store(_cache_path(cache_dir, spec.name, attack, file_key), file_key, echo=echo)
             if cache_dir else None)
    x = (transform(to_pm(split.test_x[:n])) if transform is not None
         else blindspot(to_pm(split.test_x[:n]), alpha, beta))
    labels = split.test_y[:n]
    parts = {}
    missing = []
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        name, key = f"chunk_{start:05d}_{stop:05d}", {"start": start, "stop": stop}
        cached = store.get(name, key, {"linf": (stop - start,)}) if store else None
        if cached is not None:
            parts[start] = cached
        else:
            missing.append((start, stop, name, key))
    began = time.perf_counter()
    if missing:
        runner = make_attack(attack, spec.name, checkpoint, settings)
        try:
            _announce(runner, attack, settings, x, labels, missing, limits, echo)
            total = sum(stop - start for start, stop, _, _ in missing)
            label = transform.name if transform is not None else f"α={alpha:g} β={beta:g}"
            with click.progressbar(length=total, label=f"{attack} {label}",
                                   show_eta=True, file=None if show_progress else _Null()) as bar:
                for start, stop, name, key in missing:
                    part = _run_chunk(runner, attack, x[start:stop], labels[start:stop],
                                      np.arange(start, stop), limits, bar.update)
                    if store:
                        store.put(name, part, key)
                    parts[start] = part
        finally:
            runner.close()
    merged = {k: np.concatenate([parts[s][k] for s in sorted(parts)]) for k in parts[0]}
    success = {t: ((merged["adv_prediction"] != labels) & (merged["prediction"] == labels)
                   & (merged["linf"] <= t + LINF_TOLERANCE)) for t in limits}
    return BlindspotResult(
        dataset=spec.name, checkpoint=checkpoint, alpha=alpha, beta=beta, eps=eps,
        attack=attack, settings=settings.key(), index=np.arange(n), label=labels,
        prediction=merged["prediction"], adv_prediction=merged["adv_prediction"],
        linf=merged["linf"], success_eps=success[limits[-1]],
        success_alpha_eps=success[limits[0]], adversarial=merged["adversarial"],
        transformed=x, grad_evals=merged["grad_evals"], seconds=time.perf_counter() - began)


def _run_chunk(runner, attack, x, labels, ids, limits, progress):
    """Classify x', attack the correct ones, re-classify their examples independently."""
    prediction = runner.net.predict(to_01(x))
    correct = prediction == labels
    adversarial, linf = x.copy(), np.full(len(x), np.inf)
    adv_prediction = np.full(len(x), -1, np.int64)
    evals = np.zeros(len(x), np.int64)
    progress(int((~correct).sum()))
    if correct.any():
        adv, dist, spent = _attack_chunk(runner, attack, x[correct], labels[correct],
                                         ids[correct], limits, progress)
        adversarial[correct], linf[correct], evals[correct] = adv, dist, spent
        adv_prediction[correct] = runner.net.predict(to_01(adv))
    return {"prediction": prediction, "adv_prediction": adv_prediction, "linf": linf,
            "adversarial": adversarial, "grad_evals": evals}


def _announce(runner, attack, settings, x, labels, missing, limits, echo):
    """Print the budget and a time estimate (every image undecided until its budget ends) from
    the measured gradient rate."""
    count = sum(stop - start for start, stop, _, _ in missing)
    probe = slice(0, min(settings.batch_size, len(x)))
    rate = runner.net.gradient_rate(to_01(x[probe]), labels[probe], repeats=2)
    if attack == "cw":
        worst = runner.estimate(count)
        budget = (f"C&W L∞ ({settings.mode} mode, ≤{settings.max_iterations} iterations per "
                  f"constant, inits {'+'.join(settings.inits)})")
    else:
        worst = count * settings.steps * settings.restarts * len(limits)
        budget = f"PGD-{settings.steps} (step {settings.step_size:g}, {settings.restarts} restart(s))"
    echo(f"{budget} on {count} images at thresholds {', '.join(f'{t:g}' for t in limits)}: "
         f"about {worst:,} gradient evaluations if no image is decided early, "
         f"~{worst / rate / 60:.1f} min at the measured {rate:,.0f}/s (less: decided images stop)")


class _Null:
    """A file that swallows the progress bar (for tests and nested runs)."""

    def write(self, _):
        pass

    def flush(self):
        pass
