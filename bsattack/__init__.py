"""bsattack: the blind-spot attack on adversarially trained models (ICLR 2019), reproduced."""
