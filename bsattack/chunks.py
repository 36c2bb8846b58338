"""Work over the first ``n`` test images in chunks, each cached in an
:class:`bsattack.h5store.H5Store` group: the engine of the blind-spot experiments and the
challenge attacks.

A :class:`Chunks` reads the chunks its store holds, lists the missing ones and, when any is
missing, checks the store writable before anything is computed.  :func:`run` hands the
missing chunks of several :class:`Chunks` to one executor (:mod:`bsattack.parallel`) as one
job list; the driver stores each result as it arrives, with its compute time spread evenly
over its images (array ``compute_seconds``), so that a result read from the cache still says
what it cost.  :meth:`Chunks.merged` joins the chunks in order.
"""
import numpy as np

CHUNK_SIZE = 500             # images per cached chunk: the unit of resume
COMPUTE_SECONDS = "compute_seconds"   # per image: its share of its chunk's compute time


def ranges(n, size):
    """(start, stop) of each chunk of ``size`` images over the first ``n``."""
    return [(start, min(start + size, n)) for start in range(0, n, size)]


class Chunks:
    """One run's chunks of ``size`` images over the first ``n``.

    Chunk (start, stop) is group ``name(start, stop)`` of ``store`` under
    ``key(start, stop)``, read when its arrays have ``shapes(start, stop)`` (as
    :meth:`H5Store.get` takes them); ``store`` None caches nothing.  ``job(start, stop)``
    makes the :class:`bsattack.parallel.Job` of a missing chunk, when the executor takes it;
    ``done(start, stop, arrays, seconds)``, if given, is called once that chunk is stored."""

    def __init__(self, store, n, size, name, key, shapes, job, done=None):
        self.store, self.name, self.key, self.job, self.done = store, name, key, job, done
        self.ranges = ranges(n, size)
        self.parts, self.missing = {}, []
        for start, stop in self.ranges:
            cached = (store.get(name(start, stop), key(start, stop), shapes(start, stop))
                      if store else None)
            if cached is not None:
                self.parts[start] = cached
            else:
                self.missing.append((start, stop))
        if self.missing and store:
            store.check_writable()

    @property
    def cached_images(self):
        """Images read from the store."""
        return sum(stop - start for start, stop in self.ranges) - self.missing_images

    @property
    def missing_images(self):
        """Images in the chunks the store did not hold."""
        return sum(stop - start for start, stop in self.missing)

    @property
    def complete(self):
        return len(self.parts) == len(self.ranges)

    def store_result(self, start, stop, arrays, seconds):
        """Keep chunk (start, stop)'s ``arrays`` and its compute time, in the store too, then
        call ``done``."""
        arrays = {**arrays, COMPUTE_SECONDS: np.full(stop - start, seconds / (stop - start))}
        if self.store:
            self.store.put(self.name(start, stop), arrays, self.key(start, stop))
        self.parts[start] = arrays
        if self.done is not None:
            self.done(start, stop, arrays, seconds)

    def merged(self, fill=None):
        """{array name: the chunks' arrays joined in order}; a chunk without an array of
        ``fill`` (cached before it was recorded) gives ``fill[name]`` for each of its
        images (``compute_seconds``: NaN, unknown)."""
        fill = {COMPUTE_SECONDS: np.nan, **(fill or {})}
        names = dict.fromkeys([*(k for part in self.parts.values() for k in part), *fill])
        return {k: np.concatenate([self.parts[start][k] if k in self.parts[start]
                                   else np.full(stop - start, fill[k])
                                   for start, stop in self.ranges]) for k in names}


def run(runs, executor, progress=None):
    """Compute the missing chunks of every :class:`Chunks` of ``runs`` on ``executor``, as one
    job list in order; each result is stored as it arrives, then ``progress(images)`` is
    called with its number of images."""
    jobs = [(chunks, start, stop) for chunks in runs for start, stop in chunks.missing]

    def arrived(index, arrays, seconds):
        chunks, start, stop = jobs[index]
        chunks.store_result(start, stop, arrays, seconds)
        if progress is not None:
            progress(stop - start)
    executor.run((chunks.job(start, stop) for chunks, start, stop in jobs), arrived)
