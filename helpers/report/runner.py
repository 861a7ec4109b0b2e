"""The report runner: execute the numbered notebooks with papermill, render each to HTML.

``python -m helpers report --profile quick --experiments books_to_dvd`` writes
reports/<experiment>/NN_name.ipynb and .html for notebooks 01-03 of every experiment, then
reports/analysis/04_analysis.{ipynb,html} across every stored experiment of the profile. Work
already stored for the same configuration is skipped by the study itself, so a rerun only
executes (cheap) notebooks. A report is replaced only by a run that succeeds.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from helpers.errors import UserError
from helpers.files import new_file_mode
from helpers.paths import NOTEBOOKS, ROOT
from helpers.report.console import ProgressEcho, kernel_config
from helpers.report.html import to_html
from helpers.report.limits import CellLimit
from helpers.report.preflight import plan_run
from helpers.study.progress import LINES_ENV, PREFIX, duration, time_left

PER_EXPERIMENT = ("01_shift_degradation", "02_surgical_baselines", "03_cbv_training")
ANALYSIS = "04_analysis"


def execute(
    name: str, output: Path, parameters: dict, show_code: bool = False, notebook=None
) -> Path:
    """Execute one notebook with papermill (kernel of this Python) and render it to HTML.

    The report is replaced only when both succeed: papermill writes under a temporary name
    beside it, the HTML too, and both are renamed over the old report at the end. On failure
    the old report stays as it was and the failed notebook is kept beside it as
    ``<name>.failed.ipynb``, for its traceback. ``notebook``: another source than
    notebooks/<name>.ipynb (tests).
    """
    import papermill
    from nbclient.exceptions import CellTimeoutError

    output.parent.mkdir(parents=True, exist_ok=True)
    # The kernel must import helpers whether or not the project is pip-installed.
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(ROOT) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *paths])
    source = Path(notebook or NOTEBOOKS / f"{name}.ipynb")
    failed = output.with_suffix(".failed.ipynb")
    html = output.with_suffix(".html")
    limit = CellLimit(source, f"{output.parent.name}/{output.stem}")
    # papermill rewrites its output after every cell: a unique name, so that two report
    # processes on one folder never read each other's half-written notebook.
    tmp = _temporary(output)
    page = _temporary(html)
    os.environ[LINES_ENV] = "1"  # the kernel inherits it: progress as lines, no per-step bars
    try:
        papermill.execute_notebook(
            str(source),
            str(tmp),
            parameters=parameters,
            cwd=str(NOTEBOOKS),
            progress_bar=False,  # a per-cell bar says little; the study's lines say more
            kernel_name="python3",
            log_output=False,
            stderr_file=ProgressEcho(PREFIX),
            config=kernel_config(),
            timeout_func=limit,
        )
        to_html(tmp, show_code, html=page)
    except BaseException as e:
        _settle(tmp, failed)
        page.unlink(missing_ok=True)
        if isinstance(e, CellTimeoutError):
            raise UserError(limit.message()) from None
        raise
    finally:
        os.environ.pop(LINES_ENV, None)  # notebooks opened later in this process keep bars
    _settle(tmp, output)
    _settle(page, html)
    failed.unlink(missing_ok=True)  # an earlier failure's notebook no longer tells the truth
    return html


def _temporary(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    return Path(tmp)


def _settle(tmp: Path, path: Path) -> None:
    """Rename a finished temporary file into place, readable as any new file is."""
    os.chmod(tmp, new_file_mode())
    os.replace(tmp, path)


def run_report(
    profile: str = "quick",
    experiments=None,
    data_dir=None,
    reports_dir=None,
    figures_dir=None,
    analysis: bool = True,
    show_code: bool = False,
    results_dir=None,
    stored_only: bool = False,
) -> list[Path]:
    """Run the whole series; returns the HTML reports.

    Configuration, data and output folders are checked first (``preflight.plan_run``). Stored
    runs are read (and new ones stored) under ``results_dir`` (default: ``paths.results_root``,
    results/ for the published profile); reports go to ``reports_dir``. Figures of the published
    profile's built-in experiments go to the committed figures/; any other run's to
    reports/figures/<profile>/. Notebook 04 analyses every stored experiment of the profile,
    whichever ones this call renders, and reads only the runs of the current plan (their keys
    written to reports/analysis/plan_keys.json). Writes reports/index.html at the end;
    ``show_code`` renders every report's code open. ``stored_only``: train nothing, read what
    is stored, under the compute it was made with (``stored_compute``).
    """
    plan = plan_run(profile, experiments, data_dir, reports_dir, figures_dir, results_dir)
    if stored_only:
        read_stored_only(plan.results, profile)
    reports, stored = plan.reports, {"profile": profile, "results_dir": str(plan.results)}
    jobs = [
        (name, reports / e.name, {**stored, "experiment": e.name, "data_dir": str(plan.data_root)})
        for e in plan.experiments
        for name in PER_EXPERIMENT
    ]
    keys, keys_file = None, reports / "analysis" / "plan_keys.json"
    if analysis:  # 04 reads no data, only the store and the plan's keys
        jobs.append((ANALYSIS, reports / "analysis", {**stored, "plan_keys": str(keys_file)}))
    unstored: set[tuple[str, str]] = set()
    if stored_only:  # a report with nothing of its plan stored is not rendered, and says so
        keys = _plan_keys(profile, plan, keys_file)
        unstored = _nothing_stored(profile, plan.results, keys, jobs)
    kinds = [name for name, _, _ in jobs]
    done, failed, took = [], [], []
    began = time.perf_counter()
    for i, (name, folder, params) in enumerate(jobs, 1):
        left = time_left(took, kinds[i - 1 :])  # at the mean of each notebook kind so far
        estimate = "time left unknown yet" if left is None else f"about {duration(left)} left"
        elapsed = duration(time.perf_counter() - began)
        print(f"[{i}/{len(jobs)}] {folder.name} {name} ({elapsed} elapsed, {estimate})", flush=True)
        start = time.perf_counter()
        figures = str(plan.figures[params.get("experiment", "analysis")])
        if (folder.name, name) in unstored:
            for old in (folder / f"{name}.html", folder / f"{name}.ipynb"):
                old.unlink(missing_ok=True)  # an earlier plan's report would mislead
            print("  skipped: no run of its plan is stored yet (`make reference` computes them)")
            continue
        try:
            if name == ANALYSIS and keys is None:
                keys = _plan_keys(profile, plan, keys_file)
            done.append(
                execute(
                    name, folder / f"{name}.ipynb", {**params, "figures_dir": figures}, show_code
                )
            )
        except Exception as e:  # a failed notebook must not stop the other experiments
            failed.append(_failure(folder / f"{name}.ipynb", e))
            print(f"  FAILED: {failed[-1]}", flush=True)
            continue
        took.append((name, time.perf_counter() - start))
        print(f"  done in {duration(took[-1][1])} -> {done[-1]}", flush=True)
    from helpers.report.index import write_index  # it reads this module's notebook names

    index = write_index(profile, reports, results_dir=plan.results, keys=keys)
    if failed:
        print(
            "\nFailed notebooks (their earlier reports, if any, are kept):\n" + "\n".join(failed),
            file=sys.stderr,
        )
        raise SystemExit(1)
    print(f"\n{len(done)} reports under {reports}; start at {index}")
    return done


def read_stored_only(results: Path, profile: str) -> None:
    """Train nothing in this process and its kernels, and key runs under the compute the stored
    runs were made with (a bf16 study read on a CPU without bf16, a GPU study on a CPU)."""
    from helpers.models.precision import COMPUTE_ENV, compute_label
    from helpers.paths import STORED_ONLY_ENV
    from helpers.study.store import Store

    os.environ[STORED_ONLY_ENV] = "1"
    if os.environ.get(COMPUTE_ENV):  # pinned by the user: theirs is the one read
        return
    found = Store(results).computes(profile)
    if len(found) == 1:
        os.environ[COMPUTE_ENV] = compute_label(found[0])
        print(f"reading the stored runs of {profile} made on {compute_label(found[0])}")
    elif len(found) > 1:
        labels = ", ".join(compute_label(c) for c in found)
        print(
            f"the stored runs of {profile} were made on several machines ({labels}); reading "
            f"those of this one (set ${COMPUTE_ENV} to one of them to read another's)"
        )


def _plan_keys(profile: str, plan, path: Path) -> set[str]:
    """The run keys of the profile's plan over every experiment stored for it, written where
    notebook 04 reads them (it opens no corpora)."""
    from helpers.files import write_json
    from helpers.study.inventory import profile_plan_keys

    keys = profile_plan_keys(profile, plan.data_root, plan.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, sorted(keys))
    return keys


def _nothing_stored(profile: str, results: Path, keys: set[str], jobs) -> set[tuple[str, str]]:
    """The (folder, notebook) jobs none of whose plan's runs are stored: 02 without a surgical
    run, 03 without a CBV run, 04 without any adapted run (01 needs the source runs only)."""
    from helpers.config.experiments import load_profile
    from helpers.study.store import Store

    prof = load_profile(profile)
    metrics = Store(results).collect("metrics", profile=profile, keys=keys)
    methods = {
        PER_EXPERIMENT[0]: {"source"},
        PER_EXPERIMENT[1]: set(prof.notebook_02),
        PER_EXPERIMENT[2]: set(prof.notebook_03),
    }
    stored = metrics.groupby("experiment")["method"].agg(set).to_dict() if len(metrics) else {}
    adapted = set().union(*stored.values()) - {"source"}
    out = set()
    for name, folder, params in jobs:
        mine = stored.get(params.get("experiment"), set())
        if not (adapted if name == ANALYSIS else mine & methods[name]):
            out.add((folder.name, name))
    return out


def _failure(notebook: Path, e: Exception) -> str:
    """One line on a failed notebook: a cell past its time limit says so itself."""
    if isinstance(e, UserError):
        return str(e)
    last = str(e).strip().splitlines()[-1:] or [""]
    kept = notebook.with_suffix(".failed.ipynb")
    return (
        f"{notebook.parent.name}/{notebook.stem}: {type(e).__name__}: {last[0][-300:]} "
        f"(the failed notebook: {kept})"
    )
