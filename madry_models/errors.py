"""The error type of the networks and checkpoint code: a problem the user can fix (a missing,
unreadable or mismatched checkpoint), with a one-line message.  It is the project's one error
type: :mod:`bsattack.errors` re-exports it as ``BsattackError`` (kept here so that
``madry_models`` depends on nothing in ``bsattack``)."""


class UserError(Exception):
    """A user-facing problem (bad input, missing file, corrupt data); the message is one line."""
