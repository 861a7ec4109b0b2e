"""The report runner: execute the numbered notebooks with papermill, render each to HTML.

``python -m helpers report --profile quick --experiments books_to_dvd`` writes
reports/<experiment>/NN_name.ipynb and .html for notebooks 01-03 of every experiment, then
reports/analysis/04_analysis.{ipynb,html} across them. Work already stored for the same
configuration is skipped by the study itself, so a rerun only executes (cheap) notebooks.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from helpers.files import write_text
from helpers.paths import NOTEBOOKS, ROOT, figures_root, reports_root, require_data_root
from helpers.spec.experiments import experiment_names, load_experiment, load_profile

PER_EXPERIMENT = ("01_shift_degradation", "02_surgical_baselines", "03_cbv_training")
ANALYSIS = "04_analysis"


def to_html(notebook: Path, html: Path | None = None) -> Path:
    """Render an executed notebook to a standalone HTML file (images embedded), beside it."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    html = html or notebook.with_suffix(".html")
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
    # papermill rewrites its output after every cell: a unique name, so that two report
    # processes on one folder never read each other's half-written notebook; renamed at the end.
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.stem}.", suffix=".ipynb")
    os.close(fd)
    try:
        papermill.execute_notebook(
            str(NOTEBOOKS / f"{name}.ipynb"),
            tmp,
            parameters=parameters,
            cwd=str(NOTEBOOKS),
            progress_bar=sys.stderr.isatty(),
            kernel_name="python3",
            log_output=False,
        )
        html = to_html(Path(tmp), output.with_suffix(".html"))
    finally:
        os.replace(tmp, output)  # a failed notebook is kept too, for its traceback
    return html


def run_report(
    profile: str = "quick",
    experiments=None,
    data_dir=None,
    reports_dir=None,
    figures_dir=None,
    analysis: bool = True,
) -> list[Path]:
    """Run the whole series; returns the HTML reports. Names and paths are checked first."""
    prof = load_profile(profile)
    names = list(experiments or experiment_names())
    for name in names:
        load_experiment(name, prof)
    root = require_data_root(data_dir)
    reports = reports_root(reports_dir)
    common = {
        "profile": profile,
        "data_dir": str(root),
        "reports_dir": str(reports),
        "figures_dir": str(figures_root(figures_dir)),
    }
    jobs = [(n, e) for e in names for n in PER_EXPERIMENT]
    done, failed = [], []
    for i, (name, experiment) in enumerate(jobs, 1):
        out = reports / experiment / f"{name}.ipynb"
        print(f"[{i}/{len(jobs) + analysis}] {experiment} {name} ...", flush=True)
        start = time.perf_counter()
        try:
            done.append(execute(name, out, {**common, "experiment": experiment}))
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
