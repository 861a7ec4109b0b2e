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

from helpers.errors import UserError
from helpers.paths import NOTEBOOKS, ROOT
from helpers.report.console import ProgressEcho, kernel_config
from helpers.report.html import to_html
from helpers.report.preflight import plan_run
from helpers.study.progress import LINES_ENV, PREFIX, duration, time_left

# Seconds a notebook cell may run (unset: no limit, since a cell may train a whole grid). The
# tests set it: a kernel whose reply is lost (seen once with ipykernel 7 on a loaded machine)
# then fails that notebook instead of hanging the suite.
CELL_TIMEOUT_ENV = "CBV_CELL_TIMEOUT"
PER_EXPERIMENT = ("01_shift_degradation", "02_surgical_baselines", "03_cbv_training")
ANALYSIS = "04_analysis"


def _cell_timeout() -> int | None:
    raw = os.environ.get(CELL_TIMEOUT_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) == 0:
        raise UserError(
            f"${CELL_TIMEOUT_ENV} must be a whole number of seconds, got {raw!r}; fix or unset it"
        )
    return int(raw)


def execute(name: str, output: Path, parameters: dict, show_code: bool = False) -> Path:
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
    # The kernel inherits this: progress as lines (forwarded below), no per-step bars.
    os.environ[LINES_ENV] = "1"
    try:
        papermill.execute_notebook(
            str(NOTEBOOKS / f"{name}.ipynb"),
            tmp,
            parameters=parameters,
            cwd=str(NOTEBOOKS),
            progress_bar=False,  # a per-cell bar says little; the study's lines say more
            kernel_name="python3",
            log_output=False,
            stderr_file=ProgressEcho(PREFIX),
            config=kernel_config(),
            execution_timeout=_cell_timeout(),
        )
        html = to_html(Path(tmp), show_code, html=output.with_suffix(".html"))
    finally:
        os.environ.pop(LINES_ENV, None)  # notebooks opened later in this process keep bars
        os.replace(tmp, output)  # a failed notebook is kept too, for its traceback
    return html


def run_report(
    profile: str = "quick",
    experiments=None,
    data_dir=None,
    reports_dir=None,
    figures_dir=None,
    analysis: bool = True,
    show_code: bool = False,
) -> list[Path]:
    """Run the whole series; returns the HTML reports.

    Configuration, data and output folders are checked first (``preflight.plan_run``). Figures
    of the published profile's built-in experiments go to the committed figures/; any other
    run's to reports/figures/<profile>/. Writes reports/index.html at the end; ``show_code``
    renders every report's code open.
    """
    plan = plan_run(profile, experiments, data_dir, reports_dir, figures_dir)
    names = [e.name for e in plan.experiments]
    reports = plan.reports
    common = {"profile": profile, "data_dir": str(plan.data_root), "reports_dir": str(reports)}
    jobs = [(n, e) for e in names for n in PER_EXPERIMENT]
    total = len(jobs) + analysis
    kinds = [n for n, _ in jobs] + [ANALYSIS] * analysis
    done, failed, took = [], [], []
    began = time.perf_counter()

    def announce(i: int, what: str) -> None:
        """Which notebook of how many, and the time left at the mean of each notebook's kind."""
        left = time_left(took, kinds[i - 1 :])
        estimate = "time left unknown yet" if left is None else f"about {duration(left)} left"
        elapsed = duration(time.perf_counter() - began)
        print(f"[{i}/{total}] {what} ({elapsed} elapsed, {estimate})", flush=True)

    for i, (name, experiment) in enumerate(jobs, 1):
        out = reports / experiment / f"{name}.ipynb"
        announce(i, f"{experiment} {name}")
        start = time.perf_counter()
        try:
            figures = str(plan.figures[experiment])
            params = {**common, "experiment": experiment, "figures_dir": figures}
            done.append(execute(name, out, params, show_code))
        except Exception as e:  # a failed notebook must not stop the other experiments
            failed.append(
                f"{experiment}/{name}: {type(e).__name__}: {str(e)[-500:]}\n"
                f"  partial notebook: {out}"
            )
            print(f"  FAILED ({failed[-1]})", flush=True)
            continue
        took.append((name, time.perf_counter() - start))
        print(f"  done in {duration(took[-1][1])} -> {done[-1]}", flush=True)
    if analysis:
        out = reports / "analysis" / f"{ANALYSIS}.ipynb"
        announce(total, f"analysis {ANALYSIS}")
        try:
            shared = {k: v for k, v in common.items() if k != "data_dir"}  # 04 never reads data
            shared["figures_dir"] = str(plan.figures["analysis"])
            done.append(execute(ANALYSIS, out, {**shared, "experiments": names}, show_code))
        except Exception as e:
            failed.append(f"analysis: {type(e).__name__}: {str(e)[-500:]}")
    from helpers.report.index import write_index  # it reads this module's notebook names

    index = write_index(profile, reports)
    if failed:
        print(
            "\nFailed notebooks (the others completed and are stored):\n" + "\n".join(failed),
            file=sys.stderr,
        )
        raise SystemExit(1)
    print(f"\n{len(done)} reports under {reports}; start at {index}")
    return done
