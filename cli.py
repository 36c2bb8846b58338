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
    from bsattack.commands import basic
    main.add_command(basic.accuracy)
    from bsattack.commands import fetching
    main.add_command(fetching.fetch)
    main.add_command(fetching.checkpoints)
    main.add_command(fetching.fetch_data)
    from bsattack.commands import challenge
    main.add_command(challenge.evaluate)
    main.add_command(challenge.attack)
    main.add_command(challenge.leaderboard)
    from bsattack.commands import distance
    for command in (distance.embed, distance.distance_command,
                    distance.blindspot_histogram_command, distance.kl, distance.figures):
        main.add_command(command)
    from bsattack.commands import train
    main.add_command(train.train)
    main.add_command(train.export_weights)
    from bsattack.commands import blindspot
    main.add_command(blindspot.blindspot)
    main.add_command(blindspot.tables)
    from bsattack.commands import beyond
    main.add_command(beyond.blindspot_map_command)
    main.add_command(beyond.shifts_command)
    main.add_command(beyond.detectability_command)
    main.add_command(beyond.countermeasure_command)
    from bsattack.commands import reproduce
    main.add_command(reproduce.reproduce)


_register()

if __name__ == "__main__":
    sys.exit(main())
