"""The results store: stable keys, atomic writes, verified manifests, tidy provenance."""

import pandas as pd
import pytest

from helpers.files import atomic_write
from helpers.study.store import Store, run_key

CONFIG = {
    "experiment": "e",
    "profile": "smoke",
    "method": "head",
    "delta": 0.5,
    "seed": 0,
    "train": {"lr": 1e-3},
}
METRICS = pd.DataFrame({"split": ["test"], "metric": ["accuracy"], "value": [0.75]})


def test_key_is_stable_and_sensitive():
    assert run_key(CONFIG) == run_key(dict(reversed(list(CONFIG.items()))))
    assert run_key(CONFIG) != run_key({**CONFIG, "train": {"lr": 2e-3}})


def test_save_collect_roundtrip_with_provenance(tmp_path):
    store = Store(tmp_path)
    assert not store.is_done(CONFIG)
    store.save(CONFIG, METRICS, {"predictions": pd.DataFrame({"id": ["x"], "pred": [1]})})
    assert store.is_done(CONFIG)
    table = store.collect()
    assert len(table) == 1
    row = table.iloc[0]
    assert row["method"] == "head" and row["value"] == 0.75 and row["delta"] == 0.5
    assert row["git_commit"] and "torch" in row["versions"] and '"lr":0.001' in row["config"]
    assert store.collect("predictions")["method"].tolist() == ["head"]


def test_interrupted_run_is_not_done(tmp_path):
    store = Store(tmp_path)
    folder = store.run_dir(CONFIG)
    folder.mkdir(parents=True)
    (folder / "metrics.parquet").write_bytes(b"half written")
    assert not store.is_done(CONFIG)
    assert store.collect().empty


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "x.json"
    target.write_text("old")

    def boom(tmp):
        tmp.write_text("partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_a_run_whose_manifest_does_not_verify_is_not_done(tmp_path, capsys):
    store = Store(tmp_path)
    folder = store.save(CONFIG, METRICS)
    manifest = folder / "manifest.json"
    manifest.write_text(manifest.read_text().replace(run_key(CONFIG), "0" * 16))
    assert not store.is_done(CONFIG) and store.collect().empty
    assert "holds key 0000000000000000" in capsys.readouterr().err
    store.save(CONFIG, METRICS)  # redone: verifies again
    assert store.is_done(CONFIG) and len(store.collect()) == 1
