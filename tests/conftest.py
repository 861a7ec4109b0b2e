"""Shared test fixtures: the committed fixture corpora by default, the real mirror on request.

Every test runs on a fresh clone with nothing beside it: its data are the synthetic corpora
under tests/fixtures/data. Tests of facts about the real corpora (exact counts) are marked
``real_data``; they are deselected by default (pyproject.toml) and run with
``pytest -m real_data`` where the mirror ../shared/data (or $CBV_DATA_DIR) is present.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from helpers.paths import DATA_ENV, ROOT

FIXTURE_DATA = Path(__file__).resolve().parent / "fixtures" / "data"  # committed, synthetic
SMOKE_EXPERIMENT = "books_to_kitchen"  # the experiment of the shared smoke report run
AXES_EXPERIMENT = "books_to_dvd"  # the smoke profile's design axes run on this one
# The real corpora: $CBV_DATA_DIR as the suite was started (CI sets it), else the offline mirror.
REAL_DATA = Path(os.environ.get(DATA_ENV) or ROOT.parent / "shared" / "data")
# A notebook cell of the smoke profile takes seconds: a cell stuck for 15 minutes is a lost
# kernel reply (ipykernel 7, loaded machine), failed rather than left to hang the suite.
os.environ.setdefault("CBV_CELL_TIMEOUT", "900")


@pytest.fixture(scope="session", autouse=True)
def _fixture_data_by_default():
    """Point $CBV_DATA_DIR at the fixture corpora, so no test reads a mirror by accident."""
    before = os.environ.get(DATA_ENV)
    os.environ[DATA_ENV] = str(FIXTURE_DATA)
    yield
    if before is None:
        os.environ.pop(DATA_ENV, None)
    else:
        os.environ[DATA_ENV] = before


@pytest.fixture(scope="session")
def fixture_data() -> Path:
    """The committed synthetic corpora, in every published layout (tests/fixtures/README.md)."""
    assert FIXTURE_DATA.is_dir(), "run python tests/fixtures/make_corpora.py"
    return FIXTURE_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real corpora, for tests marked ``real_data`` only (deselected by default)."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real-data test: the corpus mirror {REAL_DATA} is absent")
    return REAL_DATA


def git_status() -> str:
    """The checkout's status, untracked files included (a smoke run must leave it as it was)."""
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture(scope="session")
def status_before_smoke() -> str:
    return git_status()


@pytest.fixture(scope="session")
def smoke_reports(tmp_path_factory, status_before_smoke) -> tuple[Path, Path]:
    """One smoke-profile report run on the fixture corpora, with the default figure folders,
    shared by the tests that read it: (reports folder, figures folder).

    The store holds another experiment's design-axis runs too (AXES_EXPERIMENT, stored before
    the report, as `python -m helpers run` stores them): the analysis and the claims must cover
    every stored experiment of the profile, not only the one the report renders.
    """
    from helpers.report.runner import run_report
    from helpers.study.adaptation import run_axes
    from helpers.study.experiment import open_study

    out = tmp_path_factory.mktemp("reports")
    run_axes(open_study(AXES_EXPERIMENT, "smoke", FIXTURE_DATA, out, progress=False))
    run_report("smoke", [SMOKE_EXPERIMENT], data_dir=FIXTURE_DATA, reports_dir=out)
    return out, out / "figures" / "smoke"
