"""Interactive use as the README describes it: notebook 03 cell by cell in a real Jupyter kernel
(smoke profile, fixture corpora), then the analysis explorer's widgets built and redrawn."""

import json
import os

import pandas as pd
import pytest
from jupyter_client import KernelManager

from helpers.paths import NOTEBOOKS, ROOT
from helpers.report.console import kernel_config
from helpers.study.progress import LINES_ENV
from tests.conftest import FIXTURE_DATA, SMOKE_EXPERIMENT

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def run(kc, code: str) -> list[dict]:
    """Execute code in the kernel; its IOPub messages. Fails on an error in the cell."""
    messages = []
    reply = kc.execute_interactive(code, output_hook=messages.append, timeout=600)
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert reply["content"]["status"] == "ok" and not errors, (code, errors)
    return messages


@pytest.mark.slow
def test_notebook_03_runs_in_a_kernel_and_the_explorer_widgets_build(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != LINES_ENV}  # as in JupyterLab: bars on
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    stderr = tmp_path / "kernel.stderr"
    km = KernelManager(kernel_name="python3", config=kernel_config())
    with open(stderr, "w") as err:
        km.start_kernel(cwd=str(NOTEBOOKS), env=env, stderr=err)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        cells = json.loads((NOTEBOOKS / "03_cbv_training.ipynb").read_text())["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        # The parameters cell as committed, then the user's edit of it.
        run(kc, code[0])
        run(
            kc,
            f"experiment = {SMOKE_EXPERIMENT!r}\nprofile = 'smoke'\n"
            f"data_dir = {str(FIXTURE_DATA)!r}\nresults_dir = {str(tmp_path / 'reports')!r}\n"
            f"figures_dir = {str(tmp_path / 'figures')!r}",
        )
        shown = [m for cell in code[1:] for m in run(kc, cell)]
        assert any("image/png" in m["content"].get("data", {}) for m in shown)
        # Step bars are tqdm widgets here, where someone watches them.
        assert any(WIDGET_VIEW in m["content"].get("data", {}) for m in shown)

        # Notebook 04's explorer over the runs just stored: a widget view, redrawn on a change.
        built = run(
            kc,
            "from helpers.report.explorer import explorer\n"
            "from helpers.study.store import Store\n"
            "view = explorer(Store(results_dir).collect('metrics', [experiment], profile))\n"
            "view",
        )
        result = [m["content"]["data"] for m in built if m["msg_type"] == "execute_result"]
        assert result and WIDGET_VIEW in result[0] and result[0][WIDGET_VIEW]["model_id"]
        # A new choice redraws the figure: new PNG bytes in the Image widget.
        run(kc, "drawn = view.children[2].value\nview.children[0].children[1].value = 'accuracy'")
        printed = run(kc, "print(drawn[:4] == b'\\x89PNG', view.children[2].value != drawn)")
        assert [m["content"]["text"] for m in printed if m["msg_type"] == "stream"] == [
            "True True\n"
        ]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert "without encryption" not in stderr.read_text()


def test_the_explorer_needs_no_front_end_to_finish():
    """No Output widget: nbclient plays its front end during a headless run, messaging the
    kernel while a cell runs (a report run once waited on that for good). The figure is an Image
    whose bytes change with the choice."""
    from helpers.report.explorer import explorer

    rows = [
        {
            "run_key": f"{m}{d}",
            "experiment": "e",
            "method": m,
            "delta": d,
            "seed": 0,
            "split": "test",
            "metric": metric,
            "value": v,
            "ci_low": v - 0.1,
            "ci_high": v + 0.1,
        }
        for m, v in (("all", 0.7), ("none", 0.5))
        for d in (0.5, 1.0)
        for metric in ("accuracy", "macro_f1")
    ]
    view = explorer(pd.DataFrame(rows))
    widgets = [view]
    for w in widgets:
        widgets += list(getattr(w, "children", ()))
    assert "OutputModel" not in {w._model_name for w in widgets}
    image = next(w for w in widgets if w._model_name == "ImageModel")
    drawn = image.value
    assert drawn[:8] == b"\x89PNG\r\n\x1a\n"
    view.children[0].children[1].value = "accuracy"
    assert image.value != drawn
