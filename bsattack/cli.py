"""The ``bsattack`` command group (``python cli.py`` and the ``bsattack`` console script).

A command's module is imported only when that command runs or a help text lists it, and
TensorFlow only when a command runs (:func:`bsattack.startup.start_tensorflow`), so ``--help``
stays fast and a CPU run prints no TensorFlow start-up log unless ``--verbose``.
"""
import copy
import functools
import importlib

import click

from bsattack.errors import BsattackError

# command name -> "module:attribute" under bsattack.commands
COMMANDS = {
    "accuracy": "basic:accuracy",
    "fetch": "fetching:fetch",
    "checkpoints": "fetching:checkpoints",
    "fetch-data": "fetching:fetch_data",
    "evaluate": "challenge:evaluate",
    "attack": "challenge:attack",
    "leaderboard": "challenge:leaderboard",
    "embed": "distance:embed",
    "distance": "distance:distance_command",
    "blindspot-histogram": "distance:blindspot_histogram_command",
    "kl": "distance:kl",
    "figures": "distance:figures",
    "train": "train:train",
    "export-weights": "train:export_weights",
    "blindspot": "blindspot:blindspot",
    "tables": "blindspot:tables",
    "blindspot-map": "beyond:blindspot_map_command",
    "shifts": "beyond:shifts_command",
    "detectability": "beyond:detectability_command",
    "countermeasure": "beyond:countermeasure_command",
    "reproduce": "reproduce:reproduce",
}


def _after_tensorflow(callback):
    """``callback`` run once TensorFlow is started (quietly unless the group's --verbose)."""
    @functools.wraps(callback)
    def run(*args, **kwargs):
        from bsattack.startup import start_tensorflow
        start_tensorflow(verbose=click.get_current_context().find_root().params["verbose"])
        return callback(*args, **kwargs)
    return run


INTERRUPTED = 130        # the shell's exit status for a command ended by SIGINT


class Main(click.Group):
    """Loads each command from :data:`COMMANDS` on demand; turns a library error into one
    line on stderr and exit status 1, Ctrl-C into one line and exit status 130."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        if name not in self.commands:
            module, attribute = COMMANDS[name].split(":")
            loaded = getattr(importlib.import_module(f"bsattack.commands.{module}"), attribute)
            command = copy.copy(loaded)       # the module's own object stays as it is
            command.callback = _after_tensorflow(loaded.callback)
            self.add_command(command, name)
        return self.commands[name]

    def format_commands(self, ctx, formatter):
        """Each command with its whole first sentence (the formatter wraps it)."""
        rows = [(name, self.get_command(ctx, name).get_short_help_str(limit=10_000))
                for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BsattackError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("interrupted (a rerun resumes from the cache)", err=True)
            raise click.exceptions.Exit(INTERRUPTED) from None


@click.group(cls=Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--verbose", is_flag=True,
              help="Show TensorFlow's start-up and device log (hidden by default).")
def main(verbose):
    """Blind-spot attacks on Madry-style adversarially trained models."""
