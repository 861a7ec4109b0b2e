"""reports/index.html: the answers first, then each experiment's headline figure, then the reports.

The claims table comes from ``helpers.report.answers`` (the one call notebook 04 and the README
make too), with a legend for every column. The headline figure of an experiment is the first
figure of its notebook 01, and the analysis's is the first of notebook 04, taken from the
executed notebooks themselves and embedded, so the page shows exactly what the reports show and
reads offline wherever the folder is copied.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from helpers.files import write_text
from helpers.paths import reports_root, results_root
from helpers.report import answers
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
dt { font-weight: 600; } dd { margin: 0 0 0.4em 1.5em; }
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


def _inline(text: str) -> str:
    """Markdown's **bold** and `code` of the legends, as HTML."""
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def _claims(results, profile: str, metric: str, keys=None) -> list[str]:
    """The poster's claims over the stored runs of a profile's plan (``answers``), with
    legends."""
    if Store(results).collect("metrics", profile=profile, keys=keys).empty:
        return [f'<p class="muted">no stored runs of profile {html.escape(profile)} yet</p>']
    found = answers.answers(results, profile, metric, keys)
    legend = "".join(
        f"<dt>{html.escape(c)}</dt><dd>{html.escape(text)}</dd>"
        for c, text in answers.LEGEND.items()
    )
    return [
        f"<p>{_inline(found.scope())}</p>",
        f"<p>{_inline(answers.VERDICTS)}</p>",
        found.html(),
        f"<p>What each column holds:</p><dl>{legend}</dl>",
    ]


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


def write_index(
    profile: str = "quick",
    reports_dir=None,
    metric: str = answers.METRIC,
    results_dir=None,
    keys=None,
) -> Path:
    """Write reports/index.html over every rendered experiment; returns its path.

    ``profile``: whose stored runs the claims table is computed from, read under
    ``results_dir`` (default: ``paths.results_root``: results/ for the published profile, else
    the reports folder); ``keys``: the plan's run keys (every stored run when None).
    """
    reports = reports_root(reports_dir)
    results = results_root(results_dir, profile, reports)
    names = experiments_rendered(reports)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Fine-tuning under distribution shift: reports</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Fine-tuning under distribution shift</h1>",
        "<p>How fine-tuning strategies for BERT-family encoders hold up when the test data drift "
        "from corpus A to corpus B: surgical fine-tuning of chosen layers against "
        "coefficient-based (CBV) fine-tuning, checked claim by claim against the poster of the "
        "study it reproduces.</p>",
        "<h2>The poster's claims against our numbers</h2>",
        *_claims(results, profile, metric, keys),
        "<h2>Headline figures</h2>",
        "<p>Each experiment's source model as the test mixture moves from A to B (notebook 01), "
        "then every method across experiments (notebook 04).</p>",
    ]
    for name in names:
        notebook = reports / name / f"{PER_EXPERIMENT[0]}.ipynb"
        parts += [f"<h3>{html.escape(name)}</h3>", _figure(notebook, f"{name}: degradation")]
    parts += [
        "<h3>Across experiments</h3>",
        _figure(reports / "analysis" / f"{ANALYSIS}.ipynb", "methods by experiment"),
        "<h2>The reports</h2>",
        '<p class="muted">Each report shows its questions, tables, figures and takeaways; '
        "its code is one click away (<em>Show code</em>).</p>",
    ]
    for name in names:
        parts += [f"<h3>{html.escape(name)}</h3>", _links(reports / name, PER_EXPERIMENT, reports)]
    parts += [
        "<h3>Across experiments</h3>",
        _links(reports / "analysis", [ANALYSIS], reports),
        "</body></html>",
    ]
    path = reports / "index.html"
    write_text(path, "\n".join(parts) + "\n")
    return path
