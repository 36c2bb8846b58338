"""Benchmark of the attacks on one checkpoint and the same test images, all in one run.

(a) batched C&W L∞ (threshold mode) vs the algorithm run one image at a time with one
    session.run per iteration (the reference code's way; rates measured on a subset, each
    in a fresh process): the reference algorithm (li_attack.py's full τ schedule, which
    cannot stop at ε) and, to separate batching from early decisions, the threshold mode
    itself; success of each on that subset;
(b) image-gradient steps per second of PGD (in-graph tf.while_loop), of PGD driven from
    Python (Madry's numpy loop: one session.run per step), and of the C&W step at full batch,
    against the network's raw forward+backward throughput at the same batch size (the bound
    of any gradient attack);
(c) gradient evaluations per image to decide success at ε: threshold mode (stops once
    decided, τ steps land on the thresholds) vs the full τ schedule (minimal mode), with the
    success of both on the same images.

    python bench/attacks.py --dataset fashion --checkpoint DIR --data-dir DIR \\
        [--n 2000 --per-image 40 --max-iterations 20 --batch-size 500 --schedule-n 100
         --alpha 1 --beta 0]
"""
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import click
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bsattack import data  # noqa: E402
from bsattack.attacks.cw_linf import CarliniLinf, CWSettings  # noqa: E402
from bsattack.attacks.pgd import LinfPGD, PGDSettings  # noqa: E402
from bsattack.datasets import get_spec  # noqa: E402
from bsattack.options import resolve_checkpoint  # noqa: E402
from bsattack.transforms import blindspot, to_pm  # noqa: E402


def timed(func):
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def python_driven_pgd(net, x01, labels, eps, step, steps):
    """Madry's pgd_attack.perturb loop: one session.run of the input gradient per step."""
    rng = np.random.default_rng(0)
    x = np.clip(x01 + rng.uniform(-eps, eps, x01.shape).astype(np.float32), 0, 1)
    for _ in range(steps):
        grad = net.sess.run(net.raw_gradient, {net.x01: x, net.y: labels})
        x = np.clip(np.clip(x + step * np.sign(grad), x01 - eps, x01 + eps), 0, 1)
    return x


def cw_run(dataset, checkpoint, settings, x_pm, labels, limits):
    attack = CarliniLinf(dataset, checkpoint, settings)
    seconds, result = timed(lambda: attack.attack(x_pm, labels, limits))
    attack.close()
    return seconds, result


