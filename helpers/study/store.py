"""The results store: one folder per run, keyed by a hash of its full configuration.

A run folder holds ``config.json``, tidy ``metrics.parquet`` (one row per split x metric, with
the run's config, seed, git commit and library versions beside the value), ``predictions.parquet``
(per example), ``history.parquet`` (training curve, coefficients) and, for source models, the
checkpoint as safetensors. Every file is written to a temporary name and renamed into place, and
``DONE`` is written last: a folder without it is an interrupted run, redone on the next call.
"""

from __future__ import annotations

import json
import os
import subprocess
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from helpers.files import sha256_text, write_json, write_table
from helpers.paths import ROOT, reports_root

DONE = "DONE"
VERSIONED = ("torch", "transformers", "numpy", "pandas")  # recorded beside every result


def canonical(config: dict) -> str:
    """Deterministic JSON of a config (sorted keys) for hashing and storage."""
    return json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))


def run_key(config: dict) -> str:
    """A short hash of the full configuration: same config, same key, same folder."""
    return sha256_text(canonical(config))[:16]


def _git(*args: str) -> str:
    """Output of a git command in the repository ("" when git is absent or fails)."""
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, text=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


@lru_cache(maxsize=1)
def provenance() -> dict:
    """Git commit and library versions, recorded beside every result (no library imported)."""
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": commit + ("-dirty" if dirty else ""),
        "versions": canonical({lib: version(lib) for lib in VERSIONED}),
    }


class Store:
    """Run folders under ``<reports>/store/<experiment>/<profile>/<key>``."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = reports_root(root) / "store"

    def run_dir(self, config: dict) -> Path:
        return self.root / config["experiment"] / config["profile"] / run_key(config)

    def is_done(self, config: dict) -> bool:
        return (self.run_dir(config) / DONE).exists()

    def save(
        self, config: dict, metrics: pd.DataFrame, tables: dict[str, pd.DataFrame] | None = None
    ) -> Path:
        """Store a finished run; ``metrics`` has columns split, metric, value[, ci_low, ci_high].

        ``tables`` are further per-run tables (predictions, history, coefficients ...).
        """
        folder = self.run_dir(config)
        write_json(folder / "config.json", config)
        write_table(folder / "metrics.parquet", tidy(config, metrics))
        for name, frame in (tables or {}).items():
            if frame is not None and len(frame):
                write_table(folder / f"{name}.parquet", frame)
        write_json(folder / DONE, {"key": run_key(config)})
        return folder

    def load(self, config: dict, name: str = "metrics") -> pd.DataFrame:
        return pd.read_parquet(self.run_dir(config) / f"{name}.parquet")

    def collect(
        self, name: str = "metrics", experiments=None, profile: str | None = None
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
                    # the folder is the run's key: tells a final run from a tuning-grid run
                    frame["run_key"] = folder.name
                frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


ID_COLUMNS = (
    "experiment",
    "profile",
    "method",
    "delta",
    "seed",
    "model",
    "task",
    "source",
    "target",
)


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
