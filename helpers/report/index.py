"""reports/index.html: every experiment's reports, its headline figure, and the poster's claims.

The headline figure of an experiment is the first figure of its notebook 01, and the analysis's
is the first of notebook 04, taken from the executed notebooks themselves and embedded, so the
page shows exactly what the reports show and reads offline wherever the folder is copied.
"""

from __future__ import annotations

import html
from pathlib import Path

from helpers.files import write_text
from helpers.paths import reports_root
from helpers.report import analysis
from helpers.report.runner import ANALYSIS, PER_EXPERIMENT
from helpers.study.store import Store

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
  color: #222; }
h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.reports a { margin-right: 1.2em; }
.muted { color: #777; }
img { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
"""


def _notebook_facts(notebook: Path) -> tuple[str | None, str | None]:
    """The profile a report ran under and its first figure (base64 PNG), from the .ipynb."""
    import nbformat

    if not notebook.exists():
        return None, None
    nb = nbformat.read(notebook, as_version=4)
    profile = nb.metadata.get("papermill", {}).get("parameters", {}).get("profile")
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            png = out.get("data", {}).get("image/png")
            if png:
                return profile, "".join(png).replace("\n", "")
    return profile, None


def _links(folder: Path, names, reports: Path) -> str:
    """Links to the rendered reports among ``names``, each with the profile it ran under."""
    items = []
    for name in names:
        page = folder / f"{name}.html"
        if not page.exists():
            items.append(f'<span class="muted">{name}: not rendered</span>')
            continue
        profile, _ = _notebook_facts(page.with_suffix(".ipynb"))
        note = f' <span class="muted">({html.escape(profile)})</span>' if profile else ""
        href = html.escape(page.relative_to(reports).as_posix())
        items.append(f'<a href="{href}">{name}</a>{note}')
    return f'<p class="reports">{" ".join(items)}</p>'


def _figure(notebook: Path, alt: str) -> str:
    _, png = _notebook_facts(notebook)
    if png is None:
        return '<p class="muted">no figure yet</p>'
    return f'<img src="data:image/png;base64,{png}" alt="{html.escape(alt)}">'


def _claims(reports_dir, profile: str, metric: str) -> str:
    """The poster's claims over every stored run of a profile, as helpers.report.analysis says."""
    store = Store(reports_dir)
    metrics = store.collect("metrics", profile=profile)
    if metrics.empty:
        return f'<p class="muted">no stored runs of profile {html.escape(profile)} yet</p>'
    table = analysis.stored_claims(store, profile, metric)
    runs = metrics.drop_duplicates("run_key")
    experiments = ", ".join(sorted(runs["experiment"].unique()))
    return (
        f"<p>Profile <code>{html.escape(profile)}</code>: {len(runs)} stored runs over "
        f"{html.escape(experiments)}; test {html.escape(metric)}.</p>"
        + analysis.claims_markdown(table).to_html(index=False, border=0)
    )


def experiments_rendered(reports_dir=None) -> list[str]:
    """Experiments with at least one rendered report (01-03) under the reports folder."""
    reports = reports_root(reports_dir)
    return (
        sorted(
            d.name
            for d in reports.iterdir()
            if d.is_dir() and any((d / f"{n}.html").exists() for n in PER_EXPERIMENT)
        )
        if reports.is_dir()
        else []
    )


def write_index(profile: str = "quick", reports_dir=None, metric: str = "macro_f1") -> Path:
    """Write reports/index.html over every rendered experiment; returns its path.

    ``profile``: whose stored runs the claims table is computed from.
    """
    reports = reports_root(reports_dir)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Fine-tuning under distribution shift: reports</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Fine-tuning under distribution shift: reports</h1>",
        '<p class="muted">Each report shows its questions, tables, figures and takeaways; '
        "its code is one click away (<em>Show code</em>).</p>",
    ]
    for name in experiments_rendered(reports):
        folder = reports / name
        parts += [
            f"<h2>{html.escape(name)}</h2>",
            _links(folder, PER_EXPERIMENT, reports),
            _figure(folder / f"{PER_EXPERIMENT[0]}.ipynb", f"{name}: degradation"),
        ]
    folder = reports / "analysis"
    parts += [
        "<h2>Across experiments</h2>",
        _links(folder, [ANALYSIS], reports),
        _figure(folder / f"{ANALYSIS}.ipynb", "methods by experiment"),
        "<h2>The poster's claims against our numbers</h2>",
        _claims(reports, profile, metric),
        "</body></html>",
    ]
    path = reports / "index.html"
    write_text(path, "\n".join(parts) + "\n")
    return path
