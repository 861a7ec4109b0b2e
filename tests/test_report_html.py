"""Reports that read like reports: code hidden a click away, an index page, both checked in a
real headless browser against broken images and links."""

import re
import shutil
import urllib.error
import urllib.request
from base64 import b64decode
from pathlib import Path

import nbformat
import pytest

from helpers.report.html import WIDGET_NOTE, to_html
from helpers.report.index import write_index
from helpers.report.runner import ANALYSIS, PER_EXPERIMENT
from tests.browser import CHROMIUM, Browser, serve
from tests.conftest import SMOKE_EXPERIMENT

pytestmark = pytest.mark.slow
# The index, every report of the smoke run's experiment, and the analysis.
PAGES = [
    "index.html",
    *(f"{SMOKE_EXPERIMENT}/{name}.html" for name in PER_EXPERIMENT),
    f"analysis/{ANALYSIS}.html",
]
HEADLINE, ANALYSIS_HEADLINE = "01_degradation.png", "04_methods_grid.png"


def test_reports_hide_code_and_fetch_nothing_from_the_network(smoke_reports):
    out, _ = smoke_reports
    for page in [*out.glob(f"{SMOKE_EXPERIMENT}/*.html"), out / "analysis" / f"{ANALYSIS}.html"]:
        text = page.read_text()
        assert text.count('<details class="cbv-code">') >= 2, page  # closed, one per code cell
        assert '<details class="cbv-code" open' not in text
        assert not re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(?:https?:)?//', text)
        assert "progress: " not in text  # stderr (progress lines) stays out of the report
    assert WIDGET_NOTE in (out / "analysis" / f"{ANALYSIS}.html").read_text()


def test_show_code_renders_every_code_cell_open(smoke_reports, tmp_path):
    out, _ = smoke_reports
    notebook = tmp_path / "03.ipynb"
    shutil.copy(out / SMOKE_EXPERIMENT / f"{PER_EXPERIMENT[2]}.ipynb", notebook)
    text = to_html(notebook, show_code=True).read_text()
    code_cells = sum(c.cell_type == "code" for c in nbformat.read(notebook, 4).cells)
    assert text.count('<details class="cbv-code" open') == code_cells
    assert "progress: run 1/" in text  # beside visible code, stderr is shown too


def test_index_links_every_report_with_figures_and_the_claims(smoke_reports):
    out, _ = smoke_reports
    text = write_index("smoke", out).read_text()
    for name in PER_EXPERIMENT:
        assert f'href="{SMOKE_EXPERIMENT}/{name}.html"' in text
    assert f'href="analysis/{ANALYSIS}.html"' in text
    assert text.count('<img src="data:image/png;base64,') == 2  # headline and analysis figures
    assert "poster claim" in text and "verdict" in text
    assert "(smoke)" in text  # each link says the profile its report ran under


def _local_target_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url.split("#")[0], timeout=10) as r:
            return r.status == 200 and len(r.read()) > 0
    except urllib.error.URLError:
        return False


def expected_figures(figures: Path, page: str) -> list[Path]:
    """The figure files a page must show: those its notebook saved (<figures>/<folder>/NN_*.png);
    for the index, each experiment's headline figure and the analysis's."""
    if page == "index.html":
        return [figures / SMOKE_EXPERIMENT / HEADLINE, figures / "analysis" / ANALYSIS_HEADLINE]
    folder, name = page.split("/")
    return sorted((figures / folder).glob(f"{name[:2]}_*.png"))


def page_problems(browser: Browser, base: str, page: str, figures: list[Path]) -> list[str]:
    """What a reader would find wrong with a page: a heading with nothing under it, a figure
    file its notebook saved that the page does not show (the same bytes), a broken image or
    link."""
    browser.open(base + page)
    seen = browser.audit()
    found = [f"{page}: {s['heading']!r} has nothing under it" for s in seen["sections"]]
    found = [f for f, s in zip(found, seen["sections"]) if not s["filled"]]
    prefix = "data:image/png;base64,"
    shown = {
        b64decode(i["src"][len(prefix) :]) for i in seen["images"] if i["src"].startswith(prefix)
    }
    found += [
        f"{page}: does not show {f.parent.name}/{f.name}"
        for f in figures
        if not f.is_file() or f.read_bytes() not in shown
    ]
    found += [
        f"{page}: image did not load: {i['src'][:80]}" for i in seen["images"] if not i["width"]
    ]
    for link in seen["links"]:
        if link["raw"].startswith("#"):
            if not link["target"]:
                found.append(f"{page}: anchor {link['raw']} has no target")
        elif not link["href"].startswith(base):
            found.append(f"{page}: link {link['raw']} leaves the folder")
        elif not _local_target_ok(link["href"]):
            found.append(f"{page}: broken link {link['raw']}")
    return found


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_every_page_shows_each_section_and_saved_figure_in_chromium(smoke_reports, tmp_path):
    out, figures = smoke_reports
    browser = Browser(tmp_path / "chromium-profile")
    try:
        with serve(out) as base:
            found = [
                problem
                for page in PAGES
                for problem in page_problems(browser, base, page, expected_figures(figures, page))
            ]
            assert not found, "\n".join(found)
            for page in PAGES:  # each page draws as a page (not blank)
                browser.open(base + page)
                shot = browser.screenshot(
                    tmp_path / page.replace("/", "_").replace(".html", ".png")
                )
                assert shot.stat().st_size > 10_000
            # The report's code is hidden, and one click on the button shows all of it.
            closed = "document.querySelectorAll('details.cbv-code:not([open])').length"
            height = "document.body.scrollHeight"
            assert browser.evaluate(closed) >= 2
            before = browser.evaluate(height)
            browser.evaluate("document.getElementById('cbv-toggle').click()")
            assert browser.evaluate(closed) == 0
            assert browser.evaluate(height) > before + 100  # the code now takes room on the page
    finally:
        browser.close()
