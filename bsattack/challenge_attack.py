"""Run any attack of the registry on a test set and return challenge-format adversarial
examples, chunk by chunk, cached (and so resumable) in an :class:`H5Store` keyed by the
checkpoint's content hash, the data fingerprint and every attack setting.

The leaderboards' PGD baselines (the data set's ``challenge.pgd_steps`` and
``pgd_step_size``: 100 × 0.01 for MNIST and Fashion-MNIST, 20 × 2/255 for CIFAR10) set PGD's
defaults, for the PGD member of the worst case too.  Success is decided at the challenge's ε; an example over ε (C&W's best may be) is
projected onto the ε-ball so the file stays valid.  Every random draw is keyed by the test
index, so a resumed run gives the same file as an uninterrupted one.
"""
import dataclasses

import numpy as np

from bsattack import challenge
from bsattack.attacks.base import AttackResult
from bsattack.attacks.pgd import PGDSettings
from bsattack.datasets import get_spec
from bsattack.errors import BsattackError
from bsattack.h5store import H5Store
from bsattack.paths import CACHE_DIR, cache_file, digest
from bsattack.transforms import to_01, to_pm
from madry_models import checkpoint as ckpt

CHUNK = 500                  # images per cached group: the unit of resume


def with_challenge_defaults(settings, dataset, given=()):
    """``settings`` with the leaderboard's PGD steps and step size for ``dataset`` wherever
    they were not ``given`` (names of the PGD fields the user set), members included."""
    rules = get_spec(dataset).challenge
    steps, step_size = rules.pgd_steps, rules.pgd_step_size

    def fix(s):
        if isinstance(s, PGDSettings):
            values = {k: v for k, v in (("steps", steps), ("step_size", step_size))
                      if k not in given}
            return dataclasses.replace(s, **values)
        if hasattr(s, "full"):
            return dataclasses.replace(s, full=tuple(fix(m) for m in s.full),
                                       cascade=tuple(fix(m) for m in s.cascade))
        return s
    return fix(settings)


def label(settings):
    """A short name of ``settings`` for cache groups and progress bars."""
    return f"{settings.name}-{digest(settings.key())[:12]}"


def cache_path(dataset, checkpoint_hash, fingerprint, cache_dir=None):
    return cache_file(cache_dir or CACHE_DIR, "attacks", dataset,
                      {"checkpoint": checkpoint_hash, "data": fingerprint})


def adversarial_examples(settings, dataset, checkpoint, split, n=None, cache_dir=None,
                         echo=print, progress=None, model=None):
    """[n, ...] adversarial examples in [0, 1] (native layout) for the first ``n`` test images
    of ``split`` under ``settings`` (any registry attack); computed in chunks of
    :data:`CHUNK`, each cached as soon as it is done, so an interrupted run resumes.
    ``progress(k)`` counts images; ``model`` (a :class:`bsattack.attacks.model.Model`) is
    built when None and a chunk is missing."""
    spec = get_spec(dataset)
    n = len(split.test_x) if n is None else n
    if n > len(split.test_x):
        raise BsattackError(f"--n {n} is more than the {len(split.test_x)} test images")
    digest = ckpt.content_hash(checkpoint)
    store = H5Store(cache_path(spec.name, digest, split.fingerprint, cache_dir),
                    {"checkpoint": digest, "data": split.fingerprint}, echo)
    models = {"model": model}
    try:
        chunks = []
        for start in range(0, n, CHUNK):
            chunks.append(_chunk(settings, spec, checkpoint, split, start, min(start + CHUNK, n),
                                 store, models))
            if progress is not None:
                progress(len(chunks[-1]))
    finally:
        if model is None and models["model"] is not None:
            models["model"].close()
    return np.concatenate(chunks)[:n]


def _chunk(settings, spec, checkpoint, split, start, stop, store, models):
    """The [0, 1] examples of test images start..stop, from the cache or computed (and
    cached).  The worst case takes its full members' examples from their own cached chunks."""
    from bsattack.attacks import registry
    rows = slice(start, stop)
    key = {**settings.key(), "start": start, "stop": stop}
    shape = split.test_x[rows].shape
    name = f"{label(settings)}/{start:05d}-{stop:05d}"
    cached = store.get(name, key, {"adversarial": shape})
    if cached is not None:
        return np.asarray(cached["adversarial"], np.float32)
    if models["model"] is None:
        from bsattack.attacks.model import Model
        models["model"] = Model(spec.name, checkpoint)
    model, eps = models["model"], spec.eps
    x, labels = to_pm(split.test_x[rows].reshape(stop - start, -1)), split.test_y[rows]
    attack = registry.build(model, settings)
    extra = {}
    if hasattr(settings, "full"):
        extra["known"] = {m.name: _as_result(model, _chunk(m, spec, checkpoint, split, start,
                                                           stop, store, models), x, labels, eps,
                                             m.name)
                          for m in settings.full}
    result = attack.run(x, labels, [eps], np.arange(start, stop), **extra)
    inside = np.clip(result.adversarial, x - eps, x + eps)
    adv = np.clip(to_01(inside), 0, 1).reshape(shape).astype(np.float32)
    store.put(name, {"adversarial": adv}, key)
    return adv


def _as_result(model, adv01, x, labels, eps, name):
    """Member ``name``'s cached examples as the AttackResult the worst case combines."""
    adversarial = to_pm(adv01.reshape(len(x), -1))
    fooled = model.predict(adversarial) != labels
    linf = np.where(fooled, np.abs(adversarial - x).max(axis=1), np.inf)
    return AttackResult(adversarial, linf, np.zeros(len(x), np.int64), (eps,),
                        np.where(fooled, name, "").astype(object))


def to_file_units(dataset, adv01):
    """Challenge-file values: [0, 1] for MNIST, [0, 255] for CIFAR10."""
    return (adv01.astype(np.float64) * challenge.challenge_for(dataset).high).astype(np.float32)
