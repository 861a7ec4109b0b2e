"""Every method at its best: learning rates chosen on validation, then used for every seed.

At one shift and one seed (the profile's ``tune`` section: by default its largest delta and its
first seed), each trained method is run once per point of a small grid of weight learning rates;
CBV variants then try a grid of coefficient learning rates at their chosen rate. The choice is
the highest validation macro-F1; ties go to the point nearest the profile's default. Trials are
scored on validation only: the test pools are neither looked at nor paid for. Tuning runs are
stored apart (profile ``<profile>/tuning``) so the main grid holds only final runs; the worker
that fitted the chosen trial keeps its model in memory and stores it as that seed's final run at
that delta (evaluated on the test pools, not trained again; should that worker die first, the
main grid trains it again from the same seed), and reruns skip them all. The table of choices is
stored beside the experiment's runs as ``tuning.parquet``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from functools import partial

import pandas as pd

from helpers.files import write_table
from helpers.spec.methods import METHODS, bases, get_method
from helpers.study.experiment import Study
from helpers.study.lock import work_through
from helpers.study.progress import PREFIX
from helpers.study.runs import memory_key, run_method
from helpers.training.engine import NonFiniteLossError
from helpers.training.strategies import Adapted


class _Held:
    """The trial models one worker keeps in memory while it tunes one method: its best new
    trial so far and the previous setting's choice, never more, however large the grid (a base
    method's trials also sit in ``study.kept`` until its choice, then only the chosen one
    stays). Ranks are the choice's own order, so the chosen trial is held by the worker that
    fitted it."""

    def __init__(self) -> None:
        self.models: dict[tuple, Adapted] = {}
        self.best: tuple | None = None  # (rank, key) of the best trial fitted in this grid
        self.chosen: tuple | None = None

    def offer(self, key: tuple, rank: tuple, adapted: Adapted) -> None:
        if self.best is not None and rank <= self.best[0]:
            return
        if self.best is not None and self.best[1] != self.chosen:
            self.models.pop(self.best[1], None)
        self.models[key], self.best = adapted, (rank, key)

    def choose(self, key: tuple) -> None:
        """Keep only the chosen trial's model (none if another worker fitted it)."""
        self.models = {key: self.models[key]} if key in self.models else {}
        self.chosen, self.best = key, None


def _with_bases(names) -> list[str]:
    """The methods and the bases they build on, bases first, in registry order."""
    wanted = set(names) | {get_method(n).base for n in names if get_method(n).base}
    return [n for n in METHODS if n in wanted]


def tune(study: Study, methods) -> pd.DataFrame:
    """Choose the learning rates of ``methods`` (and their bases) and keep them in the study.

    Tidy result: experiment, method, setting, value, val_<metric>, seconds, chosen.
    """
    grids, profile = study.profile.tune, study.profile
    if grids is None:
        return pd.DataFrame()
    delta = grids.delta if grids.delta is not None else max(profile.deltas)
    seed = grids.seed if grids.seed is not None else profile.seeds[0]
    metric = profile.train.select_metric
    trials = replace(study, axis="tuning", kept=study.kept, choices=study.choices)
    rows = []

    def trial(name: str, overrides: dict, rank: tuple, held: _Held, tried: set) -> tuple:
        """Validation score and cost of one grid point (Busy while another worker runs it)."""
        shown = ", ".join(f"{k}={v:g}" for k, v in overrides.items())
        line = f"{PREFIX}tuning {study.experiment.name} {name}: {shown}"
        announce = partial(print, line, file=sys.stderr, flush=True)  # once this worker claims it
        key = memory_key(trials, name, delta, seed, overrides)
        tried.add(key)
        fitted: list[Adapted] = []
        try:
            stored = run_method(
                trials, name, delta, seed, overrides, announce, test=False, fitted=fitted.append
            )
        except NonFiniteLossError:
            return -math.inf, float("nan")  # the rate diverged
        value = stored.set_index(["split", "metric"])["value"]
        score = float(value[("validation", metric)])
        if fitted:
            held.offer(key, (score, *rank), fitted[0])
        return score, float(value[("cost", "seconds")])

    for name in _with_bases(methods):
        chosen: dict = {}
        held, tried = _Held(), set()
        for setting in get_method(name).tuned_settings(bool(grids.alpha_lr)):
            default = getattr(get_method(name).train_config(profile.train), setting)
            values = list(getattr(grids, setting))

            def near(v: float, default=default) -> float:
                return -abs(math.log(v / default)) if default > 0 else 0.0

            # Several workers share the grid: each point is run by one, the others wait for it.
            # A point's rank is the choice's order: score, then nearness, then the larger value.
            def point(v, name=name, base=chosen, setting=setting, held=held, tried=tried):
                return trial(name, {**base, setting: v}, (near(v), v), held, tried)

            results, _ = work_through(values, point)
            scored = []
            for value in values:
                score, seconds = results[value]
                scored.append(((score, near(value)), value))
                row = {"method": name, "setting": setting, "value": value}
                row.update({f"val_{metric}": score, "seconds": seconds})
                rows.append({**row, "context": {**chosen, setting: value}})
            (best_score, _), best = max(scored)
            chosen[setting] = best
            held.choose(memory_key(trials, name, delta, seed, chosen))
            for row in rows:
                if row["method"] == name and row["setting"] == setting:
                    row["chosen"] = row["value"] == best
        study.choices[name] = chosen
        final = memory_key(study, name, delta, seed, None)
        for key in tried - {final}:  # a base's losing trials: nothing builds on them
            study.kept.pop(key, None)
        model = held.models.get(final)  # this worker's, if it fitted the chosen trial
        if chosen and best_score > -math.inf and model is not None:
            _final_run(study, name, delta, seed, final, model)
    table = pd.DataFrame(rows)
    if len(table):
        table = table.assign(
            experiment=study.experiment.name,
            profile=profile.name,
            delta=delta,
            seed=seed,
            context=table["context"].astype(str),
        )
        path = study.tuning_path()
        if path.exists():  # keep the choices of methods tuned by earlier calls
            kept = pd.read_parquet(path)
            table = pd.concat([kept[~kept["method"].isin(table["method"])], table])
        write_table(path, table.reset_index(drop=True))
    return table


def _final_run(study: Study, name: str, delta: float, seed: int, key: tuple, model) -> None:
    """Store the chosen trial, which this worker fitted and holds, as the main grid's run at its
    delta and seed: evaluated on the test pools, not trained again. Only the holder does this;
    a worker without the model leaves the cell to the main grid, which finds it stored (or, if
    the holder died first, trains it again from the same seed)."""
    study.kept.setdefault(key, model)
    try:
        work_through([name], lambda n: run_method(study, n, delta, seed))
    finally:
        if name not in bases():  # bases stay: the methods built on them reuse them
            study.kept.pop(key, None)
