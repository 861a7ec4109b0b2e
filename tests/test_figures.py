"""Figures: every one shown in its kernel, written once per content, readable by everyone, and
legends that tell seeds apart."""

import os
import stat

import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pandas as pd
import pytest

from helpers.files import new_file_mode
from helpers.paths import ROOT
from helpers.report import plots


@pytest.mark.slow
def test_every_figure_drawn_in_the_project_style_is_shown_in_a_kernel(tmp_path, monkeypatch):
    """A first figure drawn in the style once switched off the display of every later one."""
    import papermill

    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.getenv("PYTHONPATH")]))
    )
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import matplotlib.pyplot as plt\nfrom helpers.report import plots\n"
            "draw = plots.styled(lambda k: plt.subplots()[1].plot([0, k]))"
        ),
        nbformat.v4.new_code_cell("first = draw(1)"),  # shown by the inline backend, not returned
        nbformat.v4.new_code_cell("second = draw(2)"),
        nbformat.v4.new_code_cell("third = plt.subplots()[1].plot([0, 3])"),  # a plain one after
    ]
    nbformat.write(nb, tmp_path / "in.ipynb")
    papermill.execute_notebook(
        str(tmp_path / "in.ipynb"),
        str(tmp_path / "out.ipynb"),
        kernel_name="python3",
        progress_bar=False,
    )
    cells = nbformat.read(tmp_path / "out.ipynb", 4).cells[1:]
    shown = [any("image/png" in o.get("data", {}) for o in c.outputs) for c in cells]
    assert shown == [True, True, True]


def trajectories(seeds=3) -> pd.DataFrame:
    """CBV coefficient histories over several seeds: the trajectory figure bootstraps a band."""
    rng = np.random.default_rng(0)
    rows = [
        {
            "method": "cbv_weight",
            "delta": 0.5,
            "seed": s,
            "step": t,
            "metric": f"alpha/{g}",
            "value": min(1.0, 0.5 + 0.05 * t + rng.normal(0, 0.05)),
        }
        for s in range(seeds)
        for t in range(25)
        for g in ("embeddings", "layer.0", "head")
    ]
    return pd.DataFrame(rows)


def test_a_figure_is_written_once_per_content_and_readable_by_all(tmp_path):
    first = plots.save(plots.coefficient_trajectories(trajectories(), "t"), "e", "alphas", tmp_path)
    path = first.path
    before = os.stat(path)
    again = plots.save(plots.coefficient_trajectories(trajectories(), "t"), "e", "alphas", tmp_path)
    after = os.stat(path)
    assert again.path == path and (after.st_ino, after.st_mtime_ns) == (
        before.st_ino,
        before.st_mtime_ns,
    )
    assert stat.S_IMODE(after.st_mode) == new_file_mode()  # not mkstemp's private 0o600
    assert first._repr_png_() == path.read_bytes()  # the notebook shows the file written
    assert not plt.get_fignums()  # saved figures are closed: shown once, through the file


def test_the_degradation_legend_tells_seeds_apart():
    rows = []
    for seed in (0, 1, 2):
        for d in (0.0, 0.5, 1.0):
            for estimate in ("expected", "sampled", "majority"):
                v = 0.8 - 0.2 * d + 0.01 * seed
                rows.append(
                    {
                        "experiment": "e",
                        "seed": seed,
                        "delta": d,
                        "estimate": estimate,
                        "metric": "macro_f1",
                        "value": v,
                        "ci_low": v - 0.05,
                        "ci_high": v + 0.05,
                    }
                )
    fig = plots.degradation(pd.DataFrame(rows), metrics=("macro_f1",))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)
    assert len(labels) == len(set(labels)), labels
    assert "expected, mean of 3 seeds" in labels and "expected, range over the 3 seeds" in labels
