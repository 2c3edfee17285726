"""A round's tables given in parts: streamed into the same files, read back as the whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alfaviz.errors import AlfavizInputError
from alfaviz.store import Parts, RunStore

N, DIM = 1000, 8


def frame(start: int, stop: int) -> pd.DataFrame:
    ids = np.arange(start, stop, dtype=np.int64)
    return pd.DataFrame(
        {
            "sample_id": ids,
            "score": np.sin(ids).astype(np.float32),
            "candidate": ids % 3 == 0,
            "label": pd.array(np.where(ids % 5 == 0, -1, ids % 4), dtype="Int64"),
        },
        index=np.arange(stop - start) + 17,  # a part's own index is dropped
    )


def matrix(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.arange(start, stop, dtype=np.int64)
    return ids, np.cos(ids[:, None] + np.arange(DIM)).astype(np.float32)


BOUNDS = [(0, 300), (300, 301), (301, 301), (301, N)]


def store(tmp_path: Path, name: str) -> RunStore:
    return RunStore.create(tmp_path / name, {"seed": 0})


def test_parts_read_back_as_the_whole(tmp_path):
    whole, parts = store(tmp_path, "whole"), store(tmp_path, "parts")
    ids, emb = matrix(0, N)
    whole.write_round(
        0, samples=frame(0, N).reset_index(drop=True), flips=frame(0, 10).reset_index(drop=True),
        rounds_row={"n": 1}, embeddings=emb, embedding_ids=ids, critical_eps=emb[:, :3],
        critical_eps_ids=ids,
    )  # fmt: skip
    parts.write_round(
        0, samples=Parts(frame(a, b) for a, b in BOUNDS), flips=Parts([frame(0, 10)]),
        rounds_row={"n": 1}, embeddings=Parts(matrix(a, b) for a, b in BOUNDS),
        critical_eps=Parts((i, m[:, :3]) for i, m in (matrix(a, b) for a, b in BOUNDS)),
    )  # fmt: skip
    pd.testing.assert_frame_equal(parts.read_samples(0), whole.read_samples(0), check_exact=True)
    pd.testing.assert_frame_equal(parts.read_flips(0), whole.read_flips(0), check_exact=True)
    for a, b in zip(parts.read_embeddings(0), whole.read_embeddings(0), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(parts.read_critical_eps(0), whole.read_critical_eps(0), strict=True):
        np.testing.assert_array_equal(a, b)
    assert parts.verify() == []
    manifest = (parts.path / "rounds").glob("round_*/round.json")
    assert '"embedding_dim": 8' in next(iter(manifest)).read_text()


def bad_parts() -> list[tuple[dict, str]]:
    other = frame(300, N).astype({"score": np.float64})
    ids, emb = matrix(0, 300)
    return [
        ({"samples": Parts([frame(0, 300), other])}, "samples part 1 does not match part 0"),
        ({"samples": Parts([])}, "samples has no parts"),
        ({"samples": Parts([frame(0, 3), "x"])}, "samples part 1 must be a pandas DataFrame"),
        ({"embeddings": Parts([matrix(0, 300), matrix(299, 400)])}, "unique across the parts"),
        ({"embeddings": Parts([(ids, emb), (ids + 300, emb[:, :4])])}, "part 1 does not match"),
        ({"embeddings": Parts([emb])}, r"must be a \(sample_ids, matrix\) pair"),
        ({"embeddings": Parts([matrix(0, 3)]), "embedding_ids": ids}, "Drop embedding_ids"),
        ({"critical_eps": Parts([matrix(0, 3)]), "critical_eps_ids": ids}, "Drop critical_eps"),
    ]


@pytest.mark.parametrize(("kwargs", "match"), bad_parts())
def test_a_bad_part_is_a_clear_error_and_nothing_is_written(tmp_path, kwargs, match):
    s = store(tmp_path, "run")
    args = {"samples": frame(0, 3), "flips": frame(0, 0), "rounds_row": {}} | kwargs
    with pytest.raises(AlfavizInputError, match=match):
        s.write_round(0, **args)
    assert s.rounds_written() == []
    assert list((s.path / "rounds").iterdir()) == []
    s.write_round(0, samples=frame(0, 3), flips=frame(0, 0), rounds_row={})  # still writable
    assert s.rounds_written() == [0]
