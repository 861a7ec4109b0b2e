"""The schema of experiments.yaml: keys, types and ranges, checked when the file is read.

Every fault is one UserError naming the file, the key (``profiles.smoke.train.lr``) and the fix,
raised before anything loads data or trains. The dataclasses still validate their own values;
this adds what they cannot see: unknown keys, YAML types (``"32"`` is text, ``2.5`` is not a
size) and method names.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, fields

from helpers.config.cluster import TEXT, WHOLE, ClusterConfig
from helpers.config.corpora import declaration
from helpers.config.methods import METHODS
from helpers.config.settings import PRECISIONS, TrainConfig
from helpers.errors import UserError
from helpers.paths import check_name

TOP = ("tasks", "experiments", "profiles")
OPTIONAL_TOP = ("cluster",)  # where worker jobs run (helpers.config.cluster)
SIZES = ("n_source_train", "n_train", "n_val", "n_test")  # a profile's, or an experiment's own
EXPERIMENT_KEYS = ("task", "source", "target", "max_length", "family", *SIZES)
TUNE_KEYS = ("trials", "step", "seeds", "delta", "pool")
AXIS_KEYS = ("experiments", "methods", "values", "delta")


class _Where:
    """A file and a key path, to word one-line errors."""

    def __init__(self, path, key: str = ""):
        self.path, self.key = path, key

    def __truediv__(self, key) -> _Where:
        return _Where(self.path, f"{self.key}.{key}" if self.key else str(key))

    def fail(self, problem: str, fix: str) -> UserError:
        return UserError(f"{self.path}: {self.key}: {problem}; {fix}")

    def __str__(self) -> str:
        return f"{self.path}: {self.key}"


def _shown(value) -> str:
    kind = "text" if isinstance(value, str) else type(value).__name__
    return f"{value!r} ({kind})"


def _mapping(value, where: _Where, what: str) -> dict:
    if not isinstance(value, dict) or not value:
        raise where.fail(f"expected a mapping of {what}, got {_shown(value)}", "see the README")
    return value


def _keys(value: dict, allowed, required, where: _Where) -> None:
    for k in value:
        if k not in allowed:
            raise where.fail(
                f"unknown key {k!r}", f"remove it or use one of: {', '.join(sorted(allowed))}"
            )
    for k in required:
        if k not in value:
            raise where.fail(f"missing key {k!r}", f"add {k}: to this entry")


def integer(value, where: _Where, low: int = 1, null: bool = False) -> None:
    """An integer >= low (or null where allowed); ``"32"`` and ``2.5`` are refused."""
    if value is None and null:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        allowed = f"a whole number >= {low}" + (" or null" if null else "")
        raise where.fail(f"expected {allowed}, got {_shown(value)}", f"write {allowed}")


def number(value, where: _Where, low: float = 0.0, high: float = math.inf) -> None:
    """A finite number in [low, high]; YAML reads ``1e-4`` (no dot) as text, so say so."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not low <= value <= high:
        wanted = f">= {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"
        fix = "write a plain number"
        if isinstance(value, str) and _parses(value):
            fix = f"YAML reads {value} as text: write it with a dot, e.g. 1.0e-4"
        raise where.fail(f"expected a finite number {wanted}, got {_shown(value)}", fix)


