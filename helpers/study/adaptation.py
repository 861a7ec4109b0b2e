"""Parts II and III: every method adapts the source model on each delta-mixture and seed."""

from __future__ import annotations

import pandas as pd

from helpers.data.mixing import check_delta
from helpers.spec.methods import get_method
from helpers.study.axes import run_axes
from helpers.study.experiment import Study
from helpers.study.progress import RunProgress
from helpers.study.runs import run_method
from helpers.study.source import degradation
from helpers.study.tuning import tune
from helpers.training.engine import NonFiniteLossError


def run_methods(study: Study, methods, deltas=None, seeds=None) -> pd.DataFrame:
    """Every method x delta x seed; a run whose loss turns non-finite is reported and skipped."""
    deltas = [check_delta(d) for d in (deltas if deltas is not None else study.profile.deltas)]
    seeds = list(seeds if seeds is not None else study.profile.seeds)
    for name in methods:
        get_method(name)  # every name is checked before any training starts
    tune(study, methods)  # learning rates chosen on validation (stored runs are skipped)
    runs = [(name, delta, seed) for seed in seeds for delta in deltas for name in methods]
    todo = [r for r in runs if not study.store.is_done(study.method_config(*r))]
    progress = RunProgress([name for name, _, _ in todo])
    frames, failed = [], []
    for seed in seeds:
        for delta in deltas:
            for name in methods:
                if (name, delta, seed) in todo:
                    progress.start(f"{study.experiment.name} {name} delta={delta} seed={seed}")
                try:
                    frames.append(run_method(study, name, delta, seed))
                except NonFiniteLossError as e:
                    failed.append(f"{name} delta={delta} seed={seed}: {e}")
                    print(f"skipped: {failed[-1]}")
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out.attrs["failed"] = failed
    return out


def run_experiment(study: Study) -> pd.DataFrame:
    """Everything notebooks 01-03 compute for one experiment, without the notebooks."""
    degradation(study)
    out = run_methods(study, [*study.profile.surgical, *study.profile.cbv])
    run_axes(study)
    return out
