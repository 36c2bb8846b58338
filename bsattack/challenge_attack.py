"""Run any attack of the registry on a test set and return challenge-format adversarial
examples, chunk by chunk, cached (and so resumable) in an :class:`H5Store` keyed by the
checkpoint's content hash, the data fingerprint and every attack setting (the batch size too,
when it is not the default 500).

The leaderboards' PGD baselines (the data set's ``challenge.pgd_steps`` and
``pgd_step_size``: 100 × 0.01 for MNIST and Fashion-MNIST, 20 × 2/255 for CIFAR10) set PGD's
defaults, for the PGD member of the worst case too.  Success is decided at the challenge's ε;
an example over ε (C&W's best may be) is projected onto the ε-ball so the file stays valid.
Every random draw is keyed by the test index, so a resumed run (or one on Ray workers) gives
the same file as an uninterrupted local one.
"""
import dataclasses

import numpy as np

from bsattack import chunks
from bsattack.attacks.base import AttackResult
from bsattack.attacks.pgd import PGDSettings
from bsattack.errors import BsattackError
from bsattack.experiment import batch_key
from bsattack.h5store import H5Store
from bsattack.parallel import Job, LocalExecutor
from bsattack.paths import CACHE_DIR, cache_file, digest
from bsattack.transforms import to_01, to_pm
from madry_models import checkpoint as ckpt

UNCOUNTED = -1               # evaluations of an image cached before they were recorded


@dataclasses.dataclass
class Examples:
    adversarial: np.ndarray   # [n, ...] in [0, 1], native layout
    grad_evals: np.ndarray    # [n] gradient evaluations per image (a worst case: its members'
                              # and its own); UNCOUNTED where an old cache entry lacks them
    forward_evals: np.ndarray = None   # [n] forward-only evaluations per image (Square's
                                       # queries); zeros where a cache entry lacks them

    @property
    def evals_per_image(self):
        """Mean evaluations per image, or NaN when any image is uncounted."""
        counted = self.grad_evals != UNCOUNTED
        return float(self.grad_evals.mean()) if counted.all() else float("nan")

    @property
    def forward_per_image(self):
        """Mean forward evaluations per image."""
        return float(self.forward_evals.mean()) if len(self.forward_evals) else 0.0


def with_challenge_defaults(settings, spec, given=()):
    """``settings`` with the leaderboard's PGD steps and step size for the data set ``spec``
    wherever they were not ``given`` (names of the PGD fields the user set), members
    included."""
    rules = spec.challenge
    steps, step_size = rules.pgd_steps, rules.pgd_step_size

    def fix(s):
        if isinstance(s, PGDSettings):
            values = {k: v for k, v in (("steps", steps), ("step_size", step_size))
                      if k not in given}
            return dataclasses.replace(s, **values)
        if hasattr(s, "full"):
            return s.map_members(fix)
        return s
    return fix(settings)


def group_key(settings, precision="fp32"):
    """What decides a chunk's examples: the settings' key, the batch size when it is not
    the default (:func:`bsattack.experiment.batch_key`) and the oracle's precision when it is
    not fp32 (the keys of default runs unchanged)."""
    return {**settings.key(), **batch_key(settings),
            **({"precision": precision} if precision != "fp32" else {})}


def label(settings, precision="fp32"):
    """A short name of ``settings`` (at ``precision``) for cache groups and progress bars."""
    return f"{settings.name}-{digest(group_key(settings, precision))[:12]}"


def cache_path(spec, checkpoint_hash, fingerprint, cache_dir=None):
    return cache_file(cache_dir or CACHE_DIR, "attacks", spec.name,
                      {"checkpoint": checkpoint_hash, "data": fingerprint})


def adversarial_examples(settings, spec, checkpoint, split, n=None, cache_dir=None,
                         echo=print, progress=None, executor=None, precision="fp32"):
    """:class:`Examples`: [n, ...] adversarial examples in [0, 1] (native layout) for the first
    ``n`` test images of ``split`` (of the data set ``spec``) under ``settings`` (any registry
    attack), and the gradient evaluations spent on each; computed in chunks of
    :data:`bsattack.chunks.CHUNK_SIZE` by ``executor`` (:mod:`bsattack.parallel`; default:
    this process), each cached by this driver as soon as it arrives, so an interrupted run
    resumes.
    ``progress(k)`` counts images; ``precision``: the attack's gradient oracle ('fp32' or
    'bf16'; the examples are the attack's, every accuracy of them is float32's)."""
    n = len(split.test_x) if n is None else n
    if n > len(split.test_x):
        raise BsattackError(f"--n {n} is more than the {len(split.test_x)} test images")
    digest = ckpt.content_hash(checkpoint)
    store = H5Store(cache_path(spec, digest, split.fingerprint, cache_dir),
                    {"checkpoint": digest, "data": split.fingerprint}, echo)
    owned = executor is None
    executor = executor or LocalExecutor()
    try:
        return _examples(settings, spec, checkpoint, split, n, store, executor, progress,
                         precision)
    finally:
        if owned:
            executor.close()


