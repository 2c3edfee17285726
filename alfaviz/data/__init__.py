"""Data sources: every loader returns a :class:`DataSource` with stable global sample ids.

Nothing is downloaded unless a caller asks for it in Python (``download=True``). A run records
its data with :func:`data_config` and reopens it with :func:`load_dataset_from_config`, which
checks every option against :data:`CONFIG_OPTIONS`, never downloads, never turns off an
integrity check, never unpickles, and compares the data with its recorded
:meth:`DataSource.fingerprint`.

Modules
-------
* ``_source``: :class:`DataSource`, its split storage, :func:`check_fingerprint`;
* ``_checks``: the boundary checks (seeds, ``test_size``, paths, ...), label encoding and the
  stratified split;
* ``_digits``: :func:`load_digits`, scikit-learn's bundled 8x8 digits (the offline default);
* ``_torchvision``: :func:`load_torchvision`, MNIST, FashionMNIST, CIFAR10, CIFAR100 and SVHN
  from local files;
* ``_images``: :func:`from_image_folder`, an ``ImageFolder`` tree (one sub-folder per class);
* ``_tabular``: :func:`from_arrays`, :func:`from_dataframe`, :func:`from_csv`;
* ``_torch``: :func:`from_torch_dataset`, a user's own ``torch.utils.data.Dataset``;
* ``_features``: :func:`from_embeddings` and :func:`load_features`, pre-computed features
  (``.npy`` files are memory-mapped and read batch by batch through :class:`FeatureRows`);
* ``_load``: :func:`load_dataset` (the dispatcher by name, folder or file, for the CLI),
  :func:`data_config` and :func:`load_dataset_from_config`.

Bad input (one class, NaN features, an empty split, test classes the pool never shows, X/y of
different lengths, missing or truncated files, bad seeds, ...) raises
:class:`~alfaviz.errors.AlfavizInputError` with one line that names the argument and says what
to do.
"""

from __future__ import annotations

from alfaviz.data._digits import load_digits
from alfaviz.data._features import FeatureRows, from_embeddings, load_features
from alfaviz.data._images import from_image_folder
from alfaviz.data._load import CONFIG_OPTIONS, data_config, load_dataset, load_dataset_from_config
from alfaviz.data._source import DataSource, check_fingerprint
from alfaviz.data._tabular import from_arrays, from_csv, from_dataframe
from alfaviz.data._torch import from_torch_dataset
from alfaviz.data._torchvision import TORCHVISION_DATASETS, default_data_root, load_torchvision

__all__ = [
    "CONFIG_OPTIONS",
    "TORCHVISION_DATASETS",
    "DataSource",
    "FeatureRows",
    "check_fingerprint",
    "data_config",
    "default_data_root",
    "from_arrays",
    "from_csv",
    "from_dataframe",
    "from_embeddings",
    "from_image_folder",
    "from_torch_dataset",
    "load_dataset",
    "load_dataset_from_config",
    "load_digits",
    "load_features",
    "load_torchvision",
]
