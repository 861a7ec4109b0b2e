"""An ipywidgets explorer of stored results for JupyterLab: pick experiment, metric and delta.

The figure is an ``Image`` widget whose PNG bytes are replaced on each choice. No ``Output``
widget: a headless run (papermill, nbclient) plays the front end of an Output widget itself,
sending the kernel messages while a cell runs, and a report run once waited on that exchange
for good. An Image is state the kernel sends and nobody answers, so a run without a front end
finishes as it would with one.
"""

from __future__ import annotations

import pandas as pd

from helpers.report import plots
from helpers.report.analysis import summarise
from helpers.report.figure_files import png_bytes


def explorer(metrics: pd.DataFrame):
    """Dropdowns over experiment, metric and delta redrawing the method comparison."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    tests = metrics[metrics["split"] == "test"]
    experiment = widgets.Dropdown(
        options=sorted(tests["experiment"].unique()), description="experiment"
    )
    metric = widgets.Dropdown(
        options=sorted(tests["metric"].unique()),
        value="macro_f1" if "macro_f1" in set(tests["metric"]) else None,
        description="metric",
    )
    delta = widgets.Dropdown(options=["all", *sorted(tests["delta"].unique())], description="delta")
    image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
    note = widgets.Label()

    def draw(*_):
        chosen = tests[tests["experiment"] == experiment.value]
        if delta.value != "all":
            chosen = chosen[chosen["delta"] == delta.value]
        note.value = "" if len(chosen) else "no stored runs for this choice"
        if chosen.empty:
            return
        title = f"{experiment.value}: {metric.value} by method"
        fig = plots.methods(summarise(chosen, metric.value), title)
        image.value = png_bytes(fig)
        plt.close(fig)

    for w in (experiment, metric, delta):
        w.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([experiment, metric, delta]), note, image])
