"""Attacks made of other attacks (the worst case, AutoAttack): per image, a success if any
member succeeds, with the smallest-L∞ example kept, the member that found it recorded
(``AttackResult.found_by``) and every member's evaluations summed.

Members come in two kinds: ``full`` members run on every image (so each one's own column can
be reported next to the composite, and a run of the member alone can be reused), then the
``cascade`` members (fixed-budget attacks), threshold by threshold from the largest, each only
on the images no earlier member fooled within that threshold.  Below the largest threshold the
cascade attacks only images some member fooled within the next larger one: an example within
α·ε is one within ε, so where every member failed at ε the cascade spends nothing at α·ε.
"""
import dataclasses

import numpy as np

from bsattack.attacks.base import AttackResult, Settings, versioned


class CompositeSettings(Settings):
    """Base of a composite's settings dataclass, whose fields ``full`` and ``cascade`` hold the
    members' own settings, in order; the key is theirs (not the batch size or seed).  The
    composite runs once (``restarts`` 1); its members restart as their settings say."""

    def key(self):
        return versioned(self, {"attack": self.name, "full": [s.key() for s in self.full],
                                "cascade": [s.key() for s in self.cascade_stages]})

    @property
    def cascade_stages(self):
        """The cascade as it runs: the ``cascade`` field's members, then any stage the
        composite derives from its own fields."""
        return tuple(self.cascade)

    @property
    def members(self):
        return tuple(self.full) + self.cascade_stages

    @property
    def uses_forward_queries(self):
        return any(s.uses_forward_queries for s in self.members)

    def map_members(self, change):
        return dataclasses.replace(self, full=tuple(change(s) for s in self.full),
                                   cascade=tuple(change(s) for s in self.cascade))


def combine(x, thresholds, results):
    """The smallest-L∞ success per image over ``results`` (AttackResults of the same images)."""
    best = AttackResult.empty(x, thresholds)
    every = np.arange(len(x))
    for result in results:
        best.improve(every, result)
    return best


class Composite:
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
            for member in self.settings.cascade_stages:
                todo = np.flatnonzero(candidates & ~best.success(threshold))
                if len(todo):
                    part = self.build(self.model, member).run(x[todo], labels[todo],
                                                              (threshold,), ids[todo])
                    best.improve(todo, part)
            larger = threshold
        return best
