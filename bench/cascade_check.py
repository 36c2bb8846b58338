"""Which members pay in the worst case's cascade: the default worst case against variants of
it on the same images of one blind-spot setting, through the project's cache (the full
members C&W and PGD-100 are computed once and shared by every variant).

Variants: ``default`` (the worst case as ``blindspot --attack worst`` runs it), ``dlr`` and
``ce-restart`` (the default cascade, then APGD-DLR, or a second APGD-CE from another random
start, before Square), ``targets9`` (APGD-T over 9 target classes, AutoAttack's standard
version) and ``square<Q>`` (Square with Q queries last; ``square0``: the gradient members
only).  Per variant: successes at α·ε and ε over the
attacked images, gradient and forward-only evaluations per attacked image, the compute time
of the chunks behind the result (cached or not) and the network's raw forward+backward rate
measured in the same run.

    python bench/cascade_check.py --checkpoint ../shared/checkpoints/mnist_adv \\
        --data-dir ../shared/data --variants default,square0,dlr,ce-restart
"""
import argparse
import os
import sys
from dataclasses import replace

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bsattack import data, environment, experiment  # noqa: E402
from bsattack.attacks.apgd import APGDSettings  # noqa: E402
from bsattack.attacks.apgd_targeted import APGDTSettings  # noqa: E402
from bsattack.attacks.worst import WorstSettings  # noqa: E402
from bsattack.datasets import get_spec  # noqa: E402
from bsattack.errors import BsattackError  # noqa: E402
from bsattack.manifest import resolve_checkpoint  # noqa: E402
from bsattack.paths import CACHE_DIR  # noqa: E402
from bsattack.shifts import BlindSpot  # noqa: E402


def variant(name):
    """The worst case's settings called ``name`` (see the module docstring)."""
    default = WorstSettings()
    if name == "default":
        return default
    if name == "dlr":
        return replace(default, cascade=default.cascade + (APGDSettings(loss="dlr"),))
    if name == "ce-restart":
        return replace(default, cascade=default.cascade + (APGDSettings(seed=1),))
    if name == "targets9":
        return replace(default, cascade=(default.cascade[0], APGDTSettings(targets=9)))
    if name.startswith("square") and name[len("square"):].isdigit():
        return replace(default, square_queries=int(name[len("square"):]))
    raise BsattackError(f"unknown variant '{name}' (known: default, dlr, ce-restart, "
                        "targets9, square<Q>)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--alpha", type=float, default=0.9)
    parser.add_argument("--beta", type=float, default=0.0)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cache-dir", default=CACHE_DIR)
    parser.add_argument("--variants", default="default,square0,dlr,ce-restart")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    settings = [(name, variant(name)) for name in args.variants.split(",")]
    spec = get_spec(args.dataset)
    checkpoint = resolve_checkpoint(spec, args.checkpoint)
    split = data.load(spec, args.data_dir)
    transform = BlindSpot(args.alpha, args.beta)
    rate = environment.raw_rate(spec, checkpoint, split)
    print(f"{spec.name} α={args.alpha:g} β={args.beta:g}, first {args.n} test images; raw "
          f"forward+backward {rate:,.0f} image-gradients/s (fp32, batch 500)")
    print("| variant | @α·ε | @ε | attacked | gradient evals/img | forward evals/img | "
          "compute s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, s in settings:
        result = experiment.run_blindspot(spec, checkpoint, transform, s, args.n, split=split,
                                          cache_dir=args.cache_dir, echo=lambda *_: None)
        attacked = result.correct
        count = max(int(attacked.sum()), 1)
        print(f"| {name} | {int(result.success_alpha_eps[attacked].sum())} | "
              f"{int(result.success_eps[attacked].sum())} | {int(attacked.sum())} | "
              f"{result.grad_evals[attacked].sum() / count:.1f} | "
              f"{result.forward_evals[attacked].sum() / count:.1f} | "
              f"{_seconds(result.compute_seconds)} |", flush=True)


def _seconds(value):
    return f"{value:,.0f}" if np.isfinite(value) else "— (cached before times were kept)"


if __name__ == "__main__":
    try:
        main()
    except BsattackError as error:
        sys.exit(f"Error: {error}")
