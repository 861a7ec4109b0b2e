"""Every method at its best: learning rates chosen on validation, then used for every seed.

At one shift and one seed (the profile's ``tune`` section: by default its largest delta and its
first seed), each trained method is run once per point of a small grid of weight learning rates;
CBV variants then try a grid of coefficient learning rates at their chosen rate. The choice is
the highest validation macro-F1 (the test pools are never looked at); ties go to the point
nearest the profile's default. Every tuning run is an ordinary stored run, so the chosen one is
also that seed's final run at that delta, and reruns skip them all. The table of choices is
stored beside the experiment's runs as ``tuning.parquet``.
"""

from __future__ import annotations

import math

import pandas as pd

from helpers.files import write_table
from helpers.spec.methods import METHODS, Method, get_method
from helpers.study.experiment import Study
from helpers.study.runs import run_method
from helpers.training.engine import NonFiniteLossError

TABLE = "tuning.parquet"


def _stages(method: Method, grids) -> list[str]:
    """Which settings a method tunes, in order (an empty list: nothing it trains has a rate)."""
    if method.strategy in ("none", "wise_ft"):
        return []
    if method.strategy == "cbv_two_stage":  # weights are the base's; only coefficients learn
        return ["alpha_lr"] if grids.alpha_lr else []
    shared = method.settings.get("alpha_lr", 0.0) is None  # coefficients take the weights' rate
    if method.strategy == "cbv_joint" and not shared:
        return ["lr", "alpha_lr"] if grids.alpha_lr else ["lr"]
    return ["lr"]


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
    rows = []
    for name in _with_bases(methods):
        chosen: dict = {}
        for setting in _stages(get_method(name), grids):
            default = getattr(get_method(name).train_config(profile.train), setting)
            scored = []
            for value in getattr(grids, setting):
                overrides = {**chosen, setting: value}
                try:
                    stored = run_method(study, name, delta, seed, overrides)
                    val = stored.query("split == 'validation' and metric == @metric")
                    cost = stored.query("split == 'cost' and metric == 'seconds'")
                    score, seconds = float(val["value"].iat[0]), float(cost["value"].iat[0])
                except NonFiniteLossError:
                    score, seconds = -math.inf, float("nan")  # the rate diverged
                nearness = -abs(math.log(value / default)) if default > 0 else 0.0
                scored.append(((score, nearness), value))
                rows.append(
                    {
                        "method": name,
                        "setting": setting,
                        "value": value,
                        f"val_{metric}": score,
                        "seconds": seconds,
                        "context": overrides,
                    }
                )
            best = max(scored)[1]
            chosen[setting] = best
            for row in rows:
                if row["method"] == name and row["setting"] == setting:
                    row["chosen"] = row["value"] == best
        study.choices[name] = chosen
    table = pd.DataFrame(rows)
    if len(table):
        table = table.assign(
            experiment=study.experiment.name,
            profile=profile.name,
            delta=delta,
            seed=seed,
            context=table["context"].astype(str),
        )
        write_table(study.store.root / study.experiment.name / profile.name / TABLE, table)
    return table
