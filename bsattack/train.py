"""Madry adversarial training (``mnist_challenge/train.py`` with its ``config.json``).

Recipe: Adam (learning rate 1e-4) minimising the cross-entropy SUMMED over a batch of 50
adversarial examples only; the adversary is L∞ PGD (:func:`bsattack.attacks.pgd_graph.pgd_graph`)
with ε, k=40 steps of a=0.01 and a uniform random start; 100,000 steps on the 55,000 training
images after the first 5,000.  ε=0 trains naturally (the clean batch, no PGD).  The paper's
Fashion-MNIST model is this recipe with ε=0.1.

Checkpoints use the official layout so every command (and Madry's own code) loads them: a
``checkpoint`` index with relative paths and ``checkpoint-STEP.{index,data,meta}`` holding the
model under its official names at the graph root, ``global_step``, and the Adam slots
(``Variable/Adam``, ``Variable/Adam_1``, ..., ``beta1_power``, ``beta2_power``).  The newest three
are kept (the reference ``Saver(max_to_keep=3)``).

Resuming (``resume=True``) restores everything, optimizer state included, and continues at the
stored global step.  The batch sequence is a function of (seed, step) — an epoch-wise
permutation, like TF1 ``next_batch`` — so a resumed run sees the same batches as an
uninterrupted one; only the PGD random starts differ.  ``init_from`` copies the weights and
global step of another checkpoint (no optimizer state) to continue training it.

A JSON log (``train_log.json`` in the output folder, strict JSON written atomically) records
the settings, every start or resumption, and the natural / adversarial batch accuracy and loss
between checkpoints.  Non-finite settings are refused, the output folder is checked before
any work, and a loss that becomes NaN or inf stops training with an error, leaving the last
checkpoint as the newest.
"""
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field, fields

import numpy as np
import tensorflow as tf

from bsattack import augment as augmentation
from bsattack import data, models, outputs
from bsattack.attacks.network import shared_logits_fn
from bsattack.attacks.pgd_graph import pgd_graph
from bsattack.datasets import DATASETS, MNIST, DatasetSpec
from bsattack.errors import BsattackError
from bsattack.limits import SEED_MAX
from bsattack.progress import silent
from madry_models import checkpoint as ckpt
from madry_models.mnist import OFFICIAL_WIDTHS, widths_from_shapes

tf1 = tf.compat.v1
LOG_NAME = "train_log.json"
MAX_TO_KEEP = 3                          # Saver(max_to_keep=3) in the reference train.py
TRAINABLE_DATASETS = tuple(name for name, spec in DATASETS.items() if spec.trainable)


