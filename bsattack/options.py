"""Moved: the shared Click options live in :mod:`bsattack.commands.options` (the command layer),
the checkpoint resolution in :func:`bsattack.manifest.resolve_checkpoint`.  This module only
re-exports them for callers not yet switched; it goes when none is left."""
from bsattack.commands.options import (SEED, SEED_MAX, FiniteFloat,  # noqa: F401
                                       batch_size_option, checkpoint_option, data_dir_option,
                                       dataset_option, n_option, out_option, seed_option,
                                       validation_size_option)
from bsattack.manifest import resolve_checkpoint  # noqa: F401
from bsattack.paths import CHECKPOINTS_DIR  # noqa: F401
