"""Every path the project uses, built in one place from the repository root."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
FIGURES = ROOT / "figures"
REPORTS = ROOT / "reports"          # executed notebooks, HTML, result store (git-ignored)
DEFAULT_DATA_ROOT = ROOT / "data" / "raw"
SOURCES_FILE = ROOT / "data" / "sources.toml"
EXPERIMENTS_FILE = ROOT / "experiments.yaml"
DATA_ENV = "CBV_DATA_DIR"
REPORTS_ENV = "CBV_REPORTS_DIR"
FIGURES_ENV = "CBV_FIGURES_DIR"


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """Resolve the data root: the explicit argument, else $CBV_DATA_DIR, else data/raw/."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser().resolve()
    return DEFAULT_DATA_ROOT


def reports_root(explicit: str | os.PathLike | None = None) -> Path:
    """Resolve where reports and stored results go: argument, else $CBV_REPORTS_DIR, else reports/."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    if os.environ.get(REPORTS_ENV):
        return Path(os.environ[REPORTS_ENV]).expanduser().resolve()
    return REPORTS


def figures_root(explicit: str | os.PathLike | None = None) -> Path:
    """Resolve where figures go: argument, else $CBV_FIGURES_DIR, else figures/."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    if os.environ.get(FIGURES_ENV):
        return Path(os.environ[FIGURES_ENV]).expanduser().resolve()
    return FIGURES
