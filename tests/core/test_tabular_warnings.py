"""Loading a CSV or DataFrame warns about nothing a user can act on."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from alfaviz.data._tabular import from_csv, from_dataframe


def test_a_csv_loads_without_torch_warning_about_read_only_arrays(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.standard_normal((60, 4)).astype(np.float32), columns=list("abcd"))
    frame["label"] = rng.integers(0, 3, 60)
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "array is not writable" would fail here
        src = from_csv(path, target="label")
        again = from_dataframe(frame, target="label")
    assert src.n_classes == again.n_classes == 3
