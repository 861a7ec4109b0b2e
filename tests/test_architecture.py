"""The package's plan: layers import one way, the bottom is torch-free, modules stay readable."""

import ast
import subprocess
import sys

import pytest

from helpers.paths import ROOT

PACKAGE = ROOT / "helpers"
# Bottom to top; a module may import its own layer and the ones below, never one above.
LAYERS = ["ground", "config", "data", "models", "evaluation", "training", "study", "report", "cli"]
GROUND = {"errors", "paths", "files"}
MAX_LINES = 300
MODULES = sorted(PACKAGE.rglob("*.py"))


def layer_of(module: str) -> str:
    """The layer of a dotted module name inside helpers (``helpers.data.corpora`` -> data)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "ground"
    if parts[1] in ("__main__", "commands"):
        return "cli"
    return "ground" if parts[1] in GROUND else parts[1]


def module_name(path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(p for p in rel.parts if p != "__init__")


def imported(path) -> list[tuple[int, str]]:
    """Every module imported anywhere in a file, function bodies included (lazy imports count)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.lineno, node.module))
            out += [
                (node.lineno, f"{node.module}.{a.name}")
                for a in node.names
                if node.module == "helpers"
            ]
    return out


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_flow_down_the_layers(path):
    source = layer_of(module_name(path))
    assert source in LAYERS, f"{path}: {source!r} is not a layer; add it to LAYERS in this test"
    for line, target in imported(path):
        top = target.split(".")[0]
        if top == "tools":
            assert source == "cli", f"{path}:{line} imports {target}: tools stay outside helpers"
        if top != "helpers" or target == "helpers":
            continue
        above = LAYERS.index(layer_of(target)) > LAYERS.index(source)
        assert not above, f"{path}:{line} ({source}) imports {target} ({layer_of(target)})"


def test_the_layer_rule_catches_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from helpers.study.store import Store\n")
    assert (2, "helpers.study.store") in imported(bad)
    assert LAYERS.index(layer_of("helpers.study.store")) > LAYERS.index(
        layer_of("helpers.config.x")
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_read_in_one_sitting(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path} has {lines} lines; split it by responsibility"


def python_prints(code: str) -> str:
    """What a fresh interpreter prints running ``code`` in the repository."""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_configuration_analysis_and_plots_load_no_torch():
    loaded = python_prints(
        "import sys\n"
        "import helpers.config.experiments, helpers.config.methods, helpers.config.settings\n"
        "import helpers.report.analysis, helpers.report.plots, helpers.study.store\n"
        "import helpers.evaluation.metrics\n"
        "print(sorted(m for m in ('torch', 'transformers', 'accelerate') if m in sys.modules))"
    )
    assert loaded == "[]", f"torch-free layers loaded {loaded}"


def test_nothing_happens_at_import():
    """Importing the plots leaves matplotlib's global style alone."""
    changed = python_prints(
        "import matplotlib as mpl; before = dict(mpl.rcParams)\n"
        "import helpers.report.plots\n"
        "print(sum(before[k] != v for k, v in mpl.rcParams.items()))"
    )
    assert changed == "0"
