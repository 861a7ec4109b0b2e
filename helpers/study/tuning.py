"""Every method at its best: learning rates chosen on validation, then used for every seed.

Each trained method of each experiment gets the same budget of trials on a log ladder of
learning rates from its own start, extended past an edge until its choice is interior
(``helpers.study.search``). A trial is scored on the validation mixture at the tuning delta (by
default the profile's largest), as the mean over the profile's first ``tune.seeds`` seeds: only
validation is looked at, and the test pools are not paid for. Trials are stored as runs of their
own (profile ``<profile>/tuning``), so a rerun replays every search from the store without
training, and several workers share the trials of every experiment and method as one pool of
work: only a stage that needs an earlier choice (the coefficients' rate at the chosen weights'
rate, a method built on a tuned base) waits for it.

``tune`` returns the choices; nothing else holds them. The main grid's runs take them explicitly.
"""

from __future__ import annotations

import math
import sys

import pandas as pd

from helpers.config.methods import METHODS, get_method
from helpers.study.experiment import Study
from helpers.study.lock import Busy, wait_for_others, work_through
from helpers.study.plan import Run, frozen, plan_run
from helpers.study.progress import PREFIX
from helpers.study.runs import run_method
from helpers.study.search import MethodSearch
from helpers.training.engine import NonFiniteLossError

Choices = dict[str, dict[str, dict]]  # experiment -> method -> overrides (setting -> value)


def with_bases(names) -> list[str]:
    """The methods and the bases they build on, bases first, in registry order."""
    wanted = set(names) | {get_method(n).base for n in names if get_method(n).base}
    return [n for n in METHODS if n in wanted]


def tuning_point(study: Study) -> tuple[float, tuple[int, ...]]:
    """The delta and the seeds trials are fitted at."""
    grid, profile = study.profile.tune, study.profile
    delta = grid.delta if grid.delta is not None else max(profile.deltas)
    return float(delta), tuple(profile.seeds[: grid.seeds])


def fits(pool: list[Study]) -> list[tuple[Study, int]]:
    """The (experiment, seed) fits every trial of a pool averages: each experiment of the pool
    at least once and at least ``tune.seeds`` fits, the seeds taken in turn (three review
    experiments and two seeds: dvd at seed 0, electronics at 1, kitchen at 0)."""
    _, seeds = tuning_point(pool[0])
    n = max(len(seeds), len(pool))
    return [(pool[j % len(pool)], seeds[j % len(seeds)]) for j in range(n)]


def trial_runs(pool: list[Study], method: str, overrides: dict, choices: Choices) -> list[Run]:
    """The fits of one trial: the method with ``overrides`` at the tuning delta, stored apart
    (``<profile>/tuning``); a base it builds on is the main grid's run of the same fit."""
    out = []
    for study, seed in fits(pool):
        delta, _ = tuning_point(study)
        area = "tuning" if study.axis is None else f"{study.axis}/tuning"
        view = study.view(area, study.profile)
        base = get_method(method).base
        mine = choices.get(study.experiment.name, {})
        base_run = None if base is None else plan_run(study, base, delta, seed, mine)
        out.append(Run(view, method, delta, seed, frozen(overrides), base_run, test=False))
    return out


def pools(studies: list[Study], members=None) -> list[list[Study]]:
    """The groups of experiments tuned together: each experiment alone (``tune.pool``
    "experiment"), or every experiment of its task family ("family": the choices are the
    family's, the trials spread over its experiments; ``members(study)`` gives the family's
    studies, opened alike, which may go beyond those asked)."""
    out: dict[str, list[Study]] = {}
    for s in studies:
        if s.profile.tune.pool == "family" and members is not None:
            out.setdefault(s.experiment.group, members(s))
        else:
            out[s.experiment.name] = [s]
    return list(out.values())


