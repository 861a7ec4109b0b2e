"""The report series: committed notebooks are thin and stripped; all four run under smoke."""

import json

import nbformat
import pytest

from helpers.paths import NOTEBOOKS
from helpers.report.runner import ANALYSIS, PER_EXPERIMENT
from tests.conftest import SMOKE_EXPERIMENT, git_status

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


@pytest.mark.slow
def test_a_smoke_run_leaves_the_checkout_clean(smoke_reports, status_before_smoke):
    """figures/ holds the reference profile's committed figures: a smoke run never touches
    them; its own go under the reports folder."""
    _, figures = smoke_reports
    assert (figures / SMOKE_EXPERIMENT / "01_degradation.png").is_file()
    assert (figures / "analysis" / "04_methods_grid.png").is_file()
    assert git_status() == status_before_smoke


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_into_an_html_report_with_figures(smoke_reports, name):
    out, figures = smoke_reports
    folder = out / ("analysis" if name == ANALYSIS else "books_to_kitchen")
    nb = nbformat.read(folder / f"{name}.ipynb", as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert nb.metadata["papermill"]["parameters"]["profile"] == "smoke"
    html = (folder / f"{name}.html").read_text()
    assert html.count("data:image/png") >= 1
    assert list(figures.glob("*/*.png"))
