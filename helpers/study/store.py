"""The results store: one folder per run, keyed by a hash of its full configuration.

A run folder holds ``config.json`` (a copy for people; never read back), tidy ``metrics.parquet``
(one row per split x metric, with the run's config, seed, git commit and library versions beside
the value), ``predictions.parquet`` (per example), ``history.parquet`` (training curve,
coefficients) and, for source models, the checkpoint as safetensors. Every file is written to a
temporary name and renamed into place, and ``manifest.json`` (``helpers.study.manifest``: the
config, the key and each table's SHA-256) is written last: a run without one is interrupted, and
a run whose manifest does not verify is reported and redone, never read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from helpers.errors import UserError
from helpers.files import sha256_text, write_json, write_table
from helpers.paths import ROOT, inside, reports_root
from helpers.study.manifest import MANIFEST, problem, read_manifest, table_file, write_manifest

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
        self.root = inside(reports_root(root), "store")
        self._reported: set[Path] = set()  # runs already reported as failing verification

    def run_dir(self, config: dict) -> Path:
        return inside(self.root, config["experiment"], config["profile"], run_key(config))

    def _trusted(self, folder: Path) -> bool:
        """Whether a run's manifest verifies; a run that fails is reported once, then redone."""
        why = problem(folder)
        if why is not None and (folder / MANIFEST).exists() and folder not in self._reported:
            self._reported.add(folder)
            print(f"stored run {folder} fails verification ({why}); redoing it", file=sys.stderr)
        return why is None

    def is_done(self, config: dict) -> bool:
        return self._trusted(self.run_dir(config))

    def save(
        self, config: dict, metrics: pd.DataFrame, tables: dict[str, pd.DataFrame] | None = None
    ) -> Path:
        """Store a finished run; ``metrics`` has columns split, metric, value[, ci_low, ci_high].

        ``tables`` are further per-run tables (predictions, history, coefficients ...).
        """
        folder = self.run_dir(config)
        (folder / MANIFEST).unlink(missing_ok=True)  # the run is unfinished until it is rewritten
        write_json(folder / "config.json", config)
        names = ["metrics"]
        write_table(folder / table_file("metrics"), tidy(config, metrics))
        for name, frame in (tables or {}).items():
            if frame is not None and len(frame):
                write_table(folder / table_file(name), frame)
                names.append(name)
        write_manifest(folder, config, run_key(config), names)
        return folder

    def has_table(self, config: dict, name: str) -> bool:
        """Whether a finished run lists the table ``name`` in its manifest."""
        manifest = read_manifest(self.run_dir(config)) if self.is_done(config) else None
        return manifest is not None and table_file(name) in manifest["files"]

    def add_table(self, config: dict, name: str, frame: pd.DataFrame) -> None:
        """Add a table derived later (the degradation curve) to a finished run, then re-list it."""
        folder = self.run_dir(config)
        manifest = read_manifest(folder) if self.is_done(config) else None
        if manifest is None:
            raise UserError(f"stored run {folder} is not finished; run it before adding {name}")
        write_table(folder / table_file(name), frame)
        names = [f.removesuffix(".parquet") for f in manifest["files"]]
        write_manifest(folder, manifest["config"], manifest["key"], sorted({*names, name}))

    def load(self, config: dict, name: str = "metrics") -> pd.DataFrame:
        """A table of a finished run, read only after its manifest verifies."""
        folder = self.run_dir(config)
        if not self.has_table(config, name):
            raise UserError(
                f"stored run {folder} has no verified {table_file(name)}; "
                "rerun the experiment to redo it"
            )
        return pd.read_parquet(folder / table_file(name))

    def computes(self, profile: str) -> list[dict[str, str]]:
        """The compute records (device, precision) a profile's stored source runs were made
        under, each once: what a store made on another machine is read with."""
        seen: dict[str, dict[str, str]] = {}
        for path in sorted(self.root.glob(inside(".", "*", profile, "*", MANIFEST).as_posix())):
            if path.parent.relative_to(self.root).parts[0].startswith("_"):
                continue
            config = (read_manifest(path.parent) or {}).get("config", {})
            if config.get("method") == "source" and "compute" in config:
                seen.setdefault(json.dumps(config["compute"], sort_keys=True), config["compute"])
        return list(seen.values())

    def collect(
        self, name: str = "metrics", experiments=None, profile: str | None = None, keys=None
    ) -> pd.DataFrame:
        """Concatenate one table over every verified run (optionally filtered: experiments, a
        profile's area, and ``keys``, the run keys of a plan: ``helpers.study.inventory``).

        Rows are identified by the run's config in its manifest, not by the editable
        config.json; a run that fails verification is reported and left out.
        """
        frames = []
        pattern = inside(".", "*", profile or "*", "*", MANIFEST)  # a name cannot climb out
        for path in sorted(self.root.glob(pattern.as_posix())):
            folder = path.parent
            area = folder.relative_to(self.root).parts[0]  # axis runs sit a level deeper
            if area.startswith("_") or (experiments and area not in experiments):
                continue  # "_" areas hold shared pieces (source models), not experiments' runs
            if keys is not None and folder.name not in keys:
                continue  # outside the plan: an earlier configuration's run
            if not self._trusted(folder):
                continue
            manifest = read_manifest(folder)
            if table_file(name) not in manifest["files"]:
                continue
            frame = pd.read_parquet(folder / table_file(name))
            for k in ID_COLUMNS:  # identify rows by their run, keeping their own columns
                if k not in frame:
                    frame[k] = manifest["config"].get(k)
            if "run_key" not in frame:
                frame["run_key"] = folder.name  # the folder is the run's key
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


def stored(study, table: str = "metrics", methods=None, keys=None) -> pd.DataFrame:
    """A stored table of a study's experiment and profile (``helpers.study.experiment``),
    optionally for some methods only, and for the runs of a plan only (``keys``: e.g.
    ``set(run_methods(...)["run_key"])``)."""
    frame = study.store.collect(table, [study.experiment.name], study.profile.name, keys)
    if methods is not None and len(frame):
        frame = frame[frame["method"].isin(list(methods))]
    return frame.reset_index(drop=True)
