"""Progress reporting without a user-interface dependency.

Long library functions take ``progress``: a callable ``progress(total, label, status=None)``
returning a context manager whose ``update(count)`` advances the count (``total`` None: not
known in advance; ``status``, when given, is a zero-argument callable whose text is shown
beside the count) — the shape of :func:`bsattack.experiment.run_blindspot`'s ``progress_for``.
The commands pass :func:`bsattack.commands.common.progressbar`; the default, :func:`silent`,
shows nothing.
"""
import contextlib


class _Counter:
    def update(self, count):
        pass


@contextlib.contextmanager
def silent(total, label, status=None):
    """A progress display that shows nothing."""
    yield _Counter()
