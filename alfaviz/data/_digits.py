"""scikit-learn's bundled handwritten digits: the offline default data set."""

from __future__ import annotations

import numpy as np
import torch

from alfaviz.data._checks import check_seed, check_test_size, stratified_split
from alfaviz.data._source import DataSource, TensorSplit, make_source

__all__ = ["load_digits"]


def load_digits(seed: int = 0, test_size: float = 0.25) -> DataSource:
    """scikit-learn's bundled handwritten digits (offline, 1797 images of 8x8, 10 classes).

    Parameters
    ----------
    seed : int
        Seed of the stratified train/test split, in ``0 .. 2**63 - 1``.
    test_size : float
        Fraction of each class sent to the test split, strictly between 0 and 1.

    Returns
    -------
    DataSource
        ``kind="image"``, ``input_shape=(1, 8, 8)``, pixels scaled to [0, 1] (raw 0..16 / 16);
        1347 train and 450 test samples with the defaults.
    """
    from sklearn.datasets import load_digits as _sk_digits

    seed = check_seed(seed)
    test_size = check_test_size(test_size)
    bunch = _sk_digits()
    images = np.asarray(bunch.images, dtype=np.float32) / 16.0  # (1797, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)
    tr, te = stratified_split(y, test_size, seed)
    x = torch.from_numpy(images).unsqueeze(1)  # (n, 1, 8, 8)
    raw = np.round(images * 255.0).astype(np.uint8)

    def split(pos: np.ndarray) -> TensorSplit:
        return TensorSplit(x[torch.as_tensor(pos)].contiguous(), y[pos], raw[pos])

    return make_source(
        name="digits",
        kind="image",
        train=split(tr),
        test=split(te),
        class_names=[str(d) for d in range(10)],
        input_shape=(1, 8, 8),
        description=(
            f"scikit-learn digits (8x8 grey, scaled to [0, 1]); stratified split, "
            f"test_size={test_size}, seed={seed}"
        ),
        meta={"source": "sklearn.datasets.load_digits", "seed": seed, "test_size": test_size},
    )
