"""Reports that read like reports: code hidden a click away, an index page, both checked in a
real headless browser against broken images and links."""

import re
import shutil
import urllib.error
import urllib.request

import nbformat
import pytest

from helpers.report.html import WIDGET_NOTE, to_html
from helpers.report.index import write_index
from helpers.report.runner import ANALYSIS, PER_EXPERIMENT
from tests.browser import CHROMIUM, Browser, serve
from tests.conftest import SMOKE_EXPERIMENT

pytestmark = pytest.mark.slow
PAGES = ["index.html", f"{SMOKE_EXPERIMENT}/{PER_EXPERIMENT[0]}.html"]


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


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_index_and_a_report_render_in_chromium_without_broken_images_or_links(
    smoke_reports, tmp_path
):
    out, _ = smoke_reports
    browser = Browser(tmp_path / "chromium-profile")
    try:
        with serve(out) as base:
            for page in PAGES:
                browser.open(base + page)
                seen = browser.audit()
                assert seen["images"], f"{page}: no image"
                broken = [i["src"] for i in seen["images"] if i["width"] == 0]
                assert not broken, f"{page}: images that did not load: {broken}"
                for link in seen["links"]:
                    if link["raw"].startswith("#"):
                        assert link["target"], f"{page}: anchor {link['raw']} has no target"
                    else:
                        assert link["href"].startswith(base), f"{page}: leaves the folder"
                        assert _local_target_ok(link["href"]), f"{page}: broken {link['raw']}"
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


def test_cell_timeout_comes_from_the_environment(monkeypatch):
    from helpers.errors import UserError
    from helpers.report.runner import CELL_TIMEOUT_ENV, _cell_timeout

    monkeypatch.delenv(CELL_TIMEOUT_ENV, raising=False)
    assert _cell_timeout() is None  # no limit: a real run's cell may train a whole grid
    monkeypatch.setenv(CELL_TIMEOUT_ENV, "600")
    assert _cell_timeout() == 600
    monkeypatch.setenv(CELL_TIMEOUT_ENV, "ten minutes")
    with pytest.raises(UserError, match="whole number of seconds"):
        _cell_timeout()


def test_the_runner_hands_the_cell_timeout_to_papermill(monkeypatch, tmp_path):
    import papermill

    from helpers.report.runner import CELL_TIMEOUT_ENV, execute

    seen = {}

    class Stop(Exception):
        pass

    def fake_execute(*args, **kwargs):
        seen.update(kwargs)
        raise Stop  # nothing to render: the call's arguments are what is checked

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    monkeypatch.setenv(CELL_TIMEOUT_ENV, "42")
    with pytest.raises(Stop):
        execute("01_shift_degradation", tmp_path / "out.ipynb", {})
    assert seen["execution_timeout"] == 42
