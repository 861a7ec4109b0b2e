"""An ipywidgets explorer of stored results for JupyterLab: pick experiment, metric and delta."""

from __future__ import annotations

import pandas as pd

from helpers.report import plots
from helpers.report.analysis import summarise


def explorer(metrics: pd.DataFrame):
    """Dropdowns over experiment, metric and delta redrawing the method comparison."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

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
    out = widgets.Output()

    def draw(*_):
        chosen = tests[tests["experiment"] == experiment.value]
        if delta.value != "all":
            chosen = chosen[chosen["delta"] == delta.value]
        with out:
            out.clear_output(wait=True)
            if chosen.empty:
                print("no stored runs for this choice")
                return
            fig = plots.methods(
                summarise(chosen, metric.value), f"{experiment.value}: {metric.value} by method"
            )
            display(fig)
            plt.close(fig)

    for w in (experiment, metric, delta):
        w.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([experiment, metric, delta]), out])
