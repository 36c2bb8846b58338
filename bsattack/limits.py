"""Value ranges shared by the library's checks and the command options (which must not import
each other's layer)."""

SEED_MAX = 2**32 - 1     # numpy.random.RandomState / default_rng accept 0 .. 2**32 - 1
