"""Interactive use as the README describes it: notebook 03 cell by cell in a real Jupyter kernel
(smoke profile, fixture corpora), then the analysis explorer's widgets built and redrawn."""

import json
import os

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
            f"data_dir = {str(FIXTURE_DATA)!r}\nreports_dir = {str(tmp_path / 'reports')!r}\n"
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
            "view = explorer(Store(reports_dir).collect('metrics', [experiment], profile))\n"
            "view",
        )
        result = [m["content"]["data"] for m in built if m["msg_type"] == "execute_result"]
        assert result and WIDGET_VIEW in result[0] and result[0][WIDGET_VIEW]["model_id"]
        redrawn = run(kc, "view.children[0].children[1].value = 'accuracy'")
        assert any("image/png" in m["content"].get("data", {}) for m in redrawn)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert "without encryption" not in stderr.read_text()
