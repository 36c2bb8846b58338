"""Run the project's attacks on a test set and return challenge-format adversarial examples,
chunk by chunk, cached (and so resumable) in an :class:`H5Store` keyed by the checkpoint's
content hash, the data fingerprint and every attack setting.

Attacks (the challenges' baselines and the paper's C&W L∞):
- ``pgd``: Madry's PGD on the cross-entropy loss (mnist_challenge/pgd_attack.py), random
  start, restarts keep the first fooling example per image;
- ``pgd-cw``: the same on the C&W margin loss ('cw' in pgd_attack.py);
- ``cw``: Carlini & Wagner L∞ (li_attack.py, :mod:`bsattack.attacks.cw_linf`), success decided
  at ε; restart r > 0 reruns its noise initialisation with seed ``seed + r`` on the images not
  fooled yet.  C&W's best example may exceed ε; it is projected onto the ε-ball so the file
  stays valid (the challenge rejects anything over budget).
PGD steps and step sizes are the leaderboards' baselines: 100 × 0.01 for MNIST
(and Fashion-MNIST), 20 × 2/255 for CIFAR10.
"""
import os
from dataclasses import asdict, dataclass

import numpy as np

from bsattack import challenge
from bsattack.datasets import get_spec
from bsattack.errors import BsattackError
from bsattack.h5store import CACHE_DIR, H5Store
from madry_models import checkpoint as ckpt

ATTACKS = ("pgd", "pgd-cw", "cw")
PGD_LOSS = {"pgd": "xent", "pgd-cw": "cw"}
PGD_STEPS = {"mnist": (100, 0.01), "fashion": (100, 0.01), "cifar10": (20, 2.0 / 255)}
CW_ITERATIONS = 100          # Adam steps per constant (li_attack.py: 1000), to fit a CPU
CHUNK = 500                  # images per cached group: the unit of resume


@dataclass(frozen=True)
class AttackSettings:
    attack: str
    dataset: str
    restarts: int = 1
    seed: int = 0
    steps: int = 0               # PGD only
    step_size: float = 0.0       # PGD only, [0, 1] units
    cw_iterations: int = 0       # C&W only

    @property
    def eps(self):
        return get_spec(self.dataset).eps

    def cw_settings(self, restart, batch_size=500):
        """C&W's own settings for restart ``restart`` (the first runs both initialisations)."""
        from bsattack.attacks.cw_linf import CWSettings, INITS
        return CWSettings(max_iterations=self.cw_iterations, batch_size=batch_size,
                          inits=INITS if restart == 0 else ("noise",), seed=self.seed + restart)

    def pgd_settings(self, batch_size=500):
        from bsattack.attacks.pgd import PGDSettings
        return PGDSettings(steps=self.steps, step_size=self.step_size,
                           loss=PGD_LOSS[self.attack], restarts=self.restarts,
                           batch_size=batch_size, seed=self.seed)

    def key(self):
        """Cache key: these settings and every setting of the attack itself."""
        key = asdict(self)
        if self.attack == "cw":
            key["cw"] = [self.cw_settings(r).key() for r in range(self.restarts)]
        else:
            key["pgd"] = self.pgd_settings().key()
        return key

    def label(self):
        if self.attack == "cw":
            return f"cw-it{self.cw_iterations}-R{self.restarts}-seed{self.seed}"
        return f"{self.attack}-k{self.steps}-a{self.step_size:.5g}-R{self.restarts}-seed{self.seed}"

    def describe(self):
        if self.attack == "cw":
            return (f"C&W L∞ (li_attack.py, {self.cw_iterations} Adam steps per constant), "
                    f"noise + gray starts, {self.restarts} restart(s)")
        loss = "cross-entropy" if self.attack == "pgd" else "CW-margin"
        return (f"{self.steps}-step PGD on the {loss} loss (step {self.step_size:.4g}), "
                f"{self.restarts} random start(s)")


def settings_for(attack, dataset, restarts=1, seed=0, cw_iterations=CW_ITERATIONS):
    if attack not in ATTACKS:
        raise BsattackError(f"unknown attack '{attack}' (known: {', '.join(ATTACKS)})")
    if restarts < 1:
        raise BsattackError("--restarts must be at least 1")
    if attack == "cw":
        return AttackSettings(attack, dataset, restarts, seed, cw_iterations=cw_iterations)
    steps, step_size = PGD_STEPS[get_spec(dataset).name]
    return AttackSettings(attack, dataset, restarts, seed, steps, step_size)


