"""Experiments and profiles, read from experiments.yaml into frozen, self-validating configs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import yaml

from helpers.config.cluster import ClusterConfig
from helpers.config.corpora import Declared, corpus_name, declaration
from helpers.config.settings import TrainConfig, TuneConfig
from helpers.config.validation import SIZES, check_config
from helpers.errors import UserError, unknown_name
from helpers.paths import experiments_file


@dataclass(frozen=True)
class Experiment:
    """A shift from corpus A (``source``) to corpus B (``target``) in one task's label space.

    ``source`` and ``target`` are names; a corpus declared in experiments.yaml (a local file or a
    hub dataset, ``helpers.config.corpora``) also has its declaration in ``source_data`` /
    ``target_data`` (None for built-in corpora). ``sizes`` are the sample sizes it asks: those of
    the profile it was loaded under, with any of its own entry's n_source_train, n_train, n_val,
    n_test in their place (loaded without a profile: its own only).
    """

    name: str
    task: str
    source: str
    target: str
    max_length: int
    source_data: Declared | None = None
    target_data: Declared | None = None
    family: str = ""  # the task family results are pooled in (reviews, tweets); "" = the task
    sizes: tuple[tuple[str, int | None], ...] = ()

    def __post_init__(self):
        if self.source == self.target:
            raise UserError(
                f"experiment {self.name!r}: source and target are both named {self.source!r}; "
                "give one of them a different name: in experiments.yaml"
            )

    @property
    def group(self) -> str:
        """The task family this experiment's results are pooled in."""
        return self.family or self.task

    @property
    def builtin(self) -> bool:
        """True when both corpora are built-in names (no declared files or hub datasets)."""
        return self.source_data is None and self.target_data is None


AXES = {"train_size": "n_train", "alpha_rate": "alpha_lr"}  # axis name -> what it varies


@dataclass(frozen=True)
class Axis:
    """Extra runs along one design axis, for claims the main grid cannot test.

    ``train_size`` varies the training mixture's size (the poster: CBV fails to beat full
    fine-tuning on the largest data set); ``alpha_rate`` varies the coefficients' learning rate
    (the poster: alphas are slow to optimise at usual rates). Runs are stored apart from the main
    grid (profile ``<profile>/<axis>``), every seed of the profile, at one delta.
    """

    name: str
    experiments: tuple[str, ...]
    methods: tuple[str, ...]
    values: tuple[float, ...]
    delta: float = 1.0

    def __post_init__(self):
        if self.name not in AXES:
            raise unknown_name("axis", self.name, AXES)
        if not self.values or not all(v > 0 for v in self.values):
            raise UserError(f"axis {self.name!r} needs values > 0, got {self.values}")
        if self.name == "train_size" and not all(float(v).is_integer() for v in self.values):
            raise UserError(f"axis train_size needs whole numbers of examples, got {self.values}")


@dataclass(frozen=True)
class Profile:
    """How large an experiment is run: model, seeds, deltas, sample sizes, training settings."""

    name: str
    model: str
    seeds: tuple[int, ...]
    deltas: tuple[float, ...]
    n_source_train: int | None  # None: all the source corpus's training split holds
    n_train: int | None  # mixture sizes; None: the largest every delta allows
    n_val: int | None
    n_test: int | None
    n_boot: int
    source_train: TrainConfig
    train: TrainConfig
    notebook_02: tuple[str, ...]  # the methods notebook 02 shows (surgical and baselines)
    notebook_03: tuple[str, ...]  # the methods notebook 03 sets beside them (CBV, WiSE-FT)
    max_length: int | None = None  # caps the task's max_length (smoke runs)
    curve_deltas: tuple[float, ...] = field(default=tuple(i / 10 for i in range(11)))
    tune: TuneConfig | None = None  # learning-rate grids; None: every method uses train.lr
    precision: str = "fp32"  # "bf16" where the device has it natively (else fp32, said once)
    # Seeds per method: the ``core`` methods (those the claims rest on) run on every seed at
    # the ``core_deltas`` (None: every delta), everything else on the first ``few_seeds`` (None
    # or empty core: every method on every seed).
    core: tuple[str, ...] = ()
    few_seeds: int | None = None
    core_deltas: tuple[float, ...] | None = None
    # Methods are scored on each test pool capped at this many examples (rare classes whole,
    # weighted back to the whole pool: helpers.data.mixing.capped_weights); None: whole pools.
    test_pool_cap: int | None = None

    def seeds_of(self, method: str, delta: float | None = None) -> tuple[int, ...]:
        """The seeds a method runs on in this profile (at ``delta``)."""
        if not self.core or self.few_seeds is None:
            return self.seeds
        core_delta = self.core_deltas is None or delta is None or delta in self.core_deltas
        return self.seeds if method in self.core and core_delta else self.seeds[: self.few_seeds]

    axes: tuple[Axis, ...] = ()  # extra runs for the claims that need a design axis

    def __post_init__(self):
        if not self.seeds:
            raise UserError(f"profile {self.name!r} needs at least one seed")
        for d in self.deltas:
            if not 0 <= d <= 1:
                raise UserError(f"profile {self.name!r}: delta {d} is outside [0, 1]")
        for key in ("n_source_train", "n_train", "n_val", "n_test", "test_pool_cap"):
            v = getattr(self, key)
            if v is not None and v < 1:
                raise UserError(f"profile {self.name!r}: {key} must be >= 1 or null, got {v}")
        if self.n_boot < 1:
            raise UserError(f"profile {self.name!r}: n_boot must be >= 1, got {self.n_boot}")

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))


