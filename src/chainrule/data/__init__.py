"""Data for training: minibatch loading, splits, standardisation and the data sets.

Everything here returns NumPy arrays: features float32, labels int64. Data sets come back
as a ``Dataset`` (train / validation / optional test splits); ``load_dataset(name)`` loads
any of ``DATASETS`` by name. Nothing is ever downloaded: MNIST, Fashion-MNIST and CIFAR-10
are read from files already on the machine (see ``$CHAINRULE_DATA``).
"""

from .catalog import DATASETS, load_dataset
from .cifar import cifar10, read_batch
from .datasets import Dataset, digits, iris
from .idx import fashion_mnist, mnist, read_idx
from .loader import DataLoader, Standardize, train_val_split
from .plane import input_features, points_dataset
from .toys import circles, moons, spiral, xor

__all__ = [
    "DATASETS",
    "DataLoader",
    "Dataset",
    "Standardize",
    "circles",
    "cifar10",
    "digits",
    "fashion_mnist",
    "input_features",
    "iris",
    "load_dataset",
    "mnist",
    "moons",
    "points_dataset",
    "read_batch",
    "read_idx",
    "spiral",
    "train_val_split",
    "xor",
]
