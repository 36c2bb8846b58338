"""Everything that differs between data sets, in one registry: files, URLs and checksums, the
reader, the network, ε, shapes, the challenge rules, the default checkpoints and the paper's
numbers.  Adding a data set is one :class:`DatasetSpec` entry here (plus, for a new file format,
a reader module like :mod:`bsattack.idx_data`, and for a new network a builder in
``madry_models/``).

Public API: ``get_spec(name)``, ``DATASETS`` (name -> spec), :class:`DatasetSpec`,
:class:`DataFile`, :class:`Challenge`, :class:`PaperFacts`.
"""
import importlib
from dataclasses import dataclass, field
from types import ModuleType

from bsattack import cifar_data, idx_data
from bsattack.errors import BsattackError

PAPER_N = 2000     # the paper attacks the first 2,000 test images of each data set (§4.1)


@dataclass(frozen=True)
class DataFile:
    name: str          # file name as published
    sha256: str        # of the published (gzipped) file
    raw_sha256: str = ""   # of the uncompressed IDX content (recompressed copies still match)


@dataclass(frozen=True)
class Challenge:
    """MadryLab's ``run_attack.py`` rules for an attack file, and the leaderboard's PGD."""
    high: float           # pixel range of the file is [0, high]
    eps: float            # L∞ budget in file units
    batch_size: int       # run_attack.py's eval batch
    pgd_steps: int        # the challenge's PGD (mnist_challenge config.json k; CIFAR: 20)
    pgd_step_size: float  # its step a, in [0, 1] pixel units


@dataclass(frozen=True)
class PaperFacts:
    """Where the data set appears in the paper, and the numbers it reports there."""
    table: int = None             # Table 2 / 3 (accuracy and success over the (α, β) grid;
                                  # rows in bsattack/report/paper_tables.json under the name)
    table1: tuple = (None, None, None)   # Table 1: avg K-L, C&W success %, accuracy %
    figure: int = 0               # Figures 1-3: success against the distance D
    shown: tuple = (0.9, 0.0)     # the (α, β) of its Figures 4 and 5


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    eps: float                 # L∞ budget in [-0.5, 0.5] units (paper §4.1)
    pixel_scale: float         # model input = (x + 0.5) * pixel_scale
    image_shape: tuple
    base_url: str
    reader: ModuleType         # load(spec, data_dir, validation_size, download, echo) -> Split,
                               # fetch(spec, dest, echo) -> folder
    network: str               # module of madry_models with ``build_for`` (imported on use:
                               # it imports TensorFlow)
    challenge: Challenge
    files: dict = field(default_factory=dict)   # role -> DataFile
    flat_input: bool = False                   # the network's input is [N, dim] (else images)
    trainable: bool = False                    # bsattack.train's MNIST-challenge recipe fits
    default_checkpoint: str = ""               # entry of checkpoints/manifest.json or a folder
    natural_checkpoint: str = ""
    system_dirs: tuple = ()                    # places a distribution installs the files
    folder_names: tuple = ()                   # sub-folder names it is found under
    paper: PaperFacts = PaperFacts()

    @property
    def dim(self):
        size = 1
        for d in self.image_shape:
            size *= d
        return size

    @property
    def build(self):
        """The network builder ``(x01=None, scope=None, shapes=None, source=None,
        widths=None) -> model`` (:func:`madry_models.builders.checkpoint_builder`)."""
        return importlib.import_module(self.network).build_for

    @property
    def input_shape(self):
        """The network's input layout without the batch axis."""
        return (self.dim,) if self.flat_input else tuple(self.image_shape)


MNIST = DatasetSpec(
    name="mnist", eps=0.3, pixel_scale=1.0, image_shape=(28, 28, 1),
    base_url="https://storage.googleapis.com/cvdf-datasets/mnist/",
    files={
        "train_images": DataFile("train-images-idx3-ubyte.gz",
                                 "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                                 "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        "train_labels": DataFile("train-labels-idx1-ubyte.gz",
                                 "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                                 "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        "test_images": DataFile("t10k-images-idx3-ubyte.gz",
                                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        "test_labels": DataFile("t10k-labels-idx1-ubyte.gz",
                                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    },
    reader=idx_data, network="madry_models.mnist", flat_input=True, trainable=True,
    challenge=Challenge(high=1.0, eps=0.3, batch_size=64, pgd_steps=100, pgd_step_size=0.01),
    default_checkpoint="mnist_secret", natural_checkpoint="mnist_natural",
    folder_names=("mnist",),
    paper=PaperFacts(table=2, table1=(0.119, 9.7, 98.2), figure=1, shown=(0.7, 0.0)))

FASHION = DatasetSpec(
    name="fashion", eps=0.1, pixel_scale=1.0, image_shape=(28, 28, 1),
    base_url="https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    files={
        "train_images": DataFile("train-images-idx3-ubyte.gz",
                                 "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                                 "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        "train_labels": DataFile("train-labels-idx1-ubyte.gz",
                                 "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                                 "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        "test_images": DataFile("t10k-images-idx3-ubyte.gz",
                                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        "test_labels": DataFile("t10k-labels-idx1-ubyte.gz",
                                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    },
    reader=idx_data, network="madry_models.mnist", flat_input=True, trainable=True,
    # not a published challenge: the paper's Fashion-MNIST setting (ε = 0.1), MNIST's rules
    challenge=Challenge(high=1.0, eps=0.1, batch_size=64, pgd_steps=100, pgd_step_size=0.01),
    default_checkpoint="fashion_adv", natural_checkpoint="fashion_nat",
    system_dirs=("/usr/share/datasets/fashion-mnist",), folder_names=("fashion", "fashion-mnist"),
    paper=PaperFacts(table=3, table1=(0.046, 6.4, 86.1), figure=2, shown=(0.9, 0.0)))

CIFAR10 = DatasetSpec(
    name="cifar10", eps=8 / 255, pixel_scale=255.0, image_shape=(32, 32, 3),
    base_url="https://www.cs.toronto.edu/~kriz/",
    files={"archive": DataFile("cifar-10-python.tar.gz",
                               "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce")},
    reader=cifar_data, network="madry_models.cifar10",
    challenge=Challenge(high=255.0, eps=8.0, batch_size=100, pgd_steps=20,
                        pgd_step_size=2.0 / 255),
    default_checkpoint="cifar10_adv_trained", natural_checkpoint="cifar10_naturally_trained",
    folder_names=("cifar10", "cifar10_data", "cifar-10-batches-py", "cifar-10-batches-bin"),
    paper=PaperFacts(table1=(0.571, 37.9, 87.0), figure=3))

DATASETS = {spec.name: spec for spec in (MNIST, FASHION, CIFAR10)}
# the data sets the paper has a Table 2/3 (an (α, β) grid) for: mnist, fashion
PAPER_TABLE_DATASETS = tuple(name for name, spec in DATASETS.items() if spec.paper.table)


def get_spec(name):
    try:
        return DATASETS[name]
    except KeyError:
        raise BsattackError(f"unknown dataset '{name}' (known: {', '.join(DATASETS)})") from None