class _Runner:
    """Builds the attack graph once, on first use; ``run(x01, y, first_id, progress)`` ->
    adversarial examples in [0, 1] within the ε-ball (``first_id``: test index of x01[0])."""

    def __init__(self, settings, checkpoint, batch_size):
        self.s, self.checkpoint, self.batch_size = settings, checkpoint, batch_size
        self.attacks = []

    def run(self, x01, y, first_id, progress):
        if self.s.attack == "cw":
            return self._run_cw(x01, y, first_id, progress)
        if not self.attacks:
            from bsattack.attacks.pgd import LinfPGD
            self.attacks.append(LinfPGD(self.s.dataset, self.checkpoint,
                                        self.s.pgd_settings(self.batch_size)))
        return self.attacks[0].attack(x01, y, self.s.eps, progress=progress).adversarial

    def _run_cw(self, x01, y, first_id, progress):
        from bsattack.attacks.cw_linf import CarliniLinf
        if len(x01.shape) != 2:
            raise BsattackError("the C&W L∞ attack handles flat [N, 784] images only "
                                "(MNIST, Fashion-MNIST)")
        eps = self.s.eps
        best, todo = x01.copy(), np.arange(len(x01))
        for restart in range(self.s.restarts):
            if len(self.attacks) <= restart:
                self.attacks.append(CarliniLinf(self.s.dataset, self.checkpoint,
                                                self.s.cw_settings(restart, self.batch_size)))
            result = self.attacks[restart].attack(x01[todo] - 0.5, y[todo], [eps],
                                                  ids=first_id + todo, progress=progress)
            best[todo] = result.adversarial + 0.5
            todo = todo[~result.success(eps)]
            if not len(todo):
                break
        return np.clip(best, np.clip(x01 - eps, 0, 1), np.clip(x01 + eps, 0, 1))

    def close(self):
        for attack in self.attacks:
            attack.close()


def cache_path(dataset, checkpoint_hash, fingerprint):
    return os.path.join(CACHE_DIR, f"attacks-{dataset}-{checkpoint_hash[:16]}-{fingerprint}.h5")


def adversarial_examples(settings, checkpoint, split, n=None, batch_size=500, cache_dir=None,
                         echo=print, progress=None):
    """[n, ...] adversarial examples in [0, 1] (native layout) for the first ``n`` test images
    of ``split``; computed in chunks of :data:`CHUNK`, each cached as soon as it is done, so an
    interrupted run resumes.  ``progress(k)`` counts image attempts (n × restarts in all)."""
    n = len(split.test_x) if n is None else n
    if n > len(split.test_x):
        raise BsattackError(f"--n {n} is more than the {len(split.test_x)} test images")
    digest = ckpt.content_hash(checkpoint)
    path = (os.path.join(cache_dir, os.path.basename(cache_path(settings.dataset, digest,
                                                                 split.fingerprint)))
            if cache_dir else cache_path(settings.dataset, digest, split.fingerprint))
    store = H5Store(path, {"checkpoint": digest, "data": split.fingerprint}, echo)
    runner = _Runner(settings, checkpoint, batch_size)
    chunks = []
    try:
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            rows = slice(start, stop)
            key = {**settings.key(), "start": start, "stop": stop}
            name = f"{settings.label()}/{start:05d}-{stop:05d}"
            shape = split.test_x[rows].shape
            cached = store.get(name, key, {"adversarial": shape})
            if cached is None:
                done = [0]

                def count(k):
                    done[0] += k
                    if progress is not None:
                        progress(k)
                adv = runner.run(split.test_x[rows], split.test_y[rows], start, count)
                store.put(name, {"adversarial": adv.astype(np.float32)}, key)
                cached = {"adversarial": adv}
                left = (stop - start) * settings.restarts - done[0]
            else:
                left = (stop - start) * settings.restarts
            if progress is not None and left > 0:
                progress(left)
            chunks.append(np.asarray(cached["adversarial"], np.float32))
    finally:
        runner.close()
    return np.concatenate(chunks)[:n]


def to_file_units(dataset, adv01):
    """Challenge-file values: [0, 1] for MNIST, [0, 255] for CIFAR10."""
    return (adv01.astype(np.float64) * challenge.challenge_for(dataset).high).astype(np.float32)