def _examples(settings, spec, checkpoint, split, n, store, executor, progress, precision):
    """The :class:`Examples` of the first ``n`` test images: cached chunks read, the missing
    ones computed on ``executor`` and cached (:mod:`bsattack.chunks`).  The worst case takes
    its full members' examples from their own chunks (computed first when missing); the cache
    is checked writable before any of them runs when a chunk is missing."""
    group, tag, members = group_key(settings, precision), label(settings, precision), {}

    def job(start, stop):
        rows = slice(start, stop)
        return Job(spec.name, checkpoint, _attack_chunk, {
            "settings": settings, "x01": split.test_x[rows], "labels": split.test_y[rows],
            "ids": np.arange(start, stop), "eps": spec.eps,
            "members": {name: m.adversarial[rows] for name, m in members.items()}}, precision)

    own = chunks.Chunks(store, n, chunks.CHUNK_SIZE,
                        lambda start, stop: f"{tag}/{start:05d}-{stop:05d}",
                        lambda start, stop: {**group, "start": start, "stop": stop},
                        lambda start, stop: {"adversarial": split.test_x[start:stop].shape},
                        job)
    if progress is not None and own.cached_images:
        progress(own.cached_images)
    members.update((m.name, _examples(m, spec, checkpoint, split, n, store, executor, None,
                                      precision))
                   for m in getattr(settings, "full", ()))
    chunks.run([own], executor, progress)
    merged = own.merged({"grad_evals": UNCOUNTED, "forward_evals": 0})
    parts = [np.asarray(merged["grad_evals"], np.int64)] + [
        m.grad_evals for m in members.values()]
    total = np.where(np.any([p == UNCOUNTED for p in parts], axis=0), UNCOUNTED,
                     np.sum(parts, axis=0))
    forward = np.sum([np.asarray(merged["forward_evals"], np.int64)]
                     + [m.forward_evals for m in members.values()], axis=0)
    return Examples(np.asarray(merged["adversarial"], np.float32), total, forward)


def _attack_chunk(model, payload):
    """One chunk's examples in [0, 1], projected onto the ε-ball, and its evaluations per
    image (a worst case's own: its members' examples come in the payload)."""
    from bsattack.attacks import registry
    settings, x01, labels, eps = (payload["settings"], payload["x01"], payload["labels"],
                                  payload["eps"])
    x = to_pm(x01.reshape(len(x01), -1))
    extra = {}
    if payload["members"]:
        extra["known"] = {name: _as_result(model, adv01, x, labels, eps, name)
                          for name, adv01 in payload["members"].items()}
    result = registry.build(model, settings).run(x, labels, [eps], payload["ids"], **extra)
    inside = np.clip(result.adversarial, x - eps, x + eps)
    arrays = {"adversarial": np.clip(to_01(inside), 0, 1).reshape(x01.shape).astype(np.float32),
              "grad_evals": result.grad_evals.astype(np.int64)}
    if settings.uses_forward_queries:     # the other attacks' entries keep their arrays
        arrays["forward_evals"] = result.forward_evals.astype(np.int64)
    return arrays


def _as_result(model, adv01, x, labels, eps, name):
    """Member ``name``'s examples as the AttackResult the worst case combines."""
    adversarial = to_pm(adv01.reshape(len(x), -1))
    fooled = model.predict(adversarial) != labels
    linf = np.where(fooled, np.abs(adversarial - x).max(axis=1), np.inf)
    return AttackResult(adversarial, linf, np.zeros(len(x), np.int64), (eps,),
                        np.where(fooled, name, "").astype(object))


def to_file_units(spec, adv01):
    """Challenge-file values: [0, 1] for MNIST, [0, 255] for CIFAR10."""
    return (adv01.astype(np.float64) * spec.challenge.high).astype(np.float32)
