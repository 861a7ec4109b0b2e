"""The committed study reads in one command: rendering results/ (`make results`) trains
nothing and leaves the checkout as it was: figures byte-identical, tables untouched."""

import pytest

from helpers.paths import FIGURES, PUBLISHED_PROFILE, REPORTS_ENV, RESULTS, ROOT, results_root
from helpers.report.index import write_index
from helpers.report.runner import ANALYSIS, _nothing_stored, execute, run_report
from helpers.study.store import Store
from tests.conftest import git_status


def test_the_published_profile_reads_the_committed_run(tmp_path, monkeypatch):
    monkeypatch.delenv(REPORTS_ENV, raising=False)
    assert results_root(None, PUBLISHED_PROFILE) == RESULTS == ROOT / "results"
    assert results_root(None, "smoke", tmp_path) == tmp_path  # others: beside their reports
    assert results_root(tmp_path / "r", PUBLISHED_PROFILE) == tmp_path / "r"
    assert (RESULTS / "store").is_dir()


@pytest.mark.slow
def test_rendering_the_committed_analysis_leaves_git_status_clean(tmp_path):
    """Notebook 04 and the index over results/ (no corpora needed): its figures go to the
    committed figures/analysis/ and must come out byte for byte as committed. While the
    committed run holds no adapted run yet (its source runs and part of its tuning are in),
    the runner does not render 04 at all: that is checked instead, with the index."""
    before = git_status()
    reports = tmp_path / "reports"
    params = {"profile": PUBLISHED_PROFILE, "results_dir": str(RESULTS)}
    metrics = Store(RESULTS).collect("metrics", profile=PUBLISHED_PROFILE)
    job = (ANALYSIS, reports / "analysis", params)
    if set(metrics["method"]) == {"source"}:
        assert _nothing_stored(PUBLISHED_PROFILE, RESULTS, None, [job]) == {("analysis", ANALYSIS)}
        assert not (FIGURES / "analysis").exists()  # no figure of an earlier run is left
    else:
        execute(
            ANALYSIS,
            reports / "analysis" / f"{ANALYSIS}.ipynb",
            params | {"figures_dir": str(FIGURES)},
        )
    write_index(PUBLISHED_PROFILE, reports, results_dir=RESULTS)
    assert git_status() == before


@pytest.mark.slow
@pytest.mark.real_data
def test_make_results_renders_the_committed_study_and_leaves_git_status_clean(
    shared_data, tmp_path
):
    """What `make results` runs, every notebook of every experiment (about 10 minutes)."""
    before = git_status()
    html = run_report(
        PUBLISHED_PROFILE, data_dir=shared_data, reports_dir=tmp_path, stored_only=True
    )
    assert len(html) >= 6  # every 01; 02-04 where the committed run holds their runs
    assert git_status() == before
