"""Every method at its best: learning rates chosen on validation, then used for every seed.

At one shift and one seed (the profile's ``tune`` section: by default its largest delta and its
first seed), each trained method is run once per point of a small grid of weight learning rates;
CBV variants then try a grid of coefficient learning rates at their chosen rate. The choice is
the highest validation macro-F1 (the test pools are never looked at); ties go to the point
nearest the profile's default. Tuning runs are stored apart (profile ``<profile>/tuning``) so the
main grid holds only final runs; the chosen one is copied into the main grid as that seed's
final run at that delta (nothing is trained twice), and reruns skip them all. The table of
choices is stored beside the experiment's runs as ``tuning.parquet``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from functools import partial

import pandas as pd

from helpers.files import write_table
from helpers.spec.methods import METHODS, get_method
from helpers.study.experiment import Study
from helpers.study.lock import work_through
from helpers.study.progress import PREFIX
from helpers.study.runs import copy_run, run_method
from helpers.training.engine import NonFiniteLossError


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

    def trial(name: str, overrides: dict) -> tuple[float, float]:
        """Validation score and cost of one grid point (Busy while another worker runs it)."""
        shown = ", ".join(f"{k}={v:g}" for k, v in overrides.items())
        line = f"{PREFIX}tuning {study.experiment.name} {name}: {shown}"
        announce = partial(print, line, file=sys.stderr, flush=True)  # once this worker claims it
        try:
            stored = run_method(trials, name, delta, seed, overrides, announce=announce)
        except NonFiniteLossError:
            return -math.inf, float("nan")  # the rate diverged
        value = stored.set_index(["split", "metric"])["value"]
        return float(value[("validation", metric)]), float(value[("cost", "seconds")])

    for name in _with_bases(methods):
        chosen: dict = {}
        for setting in get_method(name).tuned_settings(bool(grids.alpha_lr)):
            default = getattr(get_method(name).train_config(profile.train), setting)
            values = list(getattr(grids, setting))
            # Several workers share the grid: each point is run by one, the others wait for it.
            point = partial(
                lambda v, n, base, s: trial(n, {**base, s: v}), n=name, base=chosen, s=setting
            )
            results, _ = work_through(values, point)
            scored = []
            for value in values:
                score, seconds = results[value]
                nearness = -abs(math.log(value / default)) if default > 0 else 0.0
                scored.append(((score, nearness), value))
                row = {"method": name, "setting": setting, "value": value}
                row.update({f"val_{metric}": score, "seconds": seconds})
                rows.append({**row, "context": {**chosen, setting: value}})
            (best_score, _), best = max(scored)
            chosen[setting] = best
            for row in rows:
                if row["method"] == name and row["setting"] == setting:
                    row["chosen"] = row["value"] == best
        study.choices[name] = chosen
        if chosen and best_score > -math.inf:  # the chosen trial is the main grid's run there
            copy = partial(copy_run, trials, study, delta=delta, seed=seed, overrides=chosen)
            work_through([name], copy)
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
