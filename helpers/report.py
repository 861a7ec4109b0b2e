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

from helpers.config import experiment_names, load_experiment, load_profile
from helpers.errors import UserError
from helpers.paths import NOTEBOOKS, ROOT, data_root, figures_root, reports_root

PER_EXPERIMENT = ("01_shift_degradation", "02_surgical_baselines", "03_cbv_training")
ANALYSIS = "04_analysis"
README_PROFILE = "quick"           # the profile whose results the README shows
MARK = "<!-- {} (written by `python -m helpers report`; do not edit by hand) -->"


def to_html(notebook: Path) -> Path:
    """Render an executed notebook to a standalone HTML file beside it (images embedded)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    html = notebook.with_suffix(".html")
    tmp = html.with_suffix(".html.tmp")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, html)
    return html


def execute(name: str, output: Path, parameters: dict) -> Path:
    """Execute one notebook with papermill (kernel of this Python) and render it to HTML."""
    import papermill

    output.parent.mkdir(parents=True, exist_ok=True)
    # The kernel must import helpers whether or not the project is pip-installed.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    papermill.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(output),
                               parameters=parameters, cwd=str(NOTEBOOKS),
                               progress_bar=sys.stderr.isatty(), kernel_name="python3",
                               log_output=False)
    return to_html(output)


def run_report(profile: str = "quick", experiments=None, data_dir=None, reports_dir=None,
               figures_dir=None, analysis: bool = True) -> list[Path]:
    """Run the whole series; returns the HTML reports. Names and paths are checked first."""
    prof = load_profile(profile)
    names = list(experiments or experiment_names())
    for name in names:
        load_experiment(name, prof)
    root = data_root(data_dir)
    if not root.is_dir():
        raise UserError(f"data root {root} does not exist; run `python -m helpers download "
                        f"--data-dir {root}` or pass --data-dir")
    reports = reports_root(reports_dir)
    common = {"profile": profile, "data_dir": str(root), "reports_dir": str(reports),
              "figures_dir": str(figures_root(figures_dir))}
    jobs = [(n, e) for e in names for n in PER_EXPERIMENT]
    done, failed = [], []
    for i, (name, experiment) in enumerate(jobs, 1):
        out = reports / experiment / f"{name}.ipynb"
        print(f"[{i}/{len(jobs) + analysis}] {experiment} {name} ...", flush=True)
        start = time.perf_counter()
        try:
            done.append(execute(name, out, {**common, "experiment": experiment}))
        except Exception as e:  # a failed notebook must not stop the other experiments
            failed.append(f"{experiment}/{name}: {type(e).__name__}: {str(e)[-500:]}\n"
                          f"  partial notebook: {out}")
            print(f"  FAILED ({failed[-1]})", flush=True)
            continue
        print(f"  done in {time.perf_counter() - start:.0f} s -> {done[-1]}", flush=True)
    if analysis:
        out = reports / "analysis" / f"{ANALYSIS}.ipynb"
        print(f"[{len(jobs) + 1}/{len(jobs) + 1}] analysis {ANALYSIS} ...", flush=True)
        try:
            done.append(execute(ANALYSIS, out, {**common, "experiments": names}))
        except Exception as e:
            failed.append(f"analysis: {type(e).__name__}: {str(e)[-500:]}")
    if failed:
        print("\nFailed notebooks (the others completed and are stored):\n" + "\n".join(failed),
              file=sys.stderr)
        raise SystemExit(1)
    if profile == README_PROFILE and figures_dir is None and analysis:
        update_readme(profile, reports)
    print(f"\n{len(done)} reports under {reports}")
    return done


def readme_results(profile: str, reports_dir=None, metric: str = "macro_f1") -> str:
    """The README's results section: headline figures and the poster's claims, from the store."""
    from helpers import analysis
    from helpers.results import Store

    store = Store(reports_dir)
    metrics = store.collect("metrics", profile=profile)
    claims = analysis.claims(metrics, store.collect("curve", profile=profile),
                             store.collect("history", profile=profile), metric)
    runs = metrics.drop_duplicates("run_key")
    experiments = sorted(runs["experiment"].unique())
    figures = "\n".join(f"![{e}: degradation](figures/{e}/01_degradation.png)"
                        for e in experiments[:2])
    return (f"Profile `{profile}`: {len(runs)} stored runs over {len(experiments)} experiments "
            f"({', '.join(experiments)}); seeds {sorted(runs['seed'].unique().tolist())}.\n\n"
            f"{figures}\n\n![methods](figures/analysis/04_methods_grid.png)\n\n"
            f"![coefficients](figures/analysis/04_alpha_heatmap.png)\n\n"
            f"### The poster's claims against our numbers ({metric})\n\n"
            f"{claims.to_markdown(index=False)}\n")


def update_readme(profile: str, reports_dir=None, readme: Path = ROOT / "README.md") -> None:
    """Replace the README's generated results section (between its two markers)."""
    text = readme.read_text()
    start, end = MARK.format("results:start"), MARK.format("results:end")
    if start not in text or end not in text:
        raise UserError(f"{readme} lacks the markers {start} ... {end}; restore them from git")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    body = readme_results(profile, reports_dir)
    tmp = readme.with_suffix(".md.tmp")
    tmp.write_text(f"{head}{start}\n{body}\n{end}{tail}")
    os.replace(tmp, readme)
