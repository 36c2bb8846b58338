"""What the command modules share besides their options (:mod:`bsattack.commands.options`):
the Click progress bar handed to library functions, and the command line for file headers."""
import shlex
import sys

import click


def progressbar(total, label, status=None):
    """A :mod:`bsattack.progress` display on stderr: a bar with ETA, a spinner when ``total``
    is None (click wants an iterable then: an empty generator has no length)."""
    return click.progressbar(iterable=None if total else (_ for _ in ()), length=total,
                             label=label, show_eta=True, file=click.get_text_stream("stderr"),
                             item_show_func=(lambda _: status()) if status else None)


def command_line():
    """The command as typed (for the header of the files it writes)."""
    return "python cli.py " + shlex.join(sys.argv[1:])
