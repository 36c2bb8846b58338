"""AutoAttack's standard version (Croce & Hein, ICML 2020), L∞, without FAB-T: APGD-CE
(100 iterations, 1 start), then APGD-T (9 target classes × 100 iterations), then Square
(5,000 queries, p_init 0.8, the schedule of 10,000 queries as AutoAttack runs it), each only
on the images the earlier ones left (:class:`~bsattack.attacks.composite.Composite`, at each
threshold).  AutoAttack runs FAB-T (9 targets) between APGD-T and Square; it is left out here
because the project has no FAB: FAB is a minimal-norm attack that steps onto the linearised
decision boundary of each target class (its own projection and extrapolation rules), not a
loss on the gradient oracle the other members share.  Images only FAB-T would fool are
therefore missed: the success is at most AutoAttack's with FAB-T on the same network.
"""
from dataclasses import dataclass, field

from bsattack.attacks.apgd import APGDSettings
from bsattack.attacks.apgd_targeted import APGDTSettings
from bsattack.attacks.composite import Composite, CompositeSettings
from bsattack.attacks.square import SquareSettings


def _standard_cascade():
    return (APGDSettings(iterations=100, loss="ce", restarts=1),
            APGDTSettings(iterations=100, targets=9, restarts=1),
            SquareSettings(queries=5000, p_init=0.8, restarts=1, rescale_schedule=False))


@dataclass
class AutoAttackSettings(CompositeSettings):
    """The cascade members' own settings, in order (no full members)."""
    name = "autoattack"
    full: tuple = field(default=(), metadata={"cli": False})
    cascade: tuple = field(default_factory=_standard_cascade, metadata={"cli": False})
    batch_size: int = 500
    seed: int = 0

    def describe(self):
        return ("AutoAttack's standard version without FAB-T (images only FAB-T would fool are "
                "missed): " + " then ".join(s.describe() for s in self.cascade_stages)
                + ", each on the images the earlier ones leave")


class AutoAttack(Composite):
    """AutoAttack's cascade (settings: :class:`AutoAttackSettings`)."""
