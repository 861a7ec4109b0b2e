"""What the stored runs cost, and each experiment's grid against the time budget.

Reads only stored tidy tables; never trains.
"""

from __future__ import annotations

import pandas as pd

from helpers.config.experiments import AXES, load_profile
from helpers.config.methods import SOURCE


def run_costs(store, profile: str, keys=None) -> pd.DataFrame:
    """Where the compute went: stored runs and their wall time per experiment and part of the
    study (main grid, tuning, each design axis). Source-model training is not a run of an
    experiment and is not counted. The chosen trial's final run counts its own wall time (its
    test evaluation, or its training too where it was trained again); stores written before
    trials skipped the test pools hold that run as a copy of its trial, wall time included, and
    such a copy is counted once, in tuning."""
    views = {"main grid": profile, "tuning": f"{profile}/tuning"}
    views.update({f"axis {a}": f"{profile}/{a}" for a in AXES})

    def costs(view: str) -> pd.DataFrame:
        metrics = store.collect("metrics", profile=view, keys=keys)  # the plan's, given keys
        if metrics.empty:
            return metrics
        return metrics[(metrics["split"] == "cost") & (metrics["metric"] == "seconds")]

    same = ["experiment", "method", "delta", "seed", "value"]
    found = {part: costs(view) for part, view in views.items()}
    trials = found["tuning"]
    rows = []
    for part, cost in found.items():
        if part == "main grid" and len(cost) and len(trials):
            copied = cost[same].merge(trials[same], how="left", indicator=True)["_merge"] == "both"
            cost = cost[~copied.to_numpy()]
        if cost.empty:
            continue
        for experiment, g in cost.groupby("experiment"):
            minutes, per_run = g["value"].sum() / 60, g["value"].mean()
            rows.append([experiment, part, len(g), round(minutes, 1), round(per_run, 1)])
    columns = ["experiment", "part", "runs computed", "minutes", "seconds per run"]
    return pd.DataFrame(rows, columns=columns).sort_values("experiment", kind="stable")


def grid_cells(profile: str) -> set[tuple[str, float, int]]:
    """The (method, delta, seed) cells of one experiment's main grid, the source runs (method
    "source", delta 0) included: each method at every delta on the seeds it runs there."""
    p = load_profile(profile)
    cells = {(SOURCE, 0.0, s) for s in p.seeds}
    for m in [*p.notebook_02, *p.notebook_03]:
        cells |= {(m, float(d), s) for d in p.deltas for s in p.seeds_of(m, d)}
    return cells


def grid_runs(profile: str) -> int:
    """How many runs one experiment's main grid holds."""
    return len(grid_cells(profile))


def complete_experiments(metrics: pd.DataFrame, profile: str) -> set[str]:
    """The stored experiments holding every run of their main grid (``grid_cells``): each
    (method, delta, seed) cell the profile asks for, runs of other settings not counted."""
    if metrics.empty:
        return set()
    wanted = grid_cells(profile)
    runs = metrics.drop_duplicates("run_key")
    have = {(r.experiment, (r.method, float(r.delta), int(r.seed))) for r in runs.itertuples()}
    out = set()
    for e in runs["experiment"].unique():
        if wanted <= {cell for name, cell in have if name == e}:
            out.add(e)
    return out


def budget(
    costs: pd.DataFrame,
    complete: set[str],
    workers: int = 2,
    target: float = 360.0,
) -> pd.DataFrame:
    """Each experiment's runs and the whole study's against its budget (``target`` minutes of
    wall time for everything: every experiment's grid, tuning and axes).

    ``costs`` is ``run_costs``; ``complete``, the experiments holding their whole main grid.
    Run minutes are summed over runs; the wall clock is taken as run minutes / ``workers`` (the
    stored times were measured with that many workers sharing the machine): a lower bound, as
    it assumes no worker ever waits, and it leaves out training the shared source models. The
    last row, "all", is judged against the target once every experiment is complete.
    """
    rows = []
    for experiment, g in costs.groupby("experiment", sort=True):
        parts = g.set_index("part")["minutes"]
        grid = float(parts.get("main grid", 0.0) + parts.get("tuning", 0.0))
        axes = float(parts[parts.index.str.startswith("axis")].sum())
        rows.append(
            {
                "experiment": experiment,
                "grid + tuning (run min)": round(grid, 1),
                "axes (run min)": round(axes, 1),
                f"wall min at {workers} workers": round((grid + axes) / workers, 1),
                "whole grid stored": "yes" if experiment in complete else "no",
            }
        )
    frame = pd.DataFrame(rows)
    wall = f"wall min at {workers} workers"
    done = bool(len(frame)) and (frame["whole grid stored"] == "yes").all()
    total = {
        "experiment": "all",
        "grid + tuning (run min)": round(frame["grid + tuning (run min)"].sum(), 1),
        "axes (run min)": round(frame["axes (run min)"].sum(), 1),
        wall: round(frame[wall].sum(), 1),
        "whole grid stored": "yes" if done else "no",
        "target (min)": target,
        "within target": ("yes" if frame[wall].sum() <= target else "no") if done else "partial",
    }
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)
