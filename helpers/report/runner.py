"""The report runner: execute the numbered notebooks with papermill, render each to HTML.

``python -m helpers report --profile quick --experiments books_to_dvd`` writes
reports/<experiment>/NN_name.ipynb and .html for notebooks 01-03 of every experiment, then
reports/analysis/04_analysis.{ipynb,html} across them. Work already stored for the same
configuration is skipped by the study itself, so a rerun only executes (cheap) notebooks.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from helpers.files import write_text
from helpers.paths import NOTEBOOKS, ROOT
from helpers.report.preflight import plan_run

PER_EXPERIMENT = ("01_shift_degradation", "02_surgical_baselines", "03_cbv_training")
ANALYSIS = "04_analysis"


def to_html(notebook: Path) -> Path:
    """Render an executed notebook to a standalone HTML file beside it (images embedded)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    html = notebook.with_suffix(".html")
    write_text(html, body)
    return html


def execute(name: str, output: Path, parameters: dict) -> Path:
    """Execute one notebook with papermill (kernel of this Python) and render it to HTML."""
    import papermill

    output.parent.mkdir(parents=True, exist_ok=True)
    # The kernel must import helpers whether or not the project is pip-installed.
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(ROOT) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *paths])
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"),
        str(output),
        parameters=parameters,
        cwd=str(NOTEBOOKS),
        progress_bar=sys.stderr.isatty(),
        kernel_name="python3",
        log_output=False,
    )
    return to_html(output)


def run_report(
    profile: str = "quick",
    experiments=None,
    data_dir=None,
    reports_dir=None,
    figures_dir=None,
    analysis: bool = True,
) -> list[Path]:
    """Run the whole series; returns the HTML reports.

    Configuration, data and output folders are checked first (``preflight.plan_run``). Figures
    of the quick profile's built-in experiments go to the committed figures/; any other run's
    to reports/figures/<profile>/.
    """
    plan = plan_run(profile, experiments, data_dir, reports_dir, figures_dir)
    names = [e.name for e in plan.experiments]
    reports = plan.reports
    common = {"profile": profile, "data_dir": str(plan.data_root), "reports_dir": str(reports)}
    jobs = [(n, e) for e in names for n in PER_EXPERIMENT]
    done, failed = [], []
    for i, (name, experiment) in enumerate(jobs, 1):
        out = reports / experiment / f"{name}.ipynb"
        print(f"[{i}/{len(jobs) + analysis}] {experiment} {name} ...", flush=True)
        start = time.perf_counter()
        try:
            figures = str(plan.figures[experiment])
            done.append(
                execute(name, out, {**common, "experiment": experiment, "figures_dir": figures})
            )
        except Exception as e:  # a failed notebook must not stop the other experiments
            failed.append(
                f"{experiment}/{name}: {type(e).__name__}: {str(e)[-500:]}\n"
                f"  partial notebook: {out}"
            )
            print(f"  FAILED ({failed[-1]})", flush=True)
            continue
        print(f"  done in {time.perf_counter() - start:.0f} s -> {done[-1]}", flush=True)
    if analysis:
        out = reports / "analysis" / f"{ANALYSIS}.ipynb"
        print(f"[{len(jobs) + 1}/{len(jobs) + 1}] analysis {ANALYSIS} ...", flush=True)
        try:
            shared = {k: v for k, v in common.items() if k != "data_dir"}  # 04 never reads data
            shared["figures_dir"] = str(plan.figures["analysis"])
            done.append(execute(ANALYSIS, out, {**shared, "experiments": names}))
        except Exception as e:
            failed.append(f"analysis: {type(e).__name__}: {str(e)[-500:]}")
    if failed:
        print(
            "\nFailed notebooks (the others completed and are stored):\n" + "\n".join(failed),
            file=sys.stderr,
        )
        raise SystemExit(1)
    print(f"\n{len(done)} reports under {reports}")
    return done
