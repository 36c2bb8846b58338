"""Load or fetch a data set, given its :class:`bsattack.datasets.DatasetSpec`: the spec's
reader does the work.  Every loader returns a :class:`Split`: train and test images as float32 in
[0, 1] in the data set's layout, int64 labels, the folder read and a fingerprint of the arrays
(for cache keys).  MNIST and Fashion-MNIST use the Madry split (the first 5,000 training
images held out).  Every reader module has ``load``, ``fetch`` and ``locate`` taking the spec."""
from bsattack.datafiles import DATA_ENV, Split  # noqa: F401 (public names)
from bsattack.datasets import DATASETS
from bsattack.idx_data import read_idx  # noqa: F401
from bsattack.progress import silent

MADRY_VALIDATION_SIZE = 5000


def load(spec, data_dir=None, validation_size=MADRY_VALIDATION_SIZE, download=True,
         echo=print):
    """The :class:`Split` of the data set ``spec``, read from the first folder holding its
    files (downloaded, with a notice through ``echo``, when none does and ``download``);
    another data set's published files are refused, and files that are no published ones
    noted through ``echo``."""
    split = spec.reader.load(spec, data_dir, validation_size, download, echo)
    if hasattr(spec.reader, "check_data_files"):
        others = [s for s in DATASETS.values() if s.name != spec.name and s.reader is spec.reader]
        spec.reader.check_data_files(spec, split.source, others, echo)
    return split


def fetch_data(spec, dest=None, echo=print, progress=silent):
    """Download the data set ``spec`` from its canonical mirror into ``dest`` (default
    data/<name>), checking SHA-256; returns the folder."""
    return spec.reader.fetch(spec, dest, echo, progress)


def locate(spec, data_dir=None):
    """The folder the data set ``spec`` would be read from, or None."""
    return spec.reader.locate(spec, data_dir)
