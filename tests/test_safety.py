"""Nothing read from outside is unpickled: no pickle imports, torch.load only weights-only."""

import ast

import pytest

from helpers.paths import ROOT

SOURCES = sorted([*(ROOT / "helpers").rglob("*.py"), *(ROOT / "tools").rglob("*.py")])


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_pickle_and_no_unsafe_torch_load(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            assert not any(
                n.split(".")[0] in ("pickle", "dill", "joblib", "cloudpickle") for n in names
            ), f"{path.name}:{node.lineno} imports a pickler"
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
            kwargs = {k.arg: ast.unparse(k.value) for k in node.keywords}
            assert kwargs.get("weights_only") == "True", f"{path.name}:{node.lineno}"


def test_checkpoints_are_safetensors_only():
    text = (ROOT / "helpers" / "training" / "checkpoints.py").read_text()
    assert "safe_serialization=True" in text and "use_safetensors=True" in text
