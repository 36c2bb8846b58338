"""The one list of attacks.  Each entry carries its settings dataclass and its class; the
commands generate their Click options from the settings' fields
(:mod:`bsattack.commands.attack_options`), the experiment and the challenge code build
attacks through :func:`build`.  Adding an attack: one module with a settings dataclass
(subclass of :class:`~bsattack.attacks.base.Settings`) and a class
``Attack(model, settings).run(x, labels, thresholds, ids=None, known=None) -> AttackResult``
(a random stream of its own in ``base.STREAMS`` if it draws), plus one line here.  Nothing
here imports TensorFlow.
"""
from dataclasses import dataclass

from bsattack.attacks.apgd import APGD, APGDSettings
from bsattack.attacks.apgd_targeted import APGDTargeted, APGDTSettings
from bsattack.attacks.autoattack import AutoAttack, AutoAttackSettings
from bsattack.attacks.cw import CarliniLinf, CWSettings
from bsattack.attacks.fgsm import FGSM, FGSMSettings
from bsattack.attacks.pgd import LinfPGD, PGDSettings
from bsattack.attacks.square import Square, SquareSettings
from bsattack.attacks.worst import WorstCase, WorstSettings
from bsattack.errors import BsattackError


@dataclass(frozen=True)
class Entry:
    name: str
    settings: type
    attack: type
    help: str


ENTRIES = (
    Entry("cw", CWSettings, CarliniLinf, "Carlini & Wagner L∞, the paper's attack"),
    Entry("pgd", PGDSettings, LinfPGD, "Madry's PGD"),
    Entry("apgd", APGDSettings, APGD, "Croce & Hein's Auto-PGD"),
    Entry("apgd-t", APGDTSettings, APGDTargeted, "AutoAttack's targeted Auto-PGD (DLR)"),
    Entry("fgsm", FGSMSettings, FGSM, "Goodfellow's one-step FGSM"),
    Entry("square", SquareSettings, Square, "Andriushchenko et al.'s Square (forward passes only)"),
    Entry("autoattack", AutoAttackSettings, AutoAttack,
          "AutoAttack's standard cascade without FAB-T"),
    Entry("worst", WorstSettings, WorstCase,
          "per image the best of C&W, PGD, then APGD-CE, APGD-T and Square"),
)
ATTACKS = {entry.name: entry for entry in ENTRIES}


def get(name):
    try:
        return ATTACKS[name]
    except KeyError:
        raise BsattackError(f"unknown attack '{name}' (known: {', '.join(ATTACKS)})") from None


def build(model, settings):
    """The attack ``settings`` describes, on ``model`` (an attack made of other attacks gets
    this function to build them)."""
    attack = get(settings.name).attack
    if getattr(attack, "builds_members", False):
        return attack(model, settings, build)
    return attack(model, settings)