class _Search:
    """One method of one pool of experiments being tuned."""

    def __init__(self, pool: list[Study], method: str):
        self.pool, self.method = pool, method
        self.search = MethodSearch(pool[0].profile, method)
        self.seconds: dict[tuple, float] = {}

    def ready(self, choices: Choices) -> bool:
        base = get_method(self.method).base
        return base is None or all(base in choices[s.experiment.name] for s in self.pool)


class NotStored(Busy):
    """A trial a dry replay needs is not in the store (it never trains)."""


def _fit(run: Run, dry: bool = False) -> tuple[float, float]:
    """(validation score, seconds) of one fit of a trial; a diverged fit scores -inf."""
    if dry and not run.study.store.is_done(run.config):
        raise NotStored(run.label)
    line = f"{PREFIX}tuning {run.label}"
    try:
        stored = run_method(run, lambda: print(line, file=sys.stderr, flush=True))
    except NonFiniteLossError:
        return -math.inf, float("nan")
    value = stored.set_index(["split", "metric"])["value"]
    return float(value[("validation", run.train.select_metric)]), float(value[("cost", "seconds")])


def tune(
    studies: list[Study], methods, wait: bool = True, dry: bool = False, members=None
) -> tuple[Choices, pd.DataFrame]:
    """Choose the learning rates of ``methods`` (and their bases) in every study.

    Returns (choices, table); the table is tidy: experiment, method, setting, value, rung,
    score (mean validation score of the trial), chosen, at_edge, overrides. ``dry``: replay the
    searches from the stored trials only, never training (a method whose search is not complete
    in the store has no choice then). ``members``: the studies of a study's task family (for
    ``tune.pool: family``; without it each experiment is tuned alone).
    """
    wait = wait and not dry
    studies = [s for s in studies if s.profile.tune is not None]
    groups = pools(studies, members)
    choices: Choices = {s.experiment.name: {} for g in groups for s in g}
    tuned = [m for m in with_bases(methods) if get_method(m).tuned_settings()]
    untuned = {m: {} for m in with_bases(methods) if m not in tuned}
    for name in choices:  # methods with nothing to tune run at their defaults
        choices[name].update(untuned)
    searches = [_Search(g, m) for g in groups for m in tuned]
    said = None
    while any(not x.search.done for x in searches):
        items = []
        for x in searches:
            if not x.search.done and x.ready(choices):
                for overrides in x.search.proposals():
                    runs = trial_runs(x.pool, x.method, overrides, choices)
                    items += [(x, i, r) for i, r in enumerate(runs)]
        done, pending = work_through(items, lambda item: _fit(item[2], dry), wait=False)
        progressed = _tell(items, done, choices)
        if not progressed:
            if not wait:
                break
            if len(pending) != said:
                print(f"waiting for {len(pending)} tuning run(s) held by other workers ...")
                said = len(pending)
            wait_for_others()
    asked = {s.experiment.name for s in studies}
    return {k: v for k, v in choices.items() if k in asked}, _table(searches)


def _tell(items: list, done: dict, choices: Choices) -> bool:
    """Hand every trial whose fits are all in its mean score; record finished choices."""
    trials: dict[tuple, list] = {}
    for item in items:
        x, _i, run = item
        trials.setdefault((x, run.overrides), []).append(item)
    progressed = False
    for (x, overrides), group in trials.items():
        results = [done.get(item) for item in group]
        if any(r is None for r in results):
            continue
        x.search.tell(dict(overrides), sum(score for score, _ in results) / len(results))
        x.seconds[overrides] = sum(sec for _, sec in results)
        progressed = True
        if x.search.done:
            for study in x.pool:
                choices[study.experiment.name][x.method] = dict(x.search.chosen)
    return progressed


def _table(searches: list[_Search]) -> pd.DataFrame:
    rows = [
        {"experiment": study.experiment.name, "profile": study.profile.name, **row}
        for x in searches
        for study in x.pool
        for row in x.search.rows()
    ]
    return pd.DataFrame(rows)
