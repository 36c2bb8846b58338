"""bsattack: the blind-spot attack on adversarially trained models (ICLR 2019), reproduced."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
