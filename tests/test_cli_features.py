"""``alfaviz run`` on files of pre-computed features (Parquet, .npy + labels, .npz)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alfaviz.cli import main

FAST = ["--epochs", "3", "--initial-size", "10", "--budget", "5", "--projection", "pca"]


def blobs(n: int = 160, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    return (rng.normal(size=(n, d)) + 3.0 * y[:, None]).astype(np.float32), y


def features_parquet(tmp_path: Path, name: str = "features.parquet") -> Path:
    Z, y = blobs()
    df = pd.DataFrame(Z, columns=[f"z{i}" for i in range(Z.shape[1])])
    df["label"] = np.where(y == 1, "spam", "ham")
    df["id"] = 500 + 2 * np.arange(len(y))
    path = tmp_path / name
    df.to_parquet(path)
    return path


def config_of(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())["config"]


def test_run_on_a_parquet_of_features_writes_a_reopenable_run(tmp_path, capsys):
    path = features_parquet(tmp_path)
    out = tmp_path / "run"
    argv = ["run", "--dataset", str(path), "--target", "label", "--model", "linear"]
    assert main([*argv, "--rounds", "2", "--out", str(out), *FAST]) == 0
    text = capsys.readouterr().out
    assert "round 0: 10 labelled" in text
    assert "round 1: 15 labelled" in text
    data = config_of(out)["data"]
    assert data["spec"] == str(path.resolve())
    assert data["kwargs"] == {"target": "label", "embeddings": True}
    assert config_of(out)["model"]["name"] == "linear"

    from alfaviz import open_run
    from alfaviz.learner import LinearProbe

    run = open_run(out)
    assert type(run.model) is LinearProbe
    assert len(run.rounds) == 2
    assert run.data.class_names == ("ham", "spam")
    ext = run.data.to_external_ids(run.data.sample_ids)
    assert sorted(ext.tolist()) == (500 + 2 * np.arange(160)).tolist()
    assert main(["info", str(out)]) == 0
    assert "integrity: every checksum matches" in capsys.readouterr().out


def test_run_on_npy_features_with_a_labels_file_picks_linear(tmp_path, capsys):
    Z, y = blobs()
    np.save(tmp_path / "z.npy", Z)
    np.save(tmp_path / "labels.npy", y)
    out = tmp_path / "npy"
    argv = ["run", "--dataset", str(tmp_path / "z.npy"), "--labels", str(tmp_path / "labels.npy")]
    assert main([*argv, "--rounds", "1", "--out", str(out), *FAST]) == 0
    assert "round 0: 10 labelled" in capsys.readouterr().out
    data = config_of(out)["data"]
    assert data["kwargs"] == {"labels": str((tmp_path / "labels.npy").resolve())}

    from alfaviz import open_run
    from alfaviz.learner import LinearProbe

    run = open_run(out)
    assert type(run.model) is LinearProbe  # "auto" on embeddings
    assert isinstance(run.data.train.base, np.memmap)


def test_run_on_an_npz_reads_the_named_arrays(tmp_path, capsys):
    Z, y = blobs()
    np.savez(tmp_path / "f.npz", features=Z, labels=y, ids=np.arange(len(y)) * 5)
    out = tmp_path / "npz"
    assert main(["run", "--dataset", str(tmp_path / "f.npz"), "--out", str(out), "--rounds", "1",
                 *FAST]) == 0  # fmt: skip
    capsys.readouterr()

    from alfaviz import open_run

    run = open_run(out)
    assert run.data.external_ids is not None
    assert len(run.rounds) == 1


def test_embeddings_flag_reads_a_table_as_features_for_auto(tmp_path, capsys):
    path = features_parquet(tmp_path)
    out = tmp_path / "flag"
    assert main(["run", "--dataset", str(path), "--embeddings", "--out", str(out), "--rounds", "1",
                 *FAST]) == 0  # fmt: skip
    capsys.readouterr()
    assert config_of(out)["data"]["kwargs"] == {"embeddings": True}

    from alfaviz import open_run
    from alfaviz.learner import LinearProbe

    assert type(open_run(out).model) is LinearProbe


def test_help_names_the_feature_options(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for needle in ("--labels", "--embeddings", "linear", ".npy/.npz"):
        assert needle in text


def _write_bad(tmp: Path) -> None:
    Z, y = blobs(40, 3)
    np.save(tmp / "z.npy", Z)
    np.save(tmp / "y.npy", y)
    np.save(tmp / "short.npy", y[:30])
    nan = Z.copy()
    nan[3, 1] = np.nan
    np.save(tmp / "nan.npy", nan)
    np.save(tmp / "flat.npy", Z[:, 0])
    df = pd.DataFrame(Z, columns=["a", "b", "c"]).assign(label=y)
    df.to_parquet(tmp / "ok.parquet")
    df.assign(note=["x"] * 40).to_parquet(tmp / "text.parquet")
    df.assign(id=[1] * 40).to_parquet(tmp / "dupe.parquet")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ok.parquet", "--target", "species", "--model", "linear"], "target column 'species'"),
        (["z.npy", "--labels", "short.npy"], "have 40 rows but labels file"),
        (["text.parquet", "--model", "linear"], "feature column(s) ['note']"),
        (["nan.npy", "--labels", "y.npy"], "NaN or inf in 1 row(s)"),
        (["flat.npy", "--labels", "y.npy"], "must be 2-D"),
        (["missing.npy", "--labels", "y.npy"], "missing.npy"),
        (["z.npy"], "--labels labels.npy"),
        (["z.npy", "--labels", "nope.npy"], "nope.npy' does not exist"),
        (["dupe.parquet", "--embeddings"], "must be unique"),
    ],
)
def test_bad_feature_input_is_one_clear_line(tmp_path, capsys, args, needle):
    _write_bad(tmp_path)
    dataset, *rest = args
    rest = [str(tmp_path / a) if a.endswith(".npy") else a for a in rest]
    out = tmp_path / "never"
    argv = ["run", "--dataset", str(tmp_path / dataset), *rest, "--out", str(out), *FAST]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("alfaviz: error: ")
    assert len(err.splitlines()) == 1
    assert needle in err
    assert "Traceback" not in err
    assert not out.exists()  # refused at the boundary, before a run folder is written
