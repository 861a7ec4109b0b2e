"""A report run ends: every cell has a time limit (training cells none by default), a cell past
it ends the notebook in one line naming it and the cell, and a failed notebook never replaces a
good report."""

import json
import shutil

import nbformat
import pytest

from helpers.errors import UserError
from helpers.paths import NOTEBOOKS
from helpers.report.limits import CELL_TIMEOUT_ENV, DEFAULT_CELL_TIMEOUT, TRAINS, CellLimit
from helpers.report.runner import ANALYSIS, PER_EXPERIMENT, execute
from tests.conftest import SMOKE_EXPERIMENT

NAMES = [*PER_EXPERIMENT, ANALYSIS]
# The study's calls that may train (a source model, a grid of methods): their cells must say so.
TRAINING_CALLS = ("run_methods(", "degradation(study")


def code_cells(name: str) -> list[dict]:
    cells = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())["cells"]
    return [c for c in cells if c["cell_type"] == "code"]


@pytest.mark.parametrize("name", NAMES)
def test_cells_that_train_and_only_they_are_tagged(name):
    for cell in code_cells(name):
        source = "".join(cell["source"])
        trains = any(call in source for call in TRAINING_CALLS)
        assert trains == (TRAINS in cell["metadata"].get("tags", [])), (name, source)


def test_each_cell_gets_its_limit(monkeypatch):
    monkeypatch.delenv(CELL_TIMEOUT_ENV, raising=False)
    limit = CellLimit(NOTEBOOKS / "02_surgical_baselines.ipynb", "x/02")
    cells = nbformat.read(NOTEBOOKS / "02_surgical_baselines.ipynb", 4).cells
    tagged = [c for c in cells if TRAINS in c.metadata.get("tags", [])]
    plain = [c for c in cells if c.cell_type == "code" and c not in tagged]
    assert tagged and plain
    assert {limit(c) for c in tagged} == {None}  # a grid may train for hours
    assert {limit(c) for c in plain} == {DEFAULT_CELL_TIMEOUT}
    monkeypatch.setenv(CELL_TIMEOUT_ENV, "42")
    limit = CellLimit(NOTEBOOKS / "02_surgical_baselines.ipynb", "x/02")
    assert {limit(c) for c in cells} == {42}  # one limit for every cell, training ones too
    monkeypatch.setenv(CELL_TIMEOUT_ENV, "ten minutes")
    with pytest.raises(UserError, match="whole number of seconds"):
        CellLimit(NOTEBOOKS / "02_surgical_baselines.ipynb", "x/02")


def notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def test_a_cell_past_its_limit_ends_in_one_line_and_the_good_report_stays(tmp_path, monkeypatch):
    source = notebook(tmp_path / "slow.ipynb", "x = 1", "import time\ntime.sleep(120)")
    report = tmp_path / "reports" / "demo" / "slow.ipynb"
    report.parent.mkdir(parents=True)
    report.write_text("the good report")
    report.with_suffix(".html").write_text("its page")
    monkeypatch.setenv(CELL_TIMEOUT_ENV, "3")
    with pytest.raises(UserError) as e:
        execute("slow", report, {}, notebook=source)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith("demo/slow: cell 2 of 2 ('import time') ran past its limit of 3 s")
    assert report.read_text() == "the good report"
    assert report.with_suffix(".html").read_text() == "its page"
    failed = nbformat.read(report.with_suffix(".failed.ipynb"), 4)  # kept for a look
    assert failed.cells[0].outputs == [] and failed.cells[0].execution_count == 1
    assert not [p for p in report.parent.iterdir() if p.name.startswith(".")]  # no leftovers


@pytest.mark.slow
def test_a_failed_analysis_leaves_the_good_report_and_the_index(smoke_reports, tmp_path):
    from helpers.report.index import write_index

    out, _ = smoke_reports
    copy = tmp_path / "reports"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("store"))
    good = copy / "analysis" / f"{ANALYSIS}.ipynb"
    before = {p.name: p.read_bytes() for p in good.parent.iterdir()}
    # Notebook 04 as committed, failing in a last cell after everything else ran.
    broken = nbformat.read(NOTEBOOKS / f"{ANALYSIS}.ipynb", 4)
    broken.cells.append(nbformat.v4.new_code_cell("raise RuntimeError('broken on purpose')"))
    nbformat.write(broken, tmp_path / "broken.ipynb")
    params = {"profile": "smoke", "results_dir": str(out), "figures_dir": str(tmp_path / "f")}
    with pytest.raises(Exception, match="broken on purpose"):
        execute(ANALYSIS, good, params, notebook=tmp_path / "broken.ipynb")
    after = {p.name: p.read_bytes() for p in good.parent.iterdir()}
    assert after.pop(f"{ANALYSIS}.failed.ipynb")  # the failed run, beside the good report
    assert after == before  # notebook and page as they were
    errors = [
        o
        for c in nbformat.read(good.with_suffix(".failed.ipynb"), 4).cells
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    assert errors  # its traceback is there to read
    index = write_index("smoke", copy, results_dir=out).read_text()
    assert index.count("data:image/png;base64,") == 2  # the analysis figure is still there
    assert f'href="{SMOKE_EXPERIMENT}/{PER_EXPERIMENT[0]}.html"' in index
