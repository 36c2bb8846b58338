"""The paper's feature map h(x) (§4.2: the first fully connected layer, 1024-d after ReLU, for
MNIST and Fashion-MNIST; the last average-pooling layer for CIFAR) of one checkpoint, for the
training set, the test set and any blind-spot transformed test set x' = αx + β.

Computed in batches with a progress bar and cached in HDF5 (:class:`H5Store`): one file per
checkpoint + data set, named and keyed by the checkpoint's content hash and the data
fingerprint; one group per split and transform.  A cache made from another checkpoint or data,
a truncated file or a group of the wrong shape is reported and rebuilt, never reused.
"""
import contextlib
import os
import sys

import click
import numpy as np
import tensorflow as tf

from bsattack import models, transforms
from bsattack.h5store import CACHE_DIR as DEFAULT_CACHE_DIR, H5Store
from madry_models import checkpoint as ckpt

tf1 = tf.compat.v1

VERSION = 1     # bump when the embedding computation changes


def group_name(part, alpha=1.0, beta=0.0):
    """'train', 'test', or e.g. 'test-alpha0.7-beta0' for a transformed split."""
    alpha, beta = transforms.validate(alpha, beta)
    return part if (alpha, beta) == (1.0, 0.0) else f"{part}-alpha{alpha:g}-beta{beta:g}"


class Embeddings:
    """h(x) of ``checkpoint`` on the images of ``split`` (a :class:`bsattack.data.Split`).

    ``get(part, alpha, beta)`` returns the cached [N, d] float32 array or computes and stores
    it; the network is only built and restored when something has to be computed."""

    def __init__(self, dataset, checkpoint, split, cache_dir=None, batch_size=500, echo=print,
                 show_progress=True):
        self.dataset, self.split, self.batch_size = dataset, split, batch_size
        self.show_progress = show_progress
        self.checkpoint = ckpt.resolve_prefix(checkpoint)
        digest = ckpt.content_hash(self.checkpoint)
        self.path = os.path.join(cache_dir or DEFAULT_CACHE_DIR,
                                 f"embed-{dataset}-{digest[:16]}-{split.fingerprint[:8]}.h5")
        self.file_key = {"checkpoint_sha256": digest, "dataset": dataset,
                         "data": split.fingerprint, "version": VERSION}
        self.store = H5Store(self.path, self.file_key, echo)
        self.dim = _embedding_dim(dataset, self.checkpoint)

    def images(self, part):
        if part not in ("train", "test"):
            raise ValueError(f"part must be 'train' or 'test', not {part!r}")
        return self.split.train_x if part == "train" else self.split.test_x

    def get(self, part="test", alpha=1.0, beta=0.0, transform=None):
        """[N, d] float32 embeddings of split ``part`` after x' = αx + β (in [-0.5, 0.5]), or
        after ``transform`` (``x_pm -> x_pm`` with ``name`` and ``key()``, e.g. a
        :class:`bsattack.shifts.Shift`) instead."""
        name = group_name(part, alpha, beta)
        images = self.images(part)
        key = {"part": part, "alpha": float(alpha), "beta": float(beta), "n": len(images)}
        if transform is not None:
            name, key["transform"] = f"{name}-{transform.name}", transform.key()
        cached = self.store.get(name, key, shapes={"embedding": (len(images), self.dim)})
        if cached is not None:
            return cached["embedding"]
        if (float(alpha), float(beta)) != (1.0, 0.0):
            images = transforms.to_01(transforms.blindspot(transforms.to_pm(images), alpha, beta))
        if transform is not None:
            images = transforms.to_01(transform(transforms.to_pm(images)))
        values = self._compute(images, f"embedding {self.dataset} {name}")
        self.store.put(name, {"embedding": values}, key)
        return values

    def _compute(self, images01, label):
        graph = tf1.Graph()
        with graph.as_default(), models.new_session(graph) as sess:
            model = models.load(sess, self.dataset, self.checkpoint)
            bar = (click.progressbar(length=len(images01), label=label, show_eta=True,
                                     file=sys.stderr)
                   if self.show_progress else contextlib.nullcontext())
            with bar as progress:
                return models.run_batched(sess, model.embedding, model.x01, images01,
                                          self.batch_size, progress=progress).astype(np.float32)


def _embedding_dim(dataset, checkpoint):
    """Width of h(x) for ``checkpoint``, read off the graph without restoring anything."""
    with tf1.Graph().as_default():
        return int(models.build(dataset, checkpoint=checkpoint).embedding.shape[-1])