@dataclass
class TrainSettings:
    """The reference config.json values (random_seed 4557077 there; ours defaults to 0);
    ``dataset`` is the data set's spec (its name in the log)."""
    dataset: DatasetSpec = MNIST
    eps: float = 0.3                     # in [0, 1] pixel units; 0 = natural training
    steps: int = 100000                  # max_num_training_steps: the final global step
    k: int = 40
    a: float = 0.01
    batch_size: int = 50
    learning_rate: float = 1e-4
    seed: int = 0
    save_every: int = 300                # num_checkpoint_steps
    validation_size: int = data.MADRY_VALIDATION_SIZE
    widths: tuple = field(default=OFFICIAL_WIDTHS)
    augment: str = ""                    # batch augmentation spec (bsattack.augment); '' = none

    def identity(self):
        """The settings a resumed run must share with the one it continues."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for free in ("steps", "save_every"):
            values.pop(free)
        values["dataset"] = self.dataset.name
        values["widths"] = list(self.widths)
        if not self.augment:             # logs written before the hook stay resumable
            values.pop("augment")
        return values


class BatchSchedule:
    """Training batch of each step: epoch ``e`` visits the images in the order of
    ``RandomState(seed + e).permutation`` (a batch may straddle two epochs, as in TF1's
    ``next_batch``).  A function of (seed, step) only, which is what makes resuming exact."""

    def __init__(self, n, batch_size, seed):
        if batch_size > n:
            raise BsattackError(f"batch size {batch_size} exceeds the {n} training images")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self._perms = {}

    def _perm(self, epoch):
        if epoch not in self._perms:
            self._perms = {e: p for e, p in self._perms.items() if e == epoch - 1}
            seed = (self.seed + epoch) % (SEED_MAX + 1)   # numpy's range, for any seed
            self._perms[epoch] = np.random.RandomState(seed).permutation(self.n)
        return self._perms[epoch]

    def indices(self, step):
        positions = np.arange(step * self.batch_size, (step + 1) * self.batch_size)
        epochs, offsets = positions // self.n, positions % self.n
        return np.array([self._perm(int(e))[o] for e, o in zip(epochs, offsets)])


@dataclass
class TrainGraph:
    graph: tf.Graph
    model: object
    labels: tf.Tensor
    global_step: tf.Variable
    train_op: tf.Operation
    xent: tf.Tensor
    nat_correct: tf.Tensor
    adv_correct: tf.Tensor
    saver: object


def build_graph(settings):
    """Model at the graph root (official names), PGD adversary, Adam step, saver."""
    graph = tf1.Graph()
    with graph.as_default():
        tf1.set_random_seed(settings.seed)
        global_step = tf1.train.get_or_create_global_step()   # created first, as in train.py
        model = settings.dataset.build(widths=tuple(settings.widths))
        labels = tf1.placeholder(tf.int64, [None], name="y_input")
        if settings.eps > 0:
            logits_fn = shared_logits_fn(settings.dataset, model)
            x_train = pgd_graph(logits_fn, model.x01, labels, settings.eps, settings.a,
                                settings.k, loss="xent", random_start=True)
            logits = logits_fn(x_train)
        else:
            logits = model.logits
        xent = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                                            logits=logits))
        train_op = tf1.train.AdamOptimizer(settings.learning_rate).minimize(
            xent, global_step=global_step)
        nat_correct = tf.reduce_sum(tf.cast(tf.equal(model.predictions, labels), tf.int64))
        adv_correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1), labels), tf.int64))
        saver = tf1.train.Saver(max_to_keep=MAX_TO_KEEP, save_relative_paths=True)
    return TrainGraph(graph, model, labels, global_step, train_op, xent, nat_correct,
                      adv_correct, saver)


def _read_log(out):
    path = os.path.join(out, LOG_NAME)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise BsattackError(f"{path}: unreadable training log ({exc})") from None


def _write_log(out, log):
    """Atomically, as strict JSON (a non-finite number would be written as null)."""
    outputs.save_json(os.path.join(out, LOG_NAME), log)


def _existing_checkpoint(out):
    """The checkpoint ``out`` holds, None when it holds none; a damaged one (an index naming a
    missing step) is refused rather than trained over."""
    if not os.path.isdir(out) or not any(f == "checkpoint" or f.endswith(".index")
                                         for f in os.listdir(out)):
        return None
    return ckpt.resolve_prefix(out)


def _check_settings(settings):
    for name in ("eps", "a", "learning_rate"):
        value = getattr(settings, name)
        if not math.isfinite(value):
            raise BsattackError(f"{name} must be a finite number (got {value})")
    if not 0 <= settings.seed <= SEED_MAX:
        raise BsattackError(f"seed must be in 0..{SEED_MAX} (got {settings.seed})")


def _start_state(settings, out, resume, init_from, echo):
    """(log, prefix to restore fully or None, checkpoint to take weights from or None)."""
    found = _existing_checkpoint(out)
    log = _read_log(out)
    if found and not resume:
        raise BsattackError(f"{out} already holds {os.path.basename(found)}; pass --resume to "
                            f"continue it or choose another --out")
    if resume and init_from:
        raise BsattackError("--resume and --init-from exclude each other")
    if found:
        if log and log["settings"] != settings.identity():
            changed = sorted(k for k, v in settings.identity().items()
                             if log["settings"].get(k) != v)
            raise BsattackError(f"{out} was trained with other settings ({', '.join(changed)}); "
                                f"resume with the same ones or choose another --out")
        return log or {"settings": settings.identity(), "runs": [], "history": []}, found, None
    if resume:
        echo(f"{out}: no checkpoint to resume; starting from scratch")
    return {"settings": settings.identity(), "runs": [], "history": []}, None, init_from


def train(settings, out, data_dir=None, resume=False, init_from=None, echo=print,
          progress=silent):
    """Run (or resume) Madry training until global step ``settings.steps``; returns the log.
    ``progress`` follows :mod:`bsattack.progress`."""
    if settings.dataset.name not in TRAINABLE_DATASETS:
        raise BsattackError(f"training is implemented for {', '.join(TRAINABLE_DATASETS)} "
                            f"(the MNIST-challenge recipe), not {settings.dataset.name}")
    _check_settings(settings)
    augmentation.parse(settings.augment)
    outputs.check_writable_dir(out, what=f"the training folder {out}")
    log, restore_prefix, init_from = _start_state(settings, out, resume, init_from, echo)
    if init_from:
        stored = ckpt.variable_shapes(init_from)
        if "Variable" in stored and tuple(widths_from_shapes(stored)) != tuple(settings.widths):
            raise BsattackError(f"{init_from} has widths {widths_from_shapes(stored)}, the "
                                f"training network {tuple(settings.widths)}")
    split = data.load(settings.dataset, data_dir, settings.validation_size, echo=echo)
    schedule = BatchSchedule(len(split.train_x), settings.batch_size, settings.seed)
    net = build_graph(settings)
    os.makedirs(out, exist_ok=True)
    with net.graph.as_default(), models.new_session(net.graph) as sess:
        sess.run(tf1.global_variables_initializer())
        if restore_prefix:
            _restore_all(sess, net.saver, restore_prefix)
            source = {"resumed_from": os.path.basename(restore_prefix)}
        elif init_from:
            prefix = ckpt.restore(sess, init_from, net.model.variables)
            if "global_step" in ckpt.variable_shapes(prefix):
                step0 = ckpt.read_variables(prefix, ["global_step"])["global_step"]
                sess.run(net.global_step.assign(int(step0)))
            source = {"init_from": os.path.abspath(prefix)}
        else:
            source = {"from_scratch": True}
        step = int(sess.run(net.global_step))
        log["runs"].append({**source, "start_step": step, "target_steps": settings.steps,
                            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        if step >= settings.steps:
            echo(f"{out}: already at step {step} (target {settings.steps}); nothing to do")
            _write_log(out, log)
            return log
        echo(f"training {settings.dataset.name} (eps={settings.eps}, k={settings.k}, "
             f"a={settings.a}, batch {settings.batch_size}) from step {step} to "
             f"{settings.steps} into {out}")
        _loop(sess, net, split, schedule, settings, out, log, step, echo, progress)
    return log


def _restore_all(sess, saver, prefix):
    try:
        saver.restore(sess, prefix)
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as exc:
        raise BsattackError(f"cannot resume from {prefix}: it lacks part of the training state "
                            f"({ckpt.cause(exc)}); use --init-from to start from its "
                            f"weights") from None
    except tf.errors.OpError as exc:
        raise BsattackError(f"cannot resume from {prefix}: {ckpt.cause(exc)}") from None


def _new_window():
    return {"nat": 0, "adv": 0, "n": 0, "batches": 0, "xent": 0.0, "start": time.time()}


def _loop(sess, net, split, schedule, settings, out, log, step, echo, progress):
    window = _new_window()
    status = {"text": ""}
    interactive = sys.stdout.isatty()
    augment = augmentation.make(settings.augment, settings.seed)
    with progress(settings.steps - step, "train", lambda: status["text"]) as bar:
        while step < settings.steps:
            idx = schedule.indices(step)
            _, xent, nat, adv = sess.run(
                [net.train_op, net.xent, net.nat_correct, net.adv_correct],
                {net.model.x01: augment(split.train_x[idx], step),
                 net.labels: split.train_y[idx]})
            step += 1                    # train_op increments global_step once per run
            if not np.isfinite(xent):
                saved = log["history"][-1]["checkpoint"] if log["history"] else "none"
                raise BsattackError(f"training diverged at step {step}: the loss is {xent}; "
                                    f"nothing after the last checkpoint ({saved}) was saved; "
                                    f"try a smaller --lr")
            window["nat"] += int(nat)
            window["adv"] += int(adv)
            window["n"] += len(idx)
            window["batches"] += 1
            window["xent"] += float(xent)
            status["text"] = f"step {step} nat {window['nat'] / window['n']:.3f}" + (
                f" adv {window['adv'] / window['n']:.3f}" if settings.eps > 0 else "")
            bar.update(1)
            if step % settings.save_every == 0 or step == settings.steps:
                _save(sess, net, out, log, step, window, settings.eps > 0)
                if not interactive:      # no bar drawn (nohup, CI): one line per checkpoint
                    echo(f"{status['text']} ({window['batches']} batches); saved")
                window = _new_window()
    last = log["history"][-1]
    adversarial = f", adversarial {last['adv_acc']:.3f}" if last["adv_acc"] is not None else ""
    echo(f"step {step}: natural batch accuracy {last['nat_acc']:.3f}{adversarial} (last "
         f"{last['batches']} batches); saved in {out}")


def _save(sess, net, out, log, step, window, adversarial):
    prefix = net.saver.save(sess, os.path.join(out, "checkpoint"), global_step=step)
    log["history"].append({
        "step": int(step), "checkpoint": os.path.basename(prefix),
        "batches": window["batches"],
        "nat_acc": window["nat"] / window["n"],
        "adv_acc": window["adv"] / window["n"] if adversarial else None,
        "mean_xent": window["xent"] / window["n"],
        "seconds": round(time.time() - window["start"], 2)})
    _write_log(out, log)


def export_weights(spec, source, dest):
    """Write ``source``'s model variables (the network of the data set ``spec``) and
    global_step (no optimizer slots) as an official-layout checkpoint in ``dest``; returns the
    new prefix."""
    prefix = ckpt.resolve_prefix(source)
    outputs.check_writable_dir(dest)
    if _existing_checkpoint(dest):
        raise BsattackError(f"{dest} already holds a checkpoint; choose an empty folder")
    stored = ckpt.variable_shapes(prefix)
    step = int(ckpt.read_variables(prefix, ["global_step"])["global_step"]) \
        if "global_step" in stored else 0
    with tf1.Graph().as_default() as graph, models.new_session(graph) as sess:
        model = models.load(sess, spec, prefix)
        global_step = tf1.Variable(step, name="global_step", dtype=tf.int64, trainable=False)
        sess.run(global_step.initializer)
        saver = tf1.train.Saver(var_list={**model.variables, "global_step": global_step},
                                save_relative_paths=True)
        os.makedirs(dest, exist_ok=True)
        return saver.save(sess, os.path.join(dest, "checkpoint"), global_step=step,
                          write_meta_graph=False)
