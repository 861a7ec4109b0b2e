"""Parts II and III: every method adapts the source model on each delta-mixture and seed.

Runs are shared out between workers through per-run locks (``helpers.study.lock``): every
worker walks the same runs in the same order, skips the stored ones and those another live
worker holds, and comes back to the latter until they are stored.
"""

from __future__ import annotations

import pandas as pd

from helpers.data.mixing import check_delta
from helpers.spec.methods import get_method
from helpers.study.axes import run_axes
from helpers.study.experiment import SOURCE, Study
from helpers.study.lock import work_through
from helpers.study.progress import RunProgress
from helpers.study.runs import run_method
from helpers.study.source import curve
from helpers.study.tuning import tune
from helpers.training.engine import NonFiniteLossError


def run_methods(study: Study, methods, deltas=None, seeds=None, wait: bool = True) -> pd.DataFrame:
    """Every method x delta x seed, after tuning; a run whose loss turns non-finite is reported
    and skipped.

    Runs other workers hold are come back to (``wait``) until stored, or left out (listed in
    ``attrs["pending"]``).
    """
    deltas = [check_delta(d) for d in (deltas if deltas is not None else study.profile.deltas)]
    seeds = list(seeds if seeds is not None else study.profile.seeds)
    for name in methods:
        get_method(name)  # every name is checked before any training starts
    tune(study, methods)  # learning rates chosen on validation (stored runs are skipped)
    items = [(study, name, delta, seed) for seed in seeds for delta in deltas for name in methods]
    done, pending, failed = run_all(items, wait=wait)
    frames = [done[i] for i in range(len(items)) if done.get(i) is not None]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out.attrs["failed"], out.attrs["pending"] = failed, pending
    return out


def run_items(study: Study, methods=None) -> list[tuple]:
    """Every run of an experiment in the one order all workers walk: sources, then methods."""
    p = study.profile
    items = [(study, SOURCE, 0.0, seed) for seed in p.seeds]
    names = list(methods) if methods is not None else [*p.surgical, *p.cbv]
    for name in names:
        get_method(name)  # every name is checked before any training starts
    return items + [(study, n, d, s) for s in p.seeds for d in p.deltas for n in names]


def _stored(item: tuple) -> bool:
    study, name, delta, seed = item
    config = study.source_config(seed) if name == SOURCE else study.method_config(name, delta, seed)
    return study.store.is_done(config)


def run_all(items: list[tuple], wait: bool = True) -> tuple[dict, list, list[str]]:
    """Compute and store (study, method, delta, seed) items, sharing the work with other workers.

    Returns (stored table by item index, items left to other workers, failed runs). A source
    item also stores its degradation curve. Prints a line as each run to compute starts.
    """
    failed = []
    todo = [i for i, item in enumerate(items) if not _stored(item)]
    progress, started = RunProgress([items[i][1] for i in todo]), set()

    def do(index: int):
        study, name, delta, seed = items[index]
        if index in todo and index not in started:
            started.add(index)
            progress.start(f"{study.experiment.name} {name} delta={delta} seed={seed}")
        try:
            if name == SOURCE:
                return curve(study, seed)
            return run_method(study, name, delta, seed)
        except NonFiniteLossError as e:
            failed.append(f"{study.experiment.name} {name} delta={delta} seed={seed}: {e}")
            print(f"skipped: {failed[-1]}")
            return None

    done, pending = work_through(range(len(items)), do, wait=wait)
    return done, [items[i] for i in pending], failed


def run_series(studies: list[Study], methods=None) -> tuple[int, int, list[str]]:
    """Every run of ``studies`` in the order several workers share best: each seed's source
    model first (workers train different seeds side by side, not one while the other waits),
    then tuning, then the grid, then the design axes (with the profile's methods only).

    Returns (runs stored, runs in the grid, failed runs).
    """
    items = [i for s in studies for i in run_items(s, methods)]
    sources = [i for i in items if i[1] == SOURCE]
    first, _, failed = run_all(sources)
    for study in studies:  # learning rates chosen on validation before the grid runs
        tune(study, methods or [*study.profile.surgical, *study.profile.cbv])
    rest, _, failed_rest = run_all([i for i in items if i[1] != SOURCE])
    if not methods:
        for study in studies:  # the design axes of the claims that need one
            run_axes(study)
    failed += failed_rest
    return len(first) + len(rest) - len(failed), len(items), failed
