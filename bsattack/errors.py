"""The one exception type the CLI turns into a one-line error and a non-zero exit."""


class BsattackError(Exception):
    """A user-facing problem (bad input, missing file, corrupt data); the message is one line."""
