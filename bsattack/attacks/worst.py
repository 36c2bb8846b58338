"""The worst case over several attacks, AutoAttack's idea (Croce & Hein, 2020): C&W L∞ and
PGD on every image, then APGD-CE and APGD-T on the images they leave
(:mod:`bsattack.attacks.composite`: the cascade's order, thresholds and accounting), and last
Square (forward passes only, ``square_queries`` of them; 0 leaves it out) on the images every
gradient member left: AutoAttack's check against masked gradients, at its cost in forward
passes.
"""
from dataclasses import dataclass, field, replace

from bsattack.attacks.apgd import APGDSettings
from bsattack.attacks.apgd_targeted import APGDTSettings
from bsattack.attacks.composite import Composite, CompositeSettings
from bsattack.attacks.cw import CWSettings
from bsattack.attacks.pgd import PGDSettings
from bsattack.attacks.square import SquareSettings
from bsattack.errors import BsattackError


# APGD-T's target classes in the default cascade (AutoAttack's standard version takes 9; the
# highest-logit ones decide almost every image, at a third of the cost)
CASCADE_TARGETS = 3
# Square's queries in the default cascade (AutoAttack's standard version: 5,000; the budgets
# are compared in bench/README.md)
SQUARE_QUERIES = 2000


def _default_full():
    return (CWSettings(), PGDSettings())


def _default_cascade():
    return (APGDSettings(), APGDTSettings(targets=CASCADE_TARGETS))


@dataclass
class WorstSettings(CompositeSettings):
    """The members' own settings, in order (``square``: Square's, whose query count is
    ``square_queries``).  Version 3: the cascade runs from the largest
    threshold down, below it only on images fooled within the next larger one."""
    name = "worst"
    version = 3
    full: tuple = field(default_factory=_default_full, metadata={"cli": False})
    cascade: tuple = field(default_factory=_default_cascade, metadata={"cli": False})
    square_queries: int = field(default=SQUARE_QUERIES, metadata={
        "min": 0, "help": "Square queries run last, on the images the gradient attacks leave "
                "(0: none; AutoAttack: 5000)."})
    square: SquareSettings = field(default_factory=SquareSettings, metadata={"cli": False})
    batch_size: int = 500
    seed: int = 0

    def __post_init__(self):
        if self.square_queries < 0:
            raise BsattackError(f"the worst case's Square queries must be >= 0 "
                                f"(got {self.square_queries})")

    @property
    def cascade_stages(self):
        """The gradient cascade, then Square when ``square_queries`` > 0."""
        square = (replace(self.square, queries=self.square_queries, batch_size=self.batch_size,
                          seed=self.seed),) if self.square_queries else ()
        return tuple(self.cascade) + square

    def map_members(self, change):
        return replace(super().map_members(change), square=change(self.square))

    def describe(self):
        stages = self.cascade_stages
        return ("worst case of " + " + ".join(s.describe() for s in self.full)
                + (" then, on the images they leave, " + " + ".join(
                    s.describe() for s in stages) if stages else ""))


class WorstCase(Composite):
    """The worst case (settings: :class:`WorstSettings`)."""
