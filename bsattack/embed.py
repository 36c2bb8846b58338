"""The paper's feature map h(x) (§4.2: the first fully connected layer, 1024-d after ReLU, for
MNIST and Fashion-MNIST; the last average-pooling layer for CIFAR) of one checkpoint, for the
training set, the test set and any transformed test set (a :mod:`bsattack.shifts` transform,
e.g. the blind-spot x' = αx + β).

Computed in batches and cached in HDF5 (:class:`H5Store`): one file per checkpoint + data set,
named (:func:`bsattack.paths.cache_file`) and keyed by the checkpoint's content hash and the
data fingerprint; one group per split and transform.  A cache made from another checkpoint or
data, a truncated file or a group of the wrong shape is reported and rebuilt, never reused.
"""
import numpy as np
import tensorflow as tf

from bsattack import models, paths
from bsattack.h5store import H5Store
from bsattack.progress import silent
from bsattack.shifts import ORIGINAL, cache_key
from bsattack.transforms import to_01, to_pm
from madry_models import checkpoint as ckpt

tf1 = tf.compat.v1

VERSION = 1     # bump when the embedding computation changes
DEFAULT_BATCH_SIZE = 500


def group_name(part, transform=ORIGINAL):
    """'train', 'test', or e.g. 'test-alpha0.7-beta0.1' / 'test-rotate10' for a transformed
    split."""
    return part if transform.is_original else f"{part}-{transform.name}"


class Embeddings:
    """h(x) of ``checkpoint`` (a network of the data set ``spec``) on the images of ``split``
    (a :class:`bsattack.data.Split`).

    ``get(part, transform)`` returns the cached [N, d] float32 array or computes and stores
    it; the network is only built and restored when something has to be computed.
    ``progress`` follows :mod:`bsattack.progress`."""

    def __init__(self, spec, checkpoint, split, cache_dir=None, batch_size=DEFAULT_BATCH_SIZE,
                 echo=print, progress=silent):
        self.spec, self.split, self.batch_size = spec, split, batch_size
        self.cache_dir, self.progress = cache_dir, progress
        self.checkpoint = ckpt.resolve_prefix(checkpoint)
        digest = ckpt.content_hash(self.checkpoint)
        # float32 batched convolutions round differently at another batch size, so a batch
        # other than the default enters the key (default keys stay as they were)
        self.file_key = {"checkpoint_sha256": digest, "dataset": spec.name,
                         "data": split.fingerprint, "version": VERSION,
                         **({} if batch_size == DEFAULT_BATCH_SIZE
                            else {"batch_size": batch_size})}
        self.path = paths.cache_file(cache_dir, "embed", spec.name, self.file_key)
        self.store = H5Store(self.path, self.file_key, echo)
        self.dim = _embedding_dim(spec, self.checkpoint)

    def images(self, part):
        if part not in ("train", "test"):
            raise ValueError(f"part must be 'train' or 'test', not {part!r}")
        return self.split.train_x if part == "train" else self.split.test_x

    def get(self, part="test", transform=ORIGINAL):
        """[N, d] float32 embeddings of split ``part`` after ``transform`` (``x_pm -> x_pm``
        on [-0.5, 0.5] with ``name``, ``key()``, ``is_original``: a :mod:`bsattack.shifts`
        transform)."""
        name = group_name(part, transform)
        images = self.images(part)
        key = {"part": part, **cache_key(transform), "n": len(images)}
        cached = self.store.get(name, key, shapes={"embedding": (len(images), self.dim)})
        if cached is not None:
            return cached["embedding"]
        if not transform.is_original:
            images = to_01(transform(to_pm(images)))
        values = self._compute(images, f"embedding {self.spec.name} {name}")
        self.store.put(name, {"embedding": values}, key)
        return values

    def _compute(self, images01, label):
        graph = tf1.Graph()
        with graph.as_default(), models.new_session(graph) as sess:
            model = models.load(sess, self.spec, self.checkpoint)
            with self.progress(len(images01), label) as bar:
                return models.run_batched(sess, model.embedding, model.x01, images01,
                                          self.batch_size, progress=bar).astype(np.float32)


def _embedding_dim(spec, checkpoint):
    """Width of h(x) for ``checkpoint``, read off the graph without restoring anything."""
    with tf1.Graph().as_default():
        return int(models.build(spec, checkpoint=checkpoint).embedding.shape[-1])