def _parses(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _train(value, where: _Where) -> None:
    types = {f.name: f.type for f in fields(TrainConfig)}
    _keys(_mapping(value, where, "training settings"), types, (), where)
    for key, v in value.items():
        w, kind = where / key, types[key]
        if kind == "int":
            integer(v, w, low=0)
        elif kind == "float":
            number(v, w)
        elif kind == "bool" and not isinstance(v, bool):
            raise w.fail(f"expected true or false, got {_shown(v)}", "write true or false")
        elif kind == "str" and not isinstance(v, str):
            raise w.fail(f"expected text, got {_shown(v)}", "write a name")


def _methods(value, where: _Where) -> None:
    if not isinstance(value, list):
        raise where.fail(f"expected a list of method names, got {_shown(value)}", "see README")
    for name in value:
        if name not in METHODS:
            raise where.fail(
                f"unknown method {name!r}", f"choose from: {', '.join(sorted(METHODS))}"
            )


# Profile lists named for the notebooks they feed (02: surgical and baselines; 03: CBV beside)
RENAMED = {"surgical": "notebook_02", "cbv": "notebook_03"}


def _profile(value, where: _Where) -> None:
    from helpers.config.experiments import Profile  # the dataclass whose fields this checks

    spec = {f.name: f for f in fields(Profile) if f.name != "name"}
    required = [k for k, f in spec.items() if f.default is MISSING]
    for old, new in RENAMED.items():
        if isinstance(value, dict) and old in value:
            raise (where / old).fail(f"this list is now named {new!r}", f"rename {old}: to {new}:")
    _keys(_mapping(value, where, "profile settings"), spec, required, where)
    if not isinstance(value["model"], str) or not value["model"]:
        raise where.fail(f"model: expected a model name, got {_shown(value['model'])}", "fix it")
    seeds = value["seeds"]
    if not isinstance(seeds, list) or not seeds:
        raise (where / "seeds").fail(f"expected a list of seeds, got {_shown(seeds)}", "e.g. [0]")
    for i, s in enumerate(seeds):
        integer(s, where / f"seeds[{i}]", low=0)
    for key in ("deltas", "curve_deltas", "core_deltas"):
        if key in value:
            ds = value[key]
            if not isinstance(ds, list) or not ds:
                raise (where / key).fail(f"expected a list, got {_shown(ds)}", "e.g. [0.5, 1.0]")
            for i, d in enumerate(ds):
                number(d, where / f"{key}[{i}]", 0.0, 1.0)
    for key in SIZES:
        integer(value[key], where / key, null=True)
    integer(value["n_boot"], where / "n_boot")
    integer(value.get("max_length"), where / "max_length", null=True)
    for key in ("source_train", "train"):
        _train(value[key], where / key)
    for key in ("notebook_02", "notebook_03"):
        _methods(value[key], where / key)
    if "core" in value:
        _methods(value["core"], where / "core")
    integer(value.get("few_seeds"), where / "few_seeds", null=True)
    integer(value.get("test_pool_cap"), where / "test_pool_cap", low=2, null=True)
    tune = value.get("tune")
    if tune is not None:
        _keys(_mapping(tune, where / "tune", "tuning settings"), TUNE_KEYS, (), where / "tune")
        for key in ("trials", "seeds"):
            if key in tune:
                integer(tune[key], where / "tune" / key)
        if "step" in tune:
            number(tune["step"], where / "tune" / "step", low=1.0)
        if tune.get("delta") is not None:
            number(tune["delta"], where / "tune" / "delta", 0.0, 1.0)
    if value.get("precision", "fp32") not in PRECISIONS:
        raise (where / "precision").fail(
            f"expected one of {', '.join(PRECISIONS)}, got {_shown(value['precision'])}",
            "write fp32 or bf16 (bf16 falls back to fp32 where the device lacks it)",
        )
    for name, axis in (value.get("axes") or {}).items():
        check_name("axis", name, str(where / "axes"))
        w = where / "axes" / name
        _keys(
            _mapping(axis, w, "axis settings"), AXIS_KEYS, ("experiments", "methods", "values"), w
        )
        _methods(axis["methods"], w / "methods")


def _experiment(value, where: _Where, tasks: dict) -> None:
    _keys(_mapping(value, where, "experiment settings"), EXPERIMENT_KEYS, ("task",), where)
    for k in ("source", "target"):
        if k not in value:
            raise where.fail(f"missing key {k!r}", f"add {k}: a corpus name or a declared file")
        declaration(value[k], str(where / k))
    integer(value.get("max_length"), where / "max_length", null=True)
    for key in SIZES:
        if key in value:
            integer(value[key], where / key, null=True)
    if "family" in value and not isinstance(value["family"], str):
        raise (where / "family").fail(f"expected a name, got {_shown(value['family'])}", "fix it")
    if value["task"] not in tasks and value.get("max_length") is None:
        raise (where / "task").fail(
            f"task {value['task']!r} is not under tasks:",
            f"add it there with its max_length, or give this experiment max_length:, "
            f"or use one of: {', '.join(tasks)}",
        )


def _text(value, where: _Where) -> None:
    if not isinstance(value, str):
        raise where.fail(f"expected text, got {_shown(value)}", "write it as text")


def _cluster(value, where: _Where) -> None:
    """The ``cluster:`` section: YAML types here, values by the dataclass (the flags' check)."""
    if value is None:  # every key commented out
        return
    spec = [f.name for f in fields(ClusterConfig)]
    _keys(_mapping(value, where, "cluster settings"), spec, (), where)
    for key, v in value.items():
        if key in TEXT:
            _text(v, where / key)
        elif key in WHOLE:
            integer(v, where / key, low=WHOLE[key][0], null=WHOLE[key][1])
    setup = value.get("setup", [])
    if not isinstance(setup, list):
        raise (where / "setup").fail(
            f"expected a list of shell lines, got {_shown(setup)}", 'e.g. ["module load cuda"]'
        )
    for i, line in enumerate(setup):
        _text(line, where / f"setup[{i}]")
    sbatch = (
        _mapping(value["sbatch"], where / "sbatch", "sbatch parameters")
        if "sbatch" in value
        else {}
    )
    for key, v in sbatch.items():
        _text(key, where / "sbatch" / str(key))
        if not isinstance(v, str | int) or v is False:
            raise (where / "sbatch" / key).fail(
                f"expected text, a number or true, got {_shown(v)}", "true writes a bare flag"
            )
    try:
        ClusterConfig.from_yaml(value)
    except UserError as e:
        raise where.fail(str(e), "fix the value") from None


def check_config(raw, path) -> dict:
    """Check a parsed experiments.yaml against the schema; return it unchanged."""
    top = _Where(path)
    if raw is None:
        raise UserError(f"{path}: the file is empty; restore it with `git checkout {path}`")
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping with {', '.join(TOP)}; see the README")
    _keys(raw, TOP + OPTIONAL_TOP, TOP, _Where(path, "(top level)"))
    tasks = _mapping(raw["tasks"], top / "tasks", "task names to max_length")
    for name, length in tasks.items():
        integer(length, top / "tasks" / name)
    for name, spec in _mapping(raw["experiments"], top / "experiments", "experiments").items():
        check_name("experiment", name, str(top / "experiments"))
        _experiment(spec, top / "experiments" / name, tasks)
    for name, spec in _mapping(raw["profiles"], top / "profiles", "profiles").items():
        check_name("profile", name, str(top / "profiles"))
        _profile(spec, top / "profiles" / name)
    _cluster(raw.get("cluster"), top / "cluster")
    return raw
