"""L∞ attacks on the Madry networks: PGD (:mod:`.pgd`) and Carlini & Wagner L∞ (:mod:`.cw_linf`)."""