@lru_cache(maxsize=4)
def _read_checked(path: str, mtime_ns: int) -> dict:
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        problem = str(e).replace("\n", " ")
        raise UserError(f"{p}: not valid YAML ({problem}); fix the file") from None
    return check_config(raw, p)


def _read(path=None) -> dict:
    """experiments.yaml (or $CBV_EXPERIMENTS), parsed and checked against the schema."""
    p = Path(path) if path else experiments_file()
    if not p.is_file():
        raise UserError(f"configuration file {p} is missing; restore it from git")
    return _read_checked(str(p), p.stat().st_mtime_ns)


def experiment_names(path=None) -> list[str]:
    return list(_read(path)["experiments"])


def load_experiment(name: str, profile: Profile | None = None, path=None) -> Experiment:
    """Look an experiment up by name, under a profile (which may cap its max_length, and whose
    sample sizes it asks unless its own entry sets them)."""
    raw = _read(path)
    if name not in raw["experiments"]:
        raise unknown_name("experiment", name, raw["experiments"])
    spec = raw["experiments"][name]
    where = f"{path or experiments_file()}: experiments.{name}"
    corpora = {k: declaration(spec[k], f"{where}.{k}") for k in ("source", "target")}
    length = spec.get("max_length") or raw["tasks"][spec["task"]]
    if profile is not None and profile.max_length:
        length = min(length, profile.max_length)
    sizes = {k: spec[k] for k in SIZES if k in spec}  # the experiment's own, as written
    if profile is not None:
        sizes = {k: sizes.get(k, getattr(profile, k)) for k in SIZES}
    return Experiment(
        name=name,
        task=spec["task"],
        source=corpus_name(corpora["source"]),
        target=corpus_name(corpora["target"]),
        max_length=length,
        source_data=None if isinstance(corpora["source"], str) else corpora["source"],
        target_data=None if isinstance(corpora["target"], str) else corpora["target"],
        family=spec.get("family", ""),
        sizes=tuple(sizes.items()),
    )


def sized(profile: Profile, experiment: Experiment) -> Profile:
    """The profile ``experiment`` was loaded under, with the sample sizes it asks: the one place
    an experiment's own sizes are applied (a profile it sets no size of is returned as it is,
    so its runs keep their keys)."""
    own = {k: v for k, v in experiment.sizes if getattr(profile, k) != v}
    return replace(profile, **own) if own else profile


def load_profile(name: str, path=None) -> Profile:
    """Look a profile up by name and validate it."""
    raw = _read(path)
    if name not in raw["profiles"]:
        raise unknown_name("profile", name, raw["profiles"])
    spec = dict(raw["profiles"][name])
    where = f"{path or experiments_file()}: profiles.{name}"
    precision = spec.get("precision", "fp32")  # a profile setting, applied to every fit
    for key in ("source_train", "train"):
        try:
            spec[key] = TrainConfig(**{"precision": precision, **spec.get(key, {})})
        except UserError as e:
            raise UserError(f"{where}.{key}: {e}; fix the value") from None
    try:
        if spec.get("tune") is not None:
            grids = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["tune"].items()}
            spec["tune"] = TuneConfig(**grids)
        spec["axes"] = tuple(
            Axis(name=axis, **{k: tuple(v) if isinstance(v, list) else v for k, v in a.items()})
            for axis, a in (spec.get("axes") or {}).items()
        )
    except UserError as e:
        raise UserError(f"{where}: {e}; fix the value") from None
    for key in (
        "seeds",
        "deltas",
        "notebook_02",
        "notebook_03",
        "curve_deltas",
        "core",
        "core_deltas",
    ):
        if key in spec:
            spec[key] = tuple(spec[key])
    return Profile(name=name, **spec)


def load_cluster(path=None) -> ClusterConfig:
    """The ``cluster:`` section's settings (the defaults where the file has none)."""
    return ClusterConfig.from_yaml(_read(path).get("cluster"))
