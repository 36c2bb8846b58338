"""Click options of the attacks, generated from the registry's settings dataclasses.

Every field of an attack's settings becomes one option: ``--ATTACK-FIELD`` (or the name in
the field's ``metadata['option']``), typed from the field (int >= ``metadata['min']``,
default 1; finite float > 0, a choice, a comma-separated list), with the field's ``help``;
``batch_size`` and ``seed`` are shared by all attacks; fields with ``metadata['cli'] =
False`` stay at their defaults.  An option is None unless given, so
:func:`settings_from_options` knows what the user set and refuses an option of an attack
that is not the one chosen (nor one of its members).
"""
import dataclasses

import click

from bsattack.attacks import registry
from bsattack.errors import BsattackError
from bsattack.commands.options import SEED, FiniteFloat

SHARED = ("batch_size", "seed")


def _fields(entry):
    return [f for f in dataclasses.fields(entry.settings)
            if f.name not in SHARED and f.metadata.get("cli", True)]


def _option_name(entry, field):
    return field.metadata.get("option", f"--{entry.name}-{field.name.replace('_', '-')}")


def _param(entry, field):
    """(python parameter name, click option) of one settings field."""
    flag = _option_name(entry, field)
    param = flag.lstrip("-").replace("-", "_")
    default = field.default if field.default is not dataclasses.MISSING else None
    help_text = field.metadata.get("help", "")
    if default is not None:
        shown = ",".join(default) if isinstance(default, tuple) else default
        help_text += f" [{entry.name}; default: {shown}]"
    else:
        help_text += f" [{entry.name}]"
    if "choices" in field.metadata:
        kind = click.Choice(field.metadata["choices"])
    elif field.type in (int, "int"):
        kind = click.IntRange(min=field.metadata.get("min", 1))
    elif field.type in (float, "float"):
        kind = FiniteFloat(min=0, min_open=True)
    else:
        kind = str
    return param, click.option(flag, param, type=kind, default=None, help=help_text)


def attack_options(command=None, default_attack="cw", attacks=None):
    """``--attack``, ``--batch-size``, ``--seed`` and every attack's own options; use as
    ``@attack_options`` or ``@attack_options(default_attack="pgd")``."""
    if command is None:
        return lambda command: attack_options(command, default_attack, attacks)
    names = list(attacks or registry.ATTACKS)
    options = [click.option("--attack", type=click.Choice(names), default=default_attack,
                            show_default=True,
                            help="; ".join(f"{n}: {registry.get(n).help}" for n in names)),
               click.option("--batch-size", type=click.IntRange(min=1), default=500,
                            show_default=True, help="Images per graph batch."),
               click.option("--seed", type=SEED, default=0, show_default=True,
                            help="Keys every image's random draws with its test index.")]
    for name in names:
        options += [_param(registry.get(name), f)[1] for f in _fields(registry.get(name))]
    for option in reversed(options):
        command = option(command)
    return command


def attack_option_names(attacks=None):
    """The Python parameter names :func:`attack_options` adds."""
    names = ["attack", "batch_size", "seed"]
    for name in attacks or registry.ATTACKS:
        names += [_param(registry.get(name), f)[0] for f in _fields(registry.get(name))]
    return names


def _given(entry, options):
    """The fields of ``entry``'s settings that the command line set."""
    return {f.name: options[_param(entry, f)[0]] for f in _fields(entry)
            if options.get(_param(entry, f)[0]) is not None}


def _override(settings, options, shared):
    """``settings`` with the fields the command line set for its attack."""
    return dataclasses.replace(settings, **_given(registry.get(settings.name), options),
                               **shared)


def settings_from_options(options):
    """The chosen attack's settings from a command's keyword arguments (the options added by
    :func:`attack_options`); an attack made of members keeps its own members' settings,
    with the options the command line gave for them."""
    attack = options["attack"]
    shared = {k: options[k] for k in SHARED if options.get(k) is not None}
    settings = dataclasses.replace(registry.get(attack).settings(),
                                   **_given(registry.get(attack), options))
    members = {s.name for s in settings.members}
    settings = dataclasses.replace(
        settings.map_members(lambda s: _override(s, options, shared)), **shared)
    for name in registry.ATTACKS:
        if name in members or name == attack:
            continue
        entry = registry.get(name)
        for field in _fields(entry):
            param = _param(entry, field)[0]
            if options.get(param) is not None and not _shared_with(param, members):
                raise BsattackError(f"{_option_name(entry, field)} applies to the {name} "
                                    f"attack, not to --attack {attack}")
    _refuse_overridden(settings, options, attack)
    return settings


def _refuse_overridden(settings, options, attack):
    """Refuse a member's option that the composite sets itself (the member runs with another
    value), so that no option given is silently ignored."""
    for member in settings.members:
        entry = registry.get(member.name)
        for name, value in _given(entry, options).items():
            if member.name != attack and getattr(member, name) != value:
                field = next(f for f in _fields(entry) if f.name == name)
                raise BsattackError(f"{_option_name(entry, field)} does not apply to --attack "
                                    f"{attack}, which sets its {member.name} member's "
                                    f"{name.replace('_', ' ')} itself")


def _shared_with(param, members):
    """Whether an option of another attack is also an option of a chosen one."""
    return any(param == _param(registry.get(m), f)[0]
               for m in members for f in _fields(registry.get(m)))


def only_own_options(options):
    """The options that apply to the attack ``options["attack"]`` and its members, the others
    (another attack's budget) set to None."""
    attack = options["attack"]
    members = {s.name for s in registry.get(attack).settings().members}
    own = set(attack_option_names(sorted(members | {attack})))
    return {k: (v if k in own else None) for k, v in options.items()} | {"attack": attack}
