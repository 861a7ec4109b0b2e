"""One truth: notebook 04, reports/index.html and the README print one claims table, the one
``helpers.report.answers`` computes over every stored run of the profile."""

from html.parser import HTMLParser

import nbformat
import pytest

from helpers.report import answers
from helpers.report.runner import ANALYSIS
from tools.readme import readme_results

HEADER = "poster claim"


def markdown_rows(text: str) -> list[list[str]]:
    """The cells of the Markdown table whose header starts with HEADER (separator row left out)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {HEADER}"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return [rows[0], *rows[2:]]


class _Table(HTMLParser):
    """The cells of the first HTML table whose first header cell is HEADER."""

    def __init__(self):
        super().__init__()
        self.tables, self.cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append(self.cell.strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def html_rows(text: str) -> list[list[str]]:
    parser = _Table()
    parser.feed(text)
    return next(t for t in parser.tables if t and t[0] and t[0][0] == HEADER)


def test_every_column_of_the_claims_table_has_a_legend():
    import pandas as pd

    from helpers.report.claims import claims_markdown

    nan = float("nan")
    row = dict(claim="c", compared="x", units=0, effect=nan, ci_low=nan, ci_high=nan)
    row |= dict(p_value=nan, p_holm=nan, margin=0.01, test="-", verdict="not testable here")
    numbers = pd.DataFrame([row])
    assert list(claims_markdown(numbers)) == list(answers.LEGEND)


@pytest.mark.slow
def test_notebook_04_the_index_and_the_readme_print_the_same_claims(smoke_reports):
    out, _ = smoke_reports
    found = answers.answers(out, "smoke")
    expected = [list(found.text.columns), *found.text.values.tolist()]
    nb = nbformat.read(out / "analysis" / f"{ANALYSIS}.ipynb", as_version=4)
    shown = [
        o.data["text/markdown"]
        for c in nb.cells
        for o in c.get("outputs", [])
        if f"| {HEADER}" in o.get("data", {}).get("text/markdown", "")
    ]
    from_04 = markdown_rows(shown[0])
    from_index = html_rows((out / "index.html").read_text())
    from_readme = markdown_rows(readme_results("smoke", out, figures=False))
    assert from_04 == expected
    assert from_index == expected
    assert from_readme == expected
    # The store holds the design axes of another experiment than the one rendered: the claims
    # that need them are estimated, in 04 too (one smoke seed: a value, too few units to test)
    numbers = found.numbers.set_index("key").loc[["III:largest", "III:slow"]]
    assert (numbers["units"] >= 1).all() and numbers["effect"].notna().all(), numbers
