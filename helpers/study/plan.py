"""The plan: every run of a study as one frozen object, its configuration and key built once.

A ``Run`` is a method fitted on one delta-mixture and seed with explicit training overrides
(the tuned rates: ``helpers.study.tuning`` returns them, nothing looks them up later), and the
``Run`` of the base it builds on, if any. Claiming, fitting, storing and reporting all read the
same object: nothing downstream rebuilds a run's configuration or re-reads shared state to learn
what it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from helpers.config.methods import SOURCE, Method, get_method
from helpers.config.settings import TrainConfig
from helpers.data.mixing import check_delta
from helpers.study.experiment import Study
from helpers.study.store import run_key

Overrides = tuple[tuple[str, float], ...]  # (setting, value) pairs, sorted: hashable, frozen


def frozen(overrides: dict | None) -> Overrides:
    return tuple(sorted((overrides or {}).items()))


@dataclass(frozen=True, eq=False)
class Run:
    """One run of the plan. ``test=False``: a tuning trial, scored on validation only."""

    study: Study
    method: str
    delta: float
    seed: int
    overrides: Overrides = ()
    base: Run | None = None
    test: bool = True
    keep: bool = False  # other runs build on its model: kept in memory and checkpointed

    def __post_init__(self):
        object.__setattr__(self, "delta", check_delta(self.delta))

    @property
    def entry(self) -> Method:
        return get_method(self.method)

    @cached_property
    def train(self) -> TrainConfig:
        return self.study.train_config(self.method, self.seed, dict(self.overrides))

    @cached_property
    def config(self) -> dict:
        config = self.study.method_config(self.method, self.delta, self.seed, self.train)
        if self.base is not None:  # what it builds on is part of what it is (its tuned rates)
            config["base_run"] = self.base.key
        return config

    @cached_property
    def key(self) -> str:
        return run_key(self.config)

    @property
    def label(self) -> str:
        """How the run is named in progress lines."""
        shown = "".join(f" {k}={v:g}" for k, v in self.overrides)
        where = "" if self.study.axis is None else f" [{self.study.axis}]"
        return (
            f"{self.study.experiment.name} {self.method} delta={self.delta:g} seed={self.seed}"
            + (f"{shown}{where}")
        )


@dataclass(frozen=True, eq=False)
class SourceRun:
    """A seed's source model and this experiment's run of it (Part I): its test predictions
    and degradation curve."""

    study: Study
    seed: int
    method: str = SOURCE

    @cached_property
    def config(self) -> dict:
        return self.study.source_config(self.seed)

    @cached_property
    def key(self) -> str:
        return run_key(self.config)

    @property
    def label(self) -> str:
        return f"{self.study.experiment.name} source seed={self.seed}"


def plan_run(
    study: Study,
    method: str,
    delta: float,
    seed: int,
    choices: dict,
    test: bool = True,
    keep: bool = False,
) -> Run:
    """The run of ``method`` at (delta, seed) with the chosen overrides, and its base's run."""
    entry = get_method(method)
    base = None
    if entry.base is not None:
        base = plan_run(study, entry.base, delta, seed, choices, keep=True)
    return Run(study, method, delta, seed, frozen(choices.get(method)), base, test, keep)


def plan_grid(study: Study, methods, choices: dict) -> list[Run]:
    """The main grid of ``methods``: every delta and each method's seeds, in the order every
    worker walks it (seeds outermost, so workers finish whole seeds first); a method others of
    the grid build on is kept."""
    p = study.profile
    built_on = {get_method(m).base for m in methods}
    return [
        plan_run(study, name, delta, seed, choices, keep=name in built_on)
        for seed in p.seeds
        for delta in p.deltas
        for name in methods
        if seed in p.seeds_of(name, delta)
    ]
