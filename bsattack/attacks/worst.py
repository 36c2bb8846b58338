"""The worst case over several attacks, AutoAttack's idea (Croce & Hein, 2020): per image, a
success if any member succeeds, with the smallest-L∞ example kept and the member that found
it recorded (``AttackResult.found_by``).

Members come in two kinds: ``full`` members run on every image (so each one's own column can
be reported next to the worst case, and a run of the member alone can be reused), then the
``cascade`` members (fixed-budget attacks), threshold by threshold from the largest, each only
on the images no earlier member fooled within that threshold.  Below the largest threshold the
cascade attacks only images some member fooled within the next larger one: an example within
α·ε is one within ε, so where every member failed at ε the cascade spends nothing at α·ε.
"""
from dataclasses import dataclass, field

import numpy as np

from bsattack.attacks.apgd import APGDSettings
from bsattack.attacks.apgd_targeted import APGDTSettings
from bsattack.attacks.base import AttackResult, Settings, versioned
from bsattack.attacks.cw import CWSettings
from bsattack.attacks.pgd import PGDSettings


# APGD-T's target classes in the default cascade (AutoAttack's standard version takes 9; the
# highest-logit ones decide almost every image, at a third of the cost)
CASCADE_TARGETS = 3


def _default_full():
    return (CWSettings(), PGDSettings())


def _default_cascade():
    return (APGDSettings(), APGDTSettings(targets=CASCADE_TARGETS))


@dataclass
class WorstSettings(Settings):
    """The members' own settings, in order.  Version 3: the cascade runs from the largest
    threshold down, below it only on images fooled within the next larger one."""
    name = "worst"
    version = 3
    full: tuple = field(default_factory=_default_full, metadata={"cli": False})
    cascade: tuple = field(default_factory=_default_cascade, metadata={"cli": False})
    batch_size: int = 500
    seed: int = 0

    def key(self):
        return versioned(self, {"attack": self.name, "full": [s.key() for s in self.full],
                                "cascade": [s.key() for s in self.cascade]})

    @property
    def members(self):
        return tuple(self.full) + tuple(self.cascade)

    def describe(self):
        return ("worst case of " + " + ".join(s.describe() for s in self.full)
                + (" then, on the images they leave, " + " + ".join(
                    s.describe() for s in self.cascade) if self.cascade else ""))


def combine(x, thresholds, results):
    """The smallest-L∞ success per image over ``results`` (AttackResults of the same images)."""
    best = AttackResult.empty(x, thresholds)
    every = np.arange(len(x))
    for result in results:
        best.improve(every, result)
    return best


class WorstCase:
    """Runs the members on a :class:`~bsattack.attacks.model.Model`, each built by
    ``build(model, settings)`` (the registry's); ``known`` may hold a full member's result on
    the same images (by attack name), which is then not recomputed."""
    builds_members = True          # the registry hands it its build function

    def __init__(self, model, settings, build):
        self.model, self.settings, self.build = model, settings, build

    def run(self, x, labels, thresholds, ids=None, known=None):
        x = np.asarray(x, np.float32).reshape(len(x), -1)
        labels = np.asarray(labels, np.int64)
        ids = np.arange(len(x)) if ids is None else np.asarray(ids)
        thresholds = tuple(sorted(float(t) for t in thresholds))
        known = known or {}
        results = [known[s.name] if s.name in known
                   else self.build(self.model, s).run(x, labels, thresholds, ids)
                   for s in self.settings.full]
        best = combine(x, thresholds, results)
        larger = None
        for threshold in reversed(thresholds):
            candidates = np.ones(len(x), bool) if larger is None else best.success(larger)
            for member in self.settings.cascade:
                todo = np.flatnonzero(candidates & ~best.success(threshold))
                if len(todo):
                    part = self.build(self.model, member).run(x[todo], labels[todo],
                                                              (threshold,), ids[todo])
                    best.improve(todo, part)
            larger = threshold
        return best