def cw_run_fresh(*args):
    """cw_run in a new process, so the per-image rate cannot depend on what this one ran
    before (a slow per-image run after the batched one, 319 vs 470-520 evaluations/s, turned
    out to be the host's drift: the raw rates printed before and after (a) show it)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(cw_run, *args).result()


@click.command()
@click.option("--dataset", type=click.Choice(["mnist", "fashion"]), default="fashion")
@click.option("--checkpoint", default=None, help="default: the data set's adversarial model")
@click.option("--data-dir", default=None)
@click.option("--n", type=click.IntRange(min=1), default=2000, help="images for batched C&W")
@click.option("--per-image", type=click.IntRange(min=1), default=40,
              help="images for the per-image C&W rate")
@click.option("--schedule-n", type=click.IntRange(min=1), default=100,
              help="images for (c) (minimal mode is slow)")
@click.option("--max-iterations", type=click.IntRange(min=1), default=20)
@click.option("--batch-size", type=click.IntRange(min=1), default=500)
@click.option("--alpha", type=float, default=1.0, help="x' = αx + β for the attacked images")
@click.option("--beta", type=float, default=0.0)
@click.option("--validation-size", type=int, default=5000)
@click.option("--repeats", type=click.IntRange(min=1), default=3, help="rounds of (b)")
@click.option("--throughput-only", is_flag=True, help="only (b)")
def main(dataset, checkpoint, data_dir, n, per_image, schedule_n, max_iterations, batch_size,
         alpha, beta, validation_size, repeats, throughput_only):
    spec = get_spec(dataset)
    checkpoint = resolve_checkpoint(dataset, checkpoint)
    split = data.load(dataset, data_dir, validation_size)
    eps = spec.eps
    limits = [eps] if alpha == 1 else [alpha * eps, eps]
    settings = CWSettings(max_iterations=max_iterations, batch_size=batch_size)
    pgd = LinfPGD(dataset, checkpoint, PGDSettings(steps=20, step_size=0.01,
                                                   batch_size=batch_size))
    x_pm = blindspot(to_pm(split.test_x[:n]), alpha, beta)
    labels = split.test_y[:n]
    correct = pgd.net.predict(x_pm + 0.5) == labels
    x_pm, labels = x_pm[correct], labels[correct]
    print(f"{dataset}, {checkpoint}, ε={eps:g}, α={alpha:g}, β={beta:g}: {len(labels)} correctly "
          f"classified of the first {n} test images; C&W ≤{max_iterations} iterations per "
          f"constant, batch {batch_size}")

    # (b) throughput at the same batch size: interleaved rounds, best of each (load noise)
    batch = slice(0, min(batch_size, len(labels)))
    xb, yb = x_pm[batch] + 0.5, labels[batch]
    cw = CarliniLinf(dataset, checkpoint, settings)
    rates = {"raw": [], "raw1": [], "graph": [], "python": [], "cw": []}
    for _ in range(repeats):
        rates["raw"].append(pgd.net.gradient_rate(xb, yb, repeats=2))
        rates["raw1"].append(pgd.net.gradient_rate(xb[:1], yb[:1], repeats=300))
        rates["graph"].append(20 * len(yb) / timed(lambda: pgd.attack(xb, yb, eps))[0])
        rates["python"].append(20 * len(yb) / timed(
            lambda: python_driven_pgd(pgd.net, xb, yb, eps, 0.01, 20))[0])
        rates["cw"].append(cw.step_rate(x_pm[batch], labels[batch], steps=5))
    cw.close()
    raw, raw1, pgd_rate, python_rate, cw_rate = (max(rates[k]) for k in
                                                  ("raw", "raw1", "graph", "python", "cw"))
    print(f"(b) batch {len(yb)}, best of {repeats} interleaved rounds: raw forward+backward "
          f"{raw:,.0f} image-gradients/s; PGD-20 tf.while_loop {pgd_rate:,.0f}/s "
          f"({pgd_rate / raw:.0%} of raw); PGD-20 driven from Python {python_rate:,.0f}/s "
          f"({python_rate / raw:.0%}); C&W step {cw_rate:,.0f}/s ({cw_rate / raw:.0%})\n"
          f"    raw at batch 1, one session.run per image: {raw1:,.0f}/s, so batching alone is "
          f"worth at most {raw / raw1:.1f}x here")
    if throughput_only:
        pgd.close()
        return

    # (a) batched threshold mode vs one image at a time, success on the shared subset
    t_batched, batched = cw_run(dataset, checkpoint, settings, x_pm, labels, limits)
    rate_batched = len(labels) / t_batched
    print(f"(a) batched C&W, threshold mode: {len(labels)} images in {t_batched:,.0f} s = "
          f"{rate_batched:.2f} images/s, {batched.grad_evals.mean():,.0f} gradient evaluations "
          f"per image ({batched.grad_evals.sum() / t_batched:,.0f}/s); success "
          + ", ".join(f"at {t:g} {batched.success(t).mean():.2%}" for t in limits))
    sub = slice(0, min(per_image, len(labels)))
    per_image_runs = {"reference algorithm (full τ schedule)": "minimal",
                      "threshold mode": "threshold"}
    for name, mode in per_image_runs.items():
        single = CWSettings(max_iterations=max_iterations, batch_size=1, mode=mode)
        t_single, alone = cw_run_fresh(dataset, checkpoint, single, x_pm[sub], labels[sub],
                                       limits)
        rate_single = sub.stop / t_single
        evals_ratio = alone.grad_evals.mean() / batched.grad_evals.mean()
        print(f"    per image (fresh process), {name}: {sub.stop} images in {t_single:,.0f} s = "
              f"{rate_single:.3f} images/s, {alone.grad_evals.mean():,.0f} gradient evaluations "
              f"per image ({alone.grad_evals.sum() / t_single:,.0f}/s); batched is "
              f"{rate_batched / rate_single:.1f}x faster = {evals_ratio:.2f}x fewer evaluations "
              f"per image x {rate_batched / rate_single / evals_ratio:.1f}x more per second")
        for limit in limits:
            print(f"        success at {limit:g} on these {sub.stop}: per image "
                  f"{alone.success(limit).mean():.2%}, batched {batched.success(limit)[sub].mean():.2%}")

    # the host's speed can drift during a long run, and it hurts batch 1 most: measure again
    after = pgd.net.gradient_rate(xb[:1], yb[:1], repeats=300), pgd.net.gradient_rate(xb, yb, 2)
    pgd.close()
    print(f"    raw rates after (a): batch 1 {after[0]:,.0f}/s (before: {raw1:,.0f}), batch "
          f"{len(yb)} {after[1]:,.0f}/s (before: {raw:,.0f})")

    # (c) evaluations to decide success at ε
    sub = slice(0, min(schedule_n, len(labels)))
    variants = {"threshold mode": settings,
                "full τ schedule (minimal mode)":
                    CWSettings(max_iterations=max_iterations, batch_size=batch_size,
                               mode="minimal")}
    print(f"(c) on the first {sub.stop} attacked images:")
    for name, variant in variants.items():
        seconds, result = ((t_batched, batched) if variant is settings else
                           cw_run(dataset, checkpoint, variant, x_pm[sub], labels[sub], limits))
        evals = result.grad_evals[sub]
        print(f"    {name}: {evals.mean():,.0f} gradient evaluations per image "
              f"(median {np.median(evals):,.0f}); success "
              + ", ".join(f"at {t:g} {result.success(t)[sub].mean():.2%}" for t in limits))


if __name__ == "__main__":
    main()
