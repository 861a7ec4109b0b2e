"""The results store: one folder per run, keyed by a hash of its full configuration.

A run folder holds ``config.json``, tidy ``metrics.parquet`` (one row per split x metric, with
the run's config, seed, git commit and library versions beside the value), ``predictions.parquet``
(per example), ``history.parquet`` (training curve, coefficients) and, for source models, the
checkpoint as safetensors. Every file is written to a temporary name and renamed into place, and
``DONE`` is written last: a folder without it is an interrupted run, redone on the next call.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import pandas as pd

from helpers.paths import ROOT, reports_root

DONE = "DONE"


def canonical(config: dict) -> str:
    """Deterministic JSON of a config (sorted keys) for hashing and storage."""
    return json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))


def run_key(config: dict) -> str:
    """A short hash of the full configuration: same config, same key, same folder."""
    return hashlib.sha256(canonical(config).encode()).hexdigest()[:16]


@lru_cache(maxsize=1)
def provenance() -> dict:
    """Git commit and library versions, recorded beside every result."""
    import numpy
    import torch
    import transformers
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                                capture_output=True, timeout=10).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "unknown", ""
    return {"git_commit": commit + ("-dirty" if dirty else ""),
            "versions": canonical({"torch": torch.__version__,
                                   "transformers": transformers.__version__,
                                   "numpy": numpy.__version__, "pandas": pd.__version__})}


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)``, then rename into place; a crash leaves the old file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path: Path, obj) -> None:
    atomic_write(path, lambda t: t.write_text(json.dumps(obj, indent=2, sort_keys=True,
                                                         default=str)))


def write_table(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda t: frame.to_parquet(t, index=False))


class Store:
    """Run folders under ``<reports>/store/<experiment>/<profile>/<key>``."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = reports_root(root) / "store"

    def run_dir(self, config: dict) -> Path:
        return self.root / config["experiment"] / config["profile"] / run_key(config)

    def is_done(self, config: dict) -> bool:
        return (self.run_dir(config) / DONE).exists()

    def save(self, config: dict, metrics: pd.DataFrame, tables: dict[str, pd.DataFrame] = None,
             extra: dict | None = None) -> Path:
        """Store a finished run; ``metrics`` has columns split, metric, value[, ci_low, ci_high].

        ``tables`` are further per-run tables (predictions, history, coefficients ...).
        """
        folder = self.run_dir(config)
        write_json(folder / "config.json", config)
        write_table(folder / "metrics.parquet", tidy(config, metrics))
        for name, frame in (tables or {}).items():
            if frame is not None and len(frame):
                write_table(folder / f"{name}.parquet", frame)
        if extra:
            write_json(folder / "extra.json", extra)
        write_json(folder / DONE, {"key": run_key(config)})
        return folder

    def load(self, config: dict, name: str = "metrics") -> pd.DataFrame:
        return pd.read_parquet(self.run_dir(config) / f"{name}.parquet")

    def collect(self, name: str = "metrics", experiments=None, profile: str | None = None
                ) -> pd.DataFrame:
        """Concatenate one table over every finished run (optionally filtered)."""
        frames = []
        for done in sorted(self.root.glob(f"*/{profile or '*'}/*/{DONE}")):
            folder = done.parent
            if experiments and folder.parent.parent.name not in experiments:
                continue
            path = folder / f"{name}.parquet"
            if path.exists():
                frame = pd.read_parquet(path)
                if name != "metrics":  # identify rows by their run, keeping their own columns
                    config = json.loads((folder / "config.json").read_text())
                    for k in ID_COLUMNS:
                        if k not in frame:
                            frame[k] = config.get(k)
                frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


ID_COLUMNS = ("experiment", "profile", "method", "delta", "seed", "model", "task", "source",
              "target")


def tidy(config: dict, metrics: pd.DataFrame) -> pd.DataFrame:
    """Put the run's identity, full config and provenance beside every metric row."""
    frame = metrics.copy()
    for col in ("ci_low", "ci_high"):
        if col not in frame:
            frame[col] = float("nan")
    for k in ID_COLUMNS:
        frame[k] = config.get(k)
    frame["run_key"] = run_key(config)
    frame["config"] = canonical(config)
    for k, v in provenance().items():
        frame[k] = v
    return frame
