"""Attack speed and strength, side by side in one run, on the same images:

(a) the box C&W L∞ (batched, the default) against li_attack.py's algorithm run one image at a
    time (the reference variant at batch 1, one session.run per step): success at ε and α·ε,
    gradient evaluations and wall time per image, and the ratios;
(b) ART's CarliniLInfMethod (adversarial-robustness-toolbox, optional: pip install .[bench])
    on the network through bench/art_estimator.py, against the box C&W on the same first
    images: success, gradient evaluations and wall time per image, and the ratios;
(c) APGD against PGD at equal gradient evaluations (N iterations each) on more images;
(d) the network's raw forward+backward rate at batch 1 and at the batch size, before and
    after, so a reader can judge the host's drift.

    python bench/attacks.py --dataset fashion --checkpoint ../shared/checkpoints/fashion_adv \\
        --data-dir ../shared/data --per-image 20 --alpha 1
"""
import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bsattack import data  # noqa: E402
from bsattack.attacks import registry  # noqa: E402
from bsattack.attacks.apgd import APGDSettings  # noqa: E402
from bsattack.attacks.base import AttackResult  # noqa: E402
from bsattack.attacks.cw import CWSettings  # noqa: E402
from bsattack.attacks.pgd import PGDSettings  # noqa: E402
from bsattack.datasets import get_spec  # noqa: E402
from bsattack.shifts import BlindSpot  # noqa: E402
from bsattack.transforms import to_pm  # noqa: E402


def timed(attack, x, y, thresholds, ids, batch_size=None):
    """(AttackResult, seconds); ``batch_size`` 1 runs the images one at a time."""
    began = time.perf_counter()
    if batch_size == 1:
        parts = [attack.run(x[i:i + 1], y[i:i + 1], thresholds, ids[i:i + 1])
                 for i in range(len(x))]
        result = parts[0]
        for i, part in enumerate(parts[1:], 1):
            result.adversarial = np.concatenate([result.adversarial, part.adversarial])
            result.linf = np.concatenate([result.linf, part.linf])
            result.grad_evals = np.concatenate([result.grad_evals, part.grad_evals])
            result.found_by = np.concatenate([result.found_by, part.found_by])
    else:
        result = attack.run(x, y, thresholds, ids)
    return result, time.perf_counter() - began


def line(name, result, seconds, thresholds):
    rates = ", ".join(f"@{t:g} {100 * result.success(t).mean():5.1f}%" for t in thresholds)
    print(f"  {name:34s} {rates}; {result.grad_evals.mean():8.0f} evals/img, "
          f"{seconds / len(result.linf):7.3f} s/img, {result.grad_evals.sum() / seconds:6.0f} "
          f"evals/s", flush=True)


def art_line(model, args, x, y, thresholds, ids, box, box_s, few):
    """(b): ART's CarliniLInfMethod (untargeted, its defaults but ``max_iter``) through
    :class:`art_estimator.ModelClassifier` against the box C&W on the first ``--art-images``.
    ART minimises L∞ (its τ schedule, no ε): success is misclassified by the model's own
    predict and within the threshold.  ART is given one image per ``generate`` (as it loops
    over them itself) so its evaluations are counted per image."""
    try:
        with warnings.catch_warnings():      # ART's certification modules look for PyTorch
            warnings.filterwarnings("ignore", "PyTorch not found")
            from art.attacks.evasion import CarliniLInfMethod
        from art_estimator import ModelClassifier
    except ImportError as exc:
        print(f"(b) skipped: ART is not installed ({exc}); pip install .[bench]")
        return
    from bsattack.attacks.model import SHIFT
    chosen = ids[:len(few) if args.art_images is None else args.art_images]
    if not np.array_equal(chosen, few):
        box, box_s = timed(registry.build(model, CWSettings()), x[chosen], y[chosen],
                           thresholds, chosen)
    print(f"(b) ART CarliniLInfMethod against the box C&W on the first {len(chosen)} attacked "
          f"images")
    line("box, batched (default)", box, box_s, thresholds)
    classifier = ModelClassifier(model)
    for max_iter in args.art_iterations:
        attack = CarliniLInfMethod(classifier, max_iter=max_iter, verbose=False)
        art = AttackResult.empty(x[chosen], thresholds, "art")
        predicted = 0
        began = time.perf_counter()
        for i, row in enumerate(chosen):
            classifier.grad_evals = classifier.predict_evals = 0
            art.adversarial[i] = attack.generate(x[row:row + 1] + SHIFT, y[row:row + 1])[0] - SHIFT
            art.grad_evals[i] = classifier.grad_evals
            predicted += classifier.predict_evals
        art_s = time.perf_counter() - began
        fooled = model.predict(art.adversarial) != y[chosen]
        art.linf = np.where(fooled, np.abs(art.adversarial - x[chosen]).max(axis=1), np.inf)
        line(f"ART max_iter {max_iter}", art, art_s, thresholds)
        print(f"    misclassified at any L∞: {100 * art.found.mean():.1f}%; "
              f"+ {predicted / len(chosen):.0f} forward-only predictions/img; ART/box: "
              f"{art.grad_evals.sum() / box.grad_evals.sum():.1f}x the evaluations, "
              f"{art_s / box_s:.1f}x the wall time per image", flush=True)


