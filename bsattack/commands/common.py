"""What the command modules share besides their options (:mod:`bsattack.commands.options`):
the Click progress bar handed to library functions, and the command line and header lines of
the files they write."""
import datetime
import sys

import click


def progressbar(total, label, status=None):
    """A :mod:`bsattack.progress` display on stderr: a bar with ETA, a spinner when ``total``
    is None (click wants an iterable then: an empty generator has no length)."""
    return click.progressbar(iterable=None if total else (_ for _ in ()), length=total,
                             label=label, show_eta=True, file=click.get_text_stream("stderr"),
                             item_show_func=(lambda _: status()) if status else None)


def command_line():
    """The command as typed, with paths a reader can reproduce (for file headers)."""
    from bsattack.display import command_line as shown
    return shown(sys.argv[1:])


def header_lines(checkpoint, n, settings, precision="fp32"):
    """Header of a result file: command, checkpoint (content hash), N, attack (with the
    precision of its gradient oracle), date."""
    from bsattack.display import checkpoint_label
    from bsattack.precision import stated
    return [f"command: {command_line()}",
            f"checkpoint: {checkpoint_label(checkpoint)}",
            f"N: first {n} test images; only correctly classified transformed images attacked",
            f"attack: {settings.describe()}; {stated(precision)}",
            f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}"]
