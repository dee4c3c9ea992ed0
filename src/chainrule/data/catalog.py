"""One entry point that loads any of the library's data sets by name."""

from __future__ import annotations

import os

import numpy as np

from chainrule.errors import ChainruleError

from . import toys
from .cifar import cifar10
from .datasets import Dataset, digits, iris
from .idx import fashion_mnist, mnist


def _toy(generate, num_classes):
    """A loader for a generated set: the training set drawn with ``seed``, the validation
    set as an independent sample of the same size, no test set."""

    def load(name, data_dir, seed):
        X_train, y_train = generate(seed=seed)
        X_val, y_val = generate(seed=validation_seed(seed))
        return Dataset(name, X_train, y_train, X_val, y_val, None, None, num_classes)

    return load


# Every data set by name: name -> load(name, data_dir, seed). A name exists only with its
# loader, so the command line's choices and load_dataset cannot disagree.
GENERATED = {  # made from the seed: no files
    "spiral": _toy(toys.spiral, 3),
    "moons": _toy(toys.moons, 2),
    "circles": _toy(toys.circles, 2),
    "xor": _toy(toys.xor, 2),
}
BUNDLED = {  # shipped inside scikit-learn
    "digits": lambda name, data_dir, seed: digits(seed=seed),
    "iris": lambda name, data_dir, seed: iris(seed=seed),
}
FROM_FILES = {  # read from --data-dir or $CHAINRULE_DATA
    "mnist": lambda name, data_dir, seed: mnist(data_dir, seed=seed),
    "fashion-mnist": lambda name, data_dir, seed: fashion_mnist(data_dir, seed=seed),
    "cifar10": lambda name, data_dir, seed: cifar10(data_dir, seed=seed),
}
LOADERS = {**GENERATED, **BUNDLED, **FROM_FILES}
DATASETS = tuple(LOADERS)


def validation_seed(seed: int) -> int:
    """A seed for a toy set's validation sample, derived from ``seed`` but independent of it.

    Mixing ``seed`` with a constant through ``SeedSequence`` gives a stream unrelated to the
    one ``seed`` itself starts; ``seed + 1`` would make the validation set for seed 0 the
    training set for seed 1.
    """
    return int(np.random.SeedSequence([int(seed), 0x5EED_7A1]).generate_state(1)[0])


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, seed: int = 0) -> Dataset:
    """Load the data set called ``name`` (one of ``DATASETS``) as a ``Dataset``.

    Toy sets ("spiral", "moons", "circles", "xor") are generated with their default sizes:
    the training set with ``seed``, the validation set as an independent sample of the same
    size, and no test set. "digits" and "iris" come from scikit-learn. "mnist",
    "fashion-mnist" and "cifar10" are read from ``data_dir`` (the folder holding the files,
    or the folder holding a folder named after the data set), else from
    ``$CHAINRULE_DATA/<name>``. ``seed`` also fixes the validation split.
    """
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise ChainruleError(f"seed must be an integer, got {seed!r}")
    key = str(name).strip().lower().replace("_", "-")
    if key not in LOADERS:
        raise ChainruleError(f"unknown data set {name!r}; choose one of: {', '.join(DATASETS)}")
    return LOADERS[key](key, data_dir, seed)
