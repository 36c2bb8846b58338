"""The one exception type the CLI turns into a one-line error and a non-zero exit.  Defined in
:mod:`madry_models.errors` (which imports nothing from bsattack) so that the checkpoint code
raises the same type."""
from madry_models.errors import UserError as BsattackError  # noqa: F401
