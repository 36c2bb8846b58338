"""Paths as a reader of a committed result can reproduce them, not as this machine spells them.

``display_path(p)``: relative to the project root when ``p`` is inside it
(``checkpoints/fashion_adv``), else relative to the current folder when inside that, else
relative to the project root when the two share a folder below the file-system root
(``../data/mnist`` for a folder beside the project), else ``p`` as an absolute path.
"""
import os

from bsattack.paths import PROJECT_ROOT


def _inside(path, folder):
    return os.path.commonpath([path, folder]) == folder


def display_path(path, root=PROJECT_ROOT):
    """``path`` (str or path-like) in the form described in the module docstring."""
    full = os.path.abspath(path)
    root, here = os.path.abspath(root), os.getcwd()
    try:
        if _inside(full, root):
            return os.path.relpath(full, root)
        if _inside(full, here):
            return os.path.relpath(full, here)
        shared = os.path.commonpath([full, root])
    except ValueError:       # on different drives (Windows)
        return full
    if os.path.dirname(shared) != shared:      # a folder above both, not the file-system root
        return os.path.relpath(full, root)
    return full


def command_line(argv, program="cli.py"):
    """``python PROGRAM ARGS`` with absolute paths among the arguments shown by
    :func:`display_path` (``--opt=/abs/path`` too)."""
    import shlex

    def show(arg):
        name, eq, value = arg.partition("=")
        if eq and os.path.isabs(value):
            return f"{name}={display_path(value)}"
        return display_path(arg) if os.path.isabs(arg) else arg
    return f"python {program} " + " ".join(shlex.quote(show(a)) for a in argv)


def checkpoint_file(checkpoint):
    """The checkpoint files ``checkpoint`` (a folder or a prefix) restores, as their prefix in
    the form of :func:`display_path` (a folder resolves to the step its index names)."""
    from madry_models.checkpoint import resolve_prefix
    return display_path(resolve_prefix(checkpoint))


def checkpoint_label(checkpoint, digest=None):
    """``checkpoint`` as result files name it: its files (:func:`checkpoint_file`) and the
    first 16 hex digits of their SHA-256 (``digest``, computed when not given)."""
    if digest is None:
        from madry_models.checkpoint import content_hash
        digest = content_hash(checkpoint)
    return f"{checkpoint_file(checkpoint)} (sha256 {digest[:16]})"
