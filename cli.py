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


_register()

if __name__ == "__main__":
    sys.exit(main())
