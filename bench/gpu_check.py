"""Does TensorFlow use the GPU here, and do the attacks run at its speed?  One command:

    python bench/gpu_check.py [--dataset mnist] [--checkpoint NAME|DIR] [--data-dir DIR]
        [--batch-size 500] [--pgd-steps 20] [--rounds 3] [--verbose]

Prints TensorFlow's version and CUDA build, the GPUs it sees, the devices that ran the
network's forward+backward pass (read off a traced session.run), that pass's rate in
image-gradients per second on the first --batch-size test images (the bound of any gradient
attack), and PGD's gradient evaluations per second on the same images as a share of it.
--verbose shows TensorFlow's device log (why a GPU was not used).
"""
import os
import sys
import time

import click

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bsattack.datasets import DATASETS  # noqa: E402
from bsattack.display import display_path  # noqa: E402
from bsattack.errors import BsattackError  # noqa: E402
from bsattack.startup import start_tensorflow  # noqa: E402


def devices_used(tf, net, x01, labels):
    """{device name: nodes it ran} in one traced run of the network's raw gradient."""
    tf1 = tf.compat.v1
    options = tf1.RunOptions(trace_level=tf1.RunOptions.FULL_TRACE)
    metadata = tf1.RunMetadata()
    net.sess.run(net.raw_gradient, {net.x01: x01, net.y: labels}, options=options,
                 run_metadata=metadata)
    return {dev.device: len(dev.node_stats) for dev in metadata.step_stats.dev_stats}


def pgd_rate(attack, x, labels, eps):
    """PGD's gradient evaluations per second on ``x`` (attack units)."""
    start = time.perf_counter()
    result = attack.run(x, labels, [eps])
    return result.grad_evals.sum() / (time.perf_counter() - start)


@click.command()
@click.option("--dataset", type=click.Choice(sorted(DATASETS)), default="mnist",
              show_default=True)
@click.option("--checkpoint", default=None,
              help="Checkpoint folder or name [default: the data set's].")
@click.option("--data-dir", default=None, help="Folder holding the data set's files.")
@click.option("--batch-size", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--pgd-steps", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Interleaved raw/PGD measurements; the best of each is printed.")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's device log.")
def main(dataset, checkpoint, data_dir, batch_size, pgd_steps, rounds, verbose):
    try:
        check(dataset, checkpoint, data_dir, batch_size, pgd_steps, rounds, verbose)
    except BsattackError as exc:
        raise click.ClickException(str(exc)) from None


def check(dataset, checkpoint, data_dir, batch_size, pgd_steps, rounds, verbose):
    tf = start_tensorflow(verbose)
    from bsattack import data
    from bsattack.attacks.model import Model
    from bsattack.attacks.pgd import LinfPGD, PGDSettings
    from bsattack.datasets import get_spec
    from bsattack.manifest import resolve_checkpoint
    from bsattack.transforms import to_pm

    gpus = tf.config.list_physical_devices("GPU")
    print(f"TensorFlow {tf.__version__}, built with CUDA: {tf.test.is_built_with_cuda()}; "
          f"GPUs it sees: {', '.join(g.name for g in gpus) or 'none'}")
    spec = get_spec(dataset)
    checkpoint = resolve_checkpoint(spec, checkpoint)
    split = data.load(spec, data_dir, echo=lambda message: print(message, file=sys.stderr))
    x01 = split.test_x[:batch_size].reshape(-1, spec.dim)
    labels = split.test_y[:batch_size]

    model = Model(spec, checkpoint)
    x = to_pm(x01)                                       # the attacks' units
    attack = LinfPGD(model, PGDSettings(steps=pgd_steps, batch_size=batch_size))
    used = devices_used(tf, model.net, x01, labels)
    pgd_rate(attack, x, labels, spec.eps)                # warm-up
    raws, rates = [], []
    for _ in range(rounds):      # interleaved, best of each: the host's load drifts
        raws.append(model.gradient_rate(x, labels))
        rates.append(pgd_rate(attack, x, labels, spec.eps))
    raw, rate = max(raws), max(rates)
    model.close()
    print("ran on: " + "; ".join(f"{name} ({nodes} nodes)" for name, nodes in used.items()))
    print(f"{spec.name}, {display_path(checkpoint)}, batch {len(labels)}, best of {rounds}: "
          f"raw forward+backward "
          f"{raw:,.0f} image-gradients/s; PGD-{pgd_steps} {rate:,.0f} gradient evaluations/s "
          f"({rate / raw:.0%} of raw)")
    if gpus and not any("GPU" in name for name in used):
        print("TensorFlow sees a GPU but ran nothing on it: rerun with --verbose")
    elif not gpus:
        print("no GPU in use: see README.md 'Running on a GPU' (--verbose shows why)")


if __name__ == "__main__":
    main()
