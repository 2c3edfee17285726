"""Data sources: every loader returns a :class:`DataSource` with stable global sample ids.

Nothing is downloaded unless a caller asks for it in Python (``download=True``).
"""

from __future__ import annotations

from alfaviz.data._sources import (
    TORCHVISION_DATASETS,
    DataSource,
    default_data_root,
    from_arrays,
    from_csv,
    from_dataframe,
    from_image_folder,
    from_torch_dataset,
    load_dataset,
    load_digits,
    load_torchvision,
)

__all__ = [
    "TORCHVISION_DATASETS",
    "DataSource",
    "default_data_root",
    "from_arrays",
    "from_csv",
    "from_dataframe",
    "from_image_folder",
    "from_torch_dataset",
    "load_dataset",
    "load_digits",
    "load_torchvision",
]
