"""Every path the project uses, built in one place from the repository root."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePath

from helpers.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
FIGURES = ROOT / "figures"
REPORTS = ROOT / "reports"  # executed notebooks, HTML, result store (git-ignored)
RESULTS = ROOT / "results"  # the published profile's stored runs (their tables are committed)
DEFAULT_DATA_ROOT = ROOT / "data" / "raw"
SOURCES_FILE = ROOT / "data" / "sources.toml"
EXPERIMENTS_FILE = ROOT / "experiments.yaml"
DATA_ENV = "CBV_DATA_DIR"
EXPERIMENTS_ENV = "CBV_EXPERIMENTS"  # another experiments file (notebook kernels inherit it)
REPORTS_ENV = "CBV_REPORTS_DIR"
FIGURES_ENV = "CBV_FIGURES_DIR"
STORED_ONLY_ENV = "CBV_STORED_ONLY"  # "1": read the stored runs, train nothing (make results)
# The profile whose figures are committed under figures/ and shown in the README; every other
# profile (and any run on declared data) writes under <reports>/figures/<profile>/ instead.
PUBLISHED_PROFILE = "reference"


# Experiment, profile and axis names become folder names under the reports root: one safe shape.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_name(kind: str, name, where: str = "") -> str:
    """``name`` when it is safe as a folder name (``SAFE_NAME``, no ``..``), else a UserError."""
    if isinstance(name, str) and SAFE_NAME.fullmatch(name) and ".." not in name:
        return name
    at = f"{where}: " if where else ""
    raise UserError(
        f"{at}{kind} name {name!r} cannot be a folder name; rename it with letters, digits, "
        "'_', '-' and '.' only, starting with a letter or digit (no '..')"
    )


def inside(root: str | os.PathLike, *parts: str | os.PathLike) -> Path:
    """``root`` joined with ``parts``: the one way a path under a reports or data root is built.

    Each part is a relative path (``smoke/tuning`` is two folders); a UserError when one is
    absolute or steps up with ``..``, so no name read from a file can leave its root.
    """
    for part in parts:
        pure = PurePath(part)
        if pure.is_absolute() or ".." in pure.parts:
            raise UserError(
                f"{str(part)!r} would lead outside {root}; name it without '/' at the start "
                "and without '..'"
            )
    return Path(root).joinpath(*parts)


def _resolve(explicit, env: str, default: Path) -> Path:
    """The explicit argument, else the environment variable, else the default."""
    chosen = explicit or os.environ.get(env)
    return Path(chosen).expanduser().resolve() if chosen else default


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """Where the corpora are: the argument, else $CBV_DATA_DIR, else data/raw/."""
    return _resolve(explicit, DATA_ENV, DEFAULT_DATA_ROOT)


def require_data_root(explicit: str | os.PathLike | None = None) -> Path:
    """The data root (as ``data_root``), or a UserError naming the fix when it does not exist."""
    root = data_root(explicit)
    if not root.is_dir():
        raise UserError(
            f"data root {root} does not exist; fetch the corpora with "
            f"`python -m helpers download --data-dir {root}`, or point --data-dir "
            "(or $CBV_DATA_DIR) at a folder that holds them"
        )
    return root


def reports_root(explicit: str | os.PathLike | None = None) -> Path:
    """Where reports and stored results go: the argument, else $CBV_REPORTS_DIR, else reports/."""
    return _resolve(explicit, REPORTS_ENV, REPORTS)


def results_root(
    explicit: str | os.PathLike | None = None,
    profile: str | None = None,
    reports: str | os.PathLike | None = None,
) -> Path:
    """Where stored runs are read and written (the folder holding store/): the argument, else
    $CBV_REPORTS_DIR, else results/ for the published profile (its committed run), else the
    reports folder (``reports_root(reports)``)."""
    default = RESULTS if profile == PUBLISHED_PROFILE else reports_root(reports)
    return _resolve(explicit, REPORTS_ENV, default)


def figures_root(
    explicit: str | os.PathLike | None = None,
    profile: str | None = None,
    reports: str | os.PathLike | None = None,
    published: bool | None = None,
) -> Path:
    """Where figures go: the argument, else $CBV_FIGURES_DIR, else by profile.

    The committed figures/ takes only the published profile's figures (``published`` defaults
    to: ``profile`` is None or PUBLISHED_PROFILE); anything else goes to
    <reports>/figures/<profile>/ (git-ignored), so no run clobbers what the README shows.
    """
    if published is None:
        published = profile in (None, PUBLISHED_PROFILE)
    default = FIGURES if published else inside(reports_root(reports), "figures", str(profile))
    return _resolve(explicit, FIGURES_ENV, default)


def experiments_file(explicit: str | os.PathLike | None = None) -> Path:
    """The configuration: the argument, else $CBV_EXPERIMENTS, else experiments.yaml."""
    return _resolve(explicit, EXPERIMENTS_ENV, EXPERIMENTS_FILE)


def require_writable(folder: str | os.PathLike, what: str) -> Path:
    """Create ``folder`` if needed and prove a file can be written there, or a UserError."""
    folder = Path(folder)
    probe = folder / f".write-test-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UserError(
            f"the {what} folder {folder} is not writable ({e.strerror}); fix its permissions "
            f"or choose another with --{what}-dir"
        ) from None
    return folder
