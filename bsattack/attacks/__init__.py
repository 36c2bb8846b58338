"""L∞ attacks behind one contract (:mod:`.base`): C&W L∞ (:mod:`.cw`, reference variant in
:mod:`.cw_reference`), PGD (:mod:`.pgd`), APGD (:mod:`.apgd`), FGSM (:mod:`.fgsm`) and their
worst case (:mod:`.worst`), listed in :mod:`.registry`; the attacked network is a
:mod:`.model`."""
