"""Parts II and III: every method adapts the source model on each delta-mixture and seed.

Runs are shared out between workers through per-run locks (``helpers.study.lock``): every
worker walks the same runs in the same order, skips the stored ones and those another live
worker holds, and comes back to the latter until they are stored. Tuning and the design axes
go through the same claim-and-wait path, so any number of workers end together, cleanly.
"""

from __future__ import annotations

import os

import pandas as pd

from helpers.config.methods import get_method
from helpers.paths import STORED_ONLY_ENV
from helpers.study.axes import axis_runs
from helpers.study.experiment import Study
from helpers.study.families import family_members
from helpers.study.lock import work_through
from helpers.study.plan import Run, SourceRun, plan_grid
from helpers.study.progress import RunProgress
from helpers.study.runs import run_method
from helpers.study.source import curve
from helpers.study.tuning import tune
from helpers.training.engine import NonFiniteLossError


def stored_only() -> bool:
    """Whether this process reads stored runs and trains nothing (``$CBV_STORED_ONLY`` is 1):
    a run or a tuning choice that is not stored is left out, never computed."""
    return os.environ.get(STORED_ONLY_ENV, "") == "1"


def chosen(methods, mine: dict) -> list[str]:
    """The methods whose tuning (and their base's) is stored: the others have no key yet."""
    return [
        m
        for m in methods
        if m in mine and (get_method(m).base is None or get_method(m).base in mine)
    ]


def check_methods(methods) -> list[str]:
    names = list(methods)
    for name in names:
        get_method(name)  # every name is checked before any training starts
    return names


def run_methods(study: Study, methods, wait: bool = True) -> pd.DataFrame:
    """Every method x delta x seed of one experiment, after tuning: the stored metrics of
    exactly the plan's runs. A run whose loss turns non-finite is reported and skipped. Runs
    other workers hold are come back to (``wait``) until stored, or left out (listed in
    ``attrs["pending"]``); ``attrs["tuning"]``: the tuning table (``tune``)."""
    methods, dry = check_methods(methods), stored_only()
    members = family_members([study])
    choices, tuning = tune([study], methods, wait=wait, dry=dry, members=members)
    mine = choices.get(study.experiment.name, {})
    runs = plan_grid(study, chosen(methods, mine) if dry else methods, mine)
    done, pending, failed = run_all(runs, wait=wait)
    frames = [done[r] for r in runs if done.get(r) is not None]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out.attrs["failed"], out.attrs["pending"], out.attrs["tuning"] = failed, pending, tuning
    out.attrs["untuned"] = [m for m in methods if m not in chosen(methods, mine)]
    return out


def planned(study: Study, methods, wait: bool = True) -> list[Run]:
    """The main grid of ``methods`` for one experiment, with the rates tuning chose (tuning
    first, where it is not stored yet)."""
    methods = check_methods(methods)
    choices, _ = tune([study], methods, wait=wait, members=family_members([study]))
    return plan_grid(study, methods, choices.get(study.experiment.name, {}))


def run_all(runs: list, wait: bool = True) -> tuple[dict, list, list[str]]:
    """Compute and store runs (``Run`` or ``SourceRun``), sharing the work with other workers.

    Returns (stored table by run, runs left to other workers, failed runs). A source run also
    stores its degradation curve. Prints a line as each run to compute starts. Under
    ``stored_only`` the runs not stored are returned as left, never computed.
    """
    failed: list[str] = []
    todo = {r for r in runs if not r.study.store.is_done(r.config)}
    if stored_only() and todo:
        kept = [r for r in runs if r not in todo]
        done, _, failed = run_all(kept, wait=False) if kept else ({}, [], [])
        return done, [r for r in runs if r in todo], failed
    progress, started = RunProgress([r.method for r in runs if r in todo]), set()

    def start(run) -> None:
        if run not in started:  # once: a run held by another worker is come back to
            started.add(run)
            progress.start(run.label)

    def do(run):
        announce = (lambda: start(run)) if run in todo else None
        try:
            if isinstance(run, SourceRun):
                if announce:
                    announce()
                return curve(run.study, run.seed)
            return run_method(run, announce)
        except NonFiniteLossError as e:
            failed.append(f"{run.label}: {e}")
            print(f"skipped: {failed[-1]}")
            return None

    done, pending = work_through(runs, do, wait=wait)
    return done, pending, failed


def source_runs(studies: list[Study]) -> list[SourceRun]:
    """Each seed's source run of every study, seeds outermost: workers train different seeds
    side by side, not one while the other waits."""
    seeds = sorted({seed for s in studies for seed in s.profile.seeds})
    return [SourceRun(s, seed) for seed in seeds for s in studies if seed in s.profile.seeds]


def run_series(studies: list[Study], methods=None) -> tuple[int, int, list[str]]:
    """Every run of ``studies`` in the order several workers share best: the source models,
    then tuning (one pool of trials over every study), then the grid, then the design axes
    (with the profile's methods only). Returns (runs stored, runs planned, failed runs)."""
    sources = source_runs(studies)
    first, _, failed = run_all(sources)
    names = {s.experiment.name: check_methods(methods or profile_methods(s)) for s in studies}
    wanted = sorted({m for ms in names.values() for m in ms})
    choices, _ = tune(studies, wanted, members=family_members(studies))
    grid: list[Run] = []
    for s in studies:
        grid += plan_grid(s, names[s.experiment.name], choices[s.experiment.name])
    # seeds outermost across experiments: a run stopped early holds whole seeds of every one
    grid.sort(key=lambda r: r.seed)
    rest, _, failed_rest = run_all(grid)
    stored, total = len(first) + len(rest), len(sources) + len(grid)
    if not methods:
        axes = [r for s in studies for r in axis_runs(s, choices[s.experiment.name])]
        more, _, failed_axes = run_all(axes)
        stored, total, failed_rest = (
            stored + len(more),
            total + len(axes),
            failed_rest + failed_axes,
        )
    failed += failed_rest
    return stored - len(failed), total, failed


def run_axes(study: Study, wait: bool = True) -> pd.DataFrame:
    """The design axes of one experiment (tuning the methods they build on first), stored."""
    methods = sorted({m for a in study.profile.axes for m in a.methods})
    dry = stored_only()
    choices, _ = tune([study], methods, wait=wait, dry=dry, members=family_members([study]))
    runs = axis_runs(study, choices.get(study.experiment.name, {}), dry=dry)
    done, _, _ = run_all(runs, wait=wait)
    frames = [
        done[r].assign(axis=r.study.axis, axis_value=_axis_value(r))
        for r in runs
        if done.get(r) is not None
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _axis_value(run: Run) -> float:
    if run.study.axis == "train_size":
        return float(run.study.size("train"))
    return float(run.train.alpha_lr if run.train.alpha_lr is not None else run.train.lr)


def profile_methods(study: Study) -> list[str]:
    """The methods of a profile: notebook 02's, then notebook 03's."""
    return [*study.profile.notebook_02, *study.profile.notebook_03]
