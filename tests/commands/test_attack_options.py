"""The attack options every command gets from the registry's settings dataclasses."""
import dataclasses

import click
import pytest
from click.testing import CliRunner

from bsattack.attacks import registry
from bsattack.commands.attack_options import attack_options, settings_from_options
from bsattack.errors import BsattackError
from cli import main


MADE = []


@click.command()
@attack_options
def show(**options):
    """Keep the settings the options make."""
    try:
        MADE.append(settings_from_options(options))
    except BsattackError as err:
        raise click.ClickException(str(err))


def settings_of(*args):
    result = CliRunner().invoke(show, list(args))
    assert result.exit_code == 0, result.output
    return MADE.pop()


def cli_fields(entry):
    return [f for f in dataclasses.fields(entry.settings)
            if f.name not in ("batch_size", "seed") and f.metadata.get("cli", True)]


def other_value(field):
    """A valid value of ``field`` different from its default, as (option text, value)."""
    if "choices" in field.metadata:
        value = next(c for c in field.metadata["choices"] if c != field.default)
        return value, value
    if field.type is int:
        value = (field.default or 5) + 2
        return str(value), value
    if field.type is float:
        return "0.037", 0.037
    return "noise", ("noise",)                    # the C&W starts


@pytest.mark.parametrize("name", sorted(registry.ATTACKS))
def test_every_attack_gets_its_options(name):
    entry = registry.get(name)
    assert settings_of("--attack", name) == entry.settings()
    for field in cli_fields(entry):
        flag = field.metadata.get("option", f"--{name}-{field.name.replace('_', '-')}")
        text, value = other_value(field)
        settings = settings_of("--attack", name, flag, text, "--seed", "7", "--batch-size", "3")
        assert getattr(settings, field.name) == value, (flag, settings)
        assert settings.seed == 7 and settings.batch_size == 3


def test_worst_case_takes_its_members_options():
    settings = settings_of("--attack", "worst", "--pgd-steps", "7", "--max-iterations", "3",
                           "--apgd-iterations", "9", "--apgd-loss", "dlr", "--seed", "5")
    pgd, cw = {s.name: s for s in settings.full}["pgd"], {s.name: s for s in settings.full}["cw"]
    apgd, targeted = settings.cascade
    assert (pgd.steps, cw.max_iterations, apgd.iterations, apgd.loss) == (7, 3, 9, "dlr")
    assert pgd.seed == cw.seed == apgd.seed == targeted.seed == settings.seed == 5
    # a member the options do not touch keeps the worst case's own settings, not its
    # attack's defaults (the cascade's APGD-T takes fewer targets than --attack apgd-t)
    assert targeted == registry.get("worst").settings().cascade[1].__class__(
        **{**registry.get("worst").settings().cascade[1].__dict__, "seed": 5})
    assert targeted.targets < registry.get("apgd-t").settings().targets
    assert settings_of("--attack", "worst").key() == registry.get("worst").settings().key()


@pytest.mark.parametrize("args,fragment", [
    (["--attack", "pgd", "--max-iterations", "5"],
     "--max-iterations applies to the cw attack, not to --attack pgd"),
    (["--attack", "cw", "--pgd-steps", "5"], "--pgd-steps applies to the pgd attack"),
    (["--attack", "apgd", "--cw-variant", "reference"], "--cw-variant applies to the cw attack"),
    (["--attack", "worst", "--cw-restarts", "2", "--fgsm-x", "1"], "No such option"),
    (["--attack", "pgd", "--pgd-step-size", "nan"], "--pgd-step-size"),
    (["--attack", "pgd", "--pgd-step-size", "inf"], "--pgd-step-size"),
    (["--attack", "pgd", "--pgd-step-size", "0"], "--pgd-step-size"),
    (["--attack", "pgd", "--pgd-steps", "0"], "--pgd-steps"),
    (["--attack", "pgd", "--seed", "-1"], "--seed"),
])
def test_wrong_options_are_one_line_errors(args, fragment):
    result = CliRunner().invoke(main, ["blindspot", *args])
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and fragment in errors[0], result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