def reference_line(model, args, box, box_s, x, y, thresholds, few, some):
    """(a)'s second half: li_attack.py one image at a time on ``some`` of the ``few``."""
    ref_settings = CWSettings(variant="reference", max_iterations=args.reference_iterations,
                              batch_size=1)
    ref, ref_s = timed(registry.build(model, ref_settings), x[some], y[some], thresholds, some,
                       batch_size=1)
    line(f"li_attack.py per image ({args.reference_iterations} steps, first {len(some)})", ref,
         ref_s, thresholds)
    mine = np.isin(few, some)
    same = all(box.success(t)[mine].sum() >= ref.success(t).sum() for t in thresholds)
    print(f"    box vs reference on those {len(some)}: "
          f"{ref.grad_evals.sum() / box.grad_evals[mine].sum():.1f}x fewer evaluations, "
          f"{ref_s / len(some) / (box_s / len(few)):.1f}x less wall time per image; success "
          f"{'at least the reference' if same else 'BELOW the reference'} at every threshold")


def main():
    from bsattack.startup import start_tensorflow
    start_tensorflow()
    from bsattack.attacks.model import Model
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--beta", type=float, default=0.0)
    parser.add_argument("--per-image", type=int, default=20,
                        help="images for (a), the first attacked ones")
    parser.add_argument("--reference-images", type=int, default=None,
                        help="images of (a) the per-image reference runs on (default: all "
                             "--per-image; it costs ~40,000 evaluations per image at batch 1)")
    parser.add_argument("--reference-iterations", type=int, default=1000,
                        help="Adam steps per constant of the per-image reference")
    parser.add_argument("--art-images", type=int, default=None,
                        help="images for (b), the first attacked ones (default: --per-image)")
    parser.add_argument("--art-iterations", type=int, nargs="+", default=[10],
                        help="max_iter of ART's CarliniLInfMethod, one run per value (its "
                             "default: 10)")
    parser.add_argument("--pgd-images", type=int, default=500, help="images for (c)")
    parser.add_argument("--skip-art", action="store_true")
    args = parser.parse_args()

    spec = get_spec(args.dataset)
    transform = BlindSpot(args.alpha, args.beta)
    thresholds = transform.thresholds(spec.eps)
    split = data.load(spec, args.data_dir, download=False)
    model = Model(spec, args.checkpoint)
    n = 4 * max(args.per_image, args.pgd_images)
    x = transform(to_pm(split.test_x[:n]).reshape(n, -1))
    y = split.test_y[:n]
    ids = np.flatnonzero(model.predict(x) == y)
    print(f"{spec.name} α={args.alpha:g} β={args.beta:g}, {args.checkpoint}")
    raw = [model.gradient_rate(x[ids[:1]], y[ids[:1]]),
           model.gradient_rate(x[ids[:500]], y[ids[:500]])]
    print(f"(d) raw forward+backward: {raw[0]:.0f}/s at batch 1, {raw[1]:.0f}/s at batch "
          f"{min(500, len(ids))}")

    few = ids[:args.per_image]
    print(f"(a) C&W L∞ on the first {len(few)} attacked images")
    box, box_s = timed(registry.build(model, CWSettings()), x[few], y[few], thresholds, few)
    line("box, batched (default)", box, box_s, thresholds)
    some = few[:len(few) if args.reference_images is None else args.reference_images]
    if len(some):
        reference_line(model, args, box, box_s, x, y, thresholds, few, some)
    if not args.skip_art:
        art_line(model, args, x, y, thresholds, ids, box, box_s, few)
    many = ids[:args.pgd_images]
    print(f"(c) APGD vs PGD at equal iterations on {len(many)} attacked images, ε only")
    for steps in (20, 50, 100):
        pgd, pgd_s = timed(registry.build(model, PGDSettings(steps=steps)), x[many], y[many],
                           thresholds[-1:], many)
        apgd, apgd_s = timed(registry.build(model, APGDSettings(iterations=steps)), x[many],
                             y[many], thresholds[-1:], many)
        line(f"PGD-{steps}", pgd, pgd_s, thresholds[-1:])
        line(f"APGD-CE-{steps}", apgd, apgd_s, thresholds[-1:])
    after = [model.gradient_rate(x[ids[:1]], y[ids[:1]]),
             model.gradient_rate(x[ids[:500]], y[ids[:500]])]
    print(f"(d) raw forward+backward after: {after[0]:.0f}/s at batch 1, {after[1]:.0f}/s")
    model.close()


if __name__ == "__main__":
    main()
