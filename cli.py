#!/usr/bin/env python
"""bsattack command line: the blind-spot attack paper (ICLR 2019), reproduced.

Every command only parses options and calls the library; `python cli.py COMMAND --help`.
"""
import sys

import click

import bsattack  # noqa: F401  (quiets TensorFlow's start-up log before it is imported)
from bsattack.errors import BsattackError


class Main(click.Group):
    """Turns a library error into one line on stderr and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BsattackError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=Main, context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Blind-spot attacks on Madry-style adversarially trained models."""


def _register():
    from bsattack.commands import (basic, beyond, blindspot, challenge, distance, fetching,
                                   reproduce, train)
    for command in (basic.accuracy, fetching.fetch, fetching.checkpoints, fetching.fetch_data,
                    challenge.evaluate, challenge.attack, challenge.leaderboard,
                    distance.embed, distance.distance_command,
                    distance.blindspot_histogram_command, distance.kl, distance.figures,
                    train.train, train.export_weights, blindspot.blindspot, blindspot.tables,
                    beyond.blindspot_map_command, beyond.shifts_command,
                    beyond.detectability_command, beyond.countermeasure_command,
                    reproduce.reproduce):
        main.add_command(command)


_register()

if __name__ == "__main__":
    sys.exit(main())
