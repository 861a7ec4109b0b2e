"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.paths import ROOT

SHARED_DATA = ROOT.parent / "shared" / "data"  # offline mirror of the public corpora
FIXTURE_DATA = ROOT / "tests" / "fixtures" / "data"  # synthetic corpora in the published layouts
SMOKE_EXPERIMENT = "books_to_kitchen"  # the experiment of the shared smoke report run


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The offline mirror of the public corpora (../shared/data); skip tests when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real-data test: the corpus mirror {SHARED_DATA} is absent "
            "(only build/CI machines have it)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def smoke_reports(tmp_path_factory) -> tuple[Path, Path]:
    """One smoke-profile report run on the fixture corpora, shared by the tests that read it:
    (reports folder, figures folder)."""
    from helpers.report.runner import run_report

    out = tmp_path_factory.mktemp("reports")
    figures = tmp_path_factory.mktemp("figures")
    run_report(
        "smoke", [SMOKE_EXPERIMENT], data_dir=FIXTURE_DATA, reports_dir=out, figures_dir=figures
    )
    return out, figures
