"""The worst case over several attacks, AutoAttack's idea (Croce & Hein, 2020): C&W L∞ and
PGD on every image, then APGD-CE and APGD-T on the images they leave
(:mod:`bsattack.attacks.composite`: the cascade's order, thresholds and accounting).  With
``square_queries`` > 0, Square (forward passes only) runs last, on the images every gradient
member left: AutoAttack's check against masked gradients, at its cost in forward passes.
"""
from dataclasses import dataclass, field

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


def _default_full():
    return (CWSettings(), PGDSettings())


def _default_cascade():
    return (APGDSettings(), APGDTSettings(targets=CASCADE_TARGETS))


@dataclass
class WorstSettings(CompositeSettings):
    """The members' own settings, in order.  Version 3: the cascade runs from the largest
    threshold down, below it only on images fooled within the next larger one."""
    name = "worst"
    version = 3
    full: tuple = field(default_factory=_default_full, metadata={"cli": False})
    cascade: tuple = field(default_factory=_default_cascade, metadata={"cli": False})
    square_queries: int = field(default=0, metadata={
        "help": "Square queries run last, on the images the gradient attacks leave "
                "(default 0: none; AutoAttack: 5000)."})
    batch_size: int = 500
    seed: int = 0

    def __post_init__(self):
        if self.square_queries < 0:
            raise BsattackError(f"the worst case's Square queries must be >= 0 "
                                f"(got {self.square_queries})")
        if self.square_queries and not any(s.name == "square" for s in self.cascade):
            self.cascade = tuple(self.cascade) + (SquareSettings(
                queries=self.square_queries, batch_size=self.batch_size, seed=self.seed),)

    def describe(self):
        return ("worst case of " + " + ".join(s.describe() for s in self.full)
                + (" then, on the images they leave, " + " + ".join(
                    s.describe() for s in self.cascade) if self.cascade else ""))


class WorstCase(Composite):
    """The worst case (settings: :class:`WorstSettings`)."""
