"""Executed notebooks as HTML reports: questions, tables, figures, takeaways; code a click away.

Every code cell's input sits in a closed ``<details>`` element (one click opens it) and a button
at the top opens or closes them all; ``show_code=True`` renders them open. The pages load nothing
from the network, so they read the same offline.
"""

from __future__ import annotations

from pathlib import Path

from helpers.files import write_text

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = "(an interactive widget: open this notebook in JupyterLab to use it)"

TEMPLATE = r"""
{%- extends 'lab/index.html.j2' -%}
{#- No script from a CDN: the reports hold no LaTeX, and their widgets are replaced by a note. -#}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block extra_css -%}
<style>
details.cbv-code > summary { cursor: pointer; color: #888; font-size: 12px; padding: 0 0 2px 8px; }
.cbv-bar { text-align: right; padding: 6px 12px 0 0; }
.cbv-bar a { margin-right: 1em; }
.jp-RenderedHTMLCommon table.cbv-table td, .jp-RenderedHTMLCommon table.cbv-table th {
  text-align: left; }
</style>
{%- endblock extra_css -%}
{%- block body_header -%}
{{ super() }}
<div class="cbv-bar"><a href="{{ resources.cbv_index }}">all reports</a>
<button type="button" id="cbv-toggle" onclick="cbvToggle()">
{{- 'Hide code' if resources.cbv_show_code else 'Show code' -}}
</button></div>
{%- endblock body_header -%}
{% block input_group -%}
<details class="cbv-code"{{ ' open' if resources.cbv_show_code }}><summary>code</summary>
{{ super() }}
</details>
{%- endblock input_group %}
{% block footer_js %}
<script>
function cbvToggle() {
  const cells = Array.from(document.querySelectorAll("details.cbv-code"));
  const open = !cells.every(d => d.open);
  cells.forEach(d => { d.open = open; });
  document.getElementById("cbv-toggle").textContent = open ? "Hide code" : "Show code";
}
</script>
{% endblock footer_js %}
"""


def for_readers(nb, show_code: bool = False):
    """The notebook as a reader sees it: widgets as a note; printed streams (progress, the
    store's log of runs computed, library warnings) and bare text reprs only beside visible code.
    Changes ``nb`` in place and returns it."""
    nb.metadata.pop("widgets", None)  # its state would pull the widget manager from a CDN
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.outputs:
            stream = out.output_type == "stream"
            bare = out.output_type == "execute_result" and set(out.data) == {"text/plain"}
            if (stream or bare) and not show_code:
                continue
            if WIDGET_VIEW in out.get("data", {}):
                out.data = {"text/plain": WIDGET_NOTE}
            kept.append(out)
        cell.outputs = kept
    return nb


def to_html(
    notebook: Path, show_code: bool = False, index: str = "../index.html", html: Path | None = None
) -> Path:
    """Render an executed notebook to a standalone HTML report (images embedded): ``html``, by
    default beside the notebook.

    ``index``: the link back to the list of reports, relative to the report.
    """
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        extra_loaders=[DictLoader({"cbv_report.html.j2": TEMPLATE})],
        template_file="cbv_report.html.j2",
        exclude_output_prompt=not show_code,  # "Out[3]:" means little beside hidden code
    )
    nb = for_readers(nbformat.read(notebook, as_version=4), show_code)
    body, _ = exporter.from_notebook_node(
        nb, resources={"cbv_show_code": show_code, "cbv_index": index}
    )
    html = Path(html or Path(notebook).with_suffix(".html"))
    write_text(html, body)
    return html
