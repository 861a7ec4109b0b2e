"""The report series: committed notebooks are thin and stripped; all four run under smoke."""

import json
import subprocess

import nbformat
import pytest

from helpers.paths import NOTEBOOKS, ROOT
from helpers.report.runner import ANALYSIS, PER_EXPERIMENT, run_report

NAMES = [*PER_EXPERIMENT, ANALYSIS]
FORBIDDEN = ("def ", "class ", "try:", "for ", "while ", "/", ".ipynb")


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_is_stripped_and_thin(name):
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and not c.get("execution_count") for c in code)
    assert "parameters" in code[0]["metadata"].get("tags", [])
    assert nb["cells"][0]["cell_type"] == "markdown" and "Question" in "".join(
        nb["cells"][0]["source"]
    )
    for cell in code[1:]:
        src = "".join(cell["source"])
        lines = [line for line in src.splitlines() if not line.lstrip().startswith("#")]
        for token in FORBIDDEN:
            # "/" only matters as a path separator; the f-strings in titles use none.
            assert not any(token in line for line in lines), f"{name}: {token!r} in {src!r}"


def git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture(scope="module")
def reports(fixture_data, tmp_path_factory):
    """The smoke profile with default figure folders: they must land under the reports."""
    out = tmp_path_factory.mktemp("reports")
    before = git_status()
    run_report("smoke", ["books_to_kitchen"], data_dir=fixture_data, reports_dir=out)
    return out, out / "figures" / "smoke", before


@pytest.mark.slow
def test_a_smoke_run_leaves_the_checkout_clean(reports):
    """figures/ holds the quick profile's committed figures: a smoke run never touches them."""
    _, figures, before = reports
    assert (figures / "books_to_kitchen" / "01_degradation.png").is_file()
    assert (figures / "analysis" / "04_methods_grid.png").is_file()
    assert git_status() == before


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_into_an_html_report_with_figures(reports, name):
    out, figures, _ = reports
    folder = out / ("analysis" if name == ANALYSIS else "books_to_kitchen")
    nb = nbformat.read(folder / f"{name}.ipynb", as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert nb.metadata["papermill"]["parameters"]["profile"] == "smoke"
    html = (folder / f"{name}.html").read_text()
    assert html.count("data:image/png") >= 1
    assert list(figures.glob("*/*.png"))
