"""Parts II and III: every method adapts the source model on each delta-mixture and seed."""

from __future__ import annotations

import pandas as pd

from helpers.data.mixing import check_delta
from helpers.evaluation.metrics import test_metrics
from helpers.evaluation.predictions import predict
from helpers.spec.methods import bases, get_method
from helpers.study.experiment import CHECKPOINT, SOURCE, Study
from helpers.study.lock import claim, work_through
from helpers.study.source import curve, source_model
from helpers.training.checkpoints import clear_resume, load_model, save_model
from helpers.training.engine import NonFiniteLossError
from helpers.training.ranks import agree, is_main
from helpers.training.strategies import Adapted, FitInputs, adapt


def _adapt(study: Study, name: str, delta: float, seed: int) -> Adapted:
    """Fit one method; bases of other methods (``bases()``) are kept in memory for reuse."""
    key = (name, delta, seed)
    if key in study.kept:
        return study.kept[key]
    config = study.method_config(name, delta, seed)
    folder = study.store.run_dir(config)
    if name in bases() and (folder / CHECKPOINT).exists() and study.store.is_done(config):
        adapted = Adapted(load_model(folder / CHECKPOINT))
    else:
        train = study.encoded(study.mixture("train", delta, seed))
        val = study.encoded(study.mixture("validation", delta, seed))
        inputs = FitInputs(
            source_model(study, seed),
            train,
            val,
            study.label_names,
            study.profile.train,
            study.progress,
            reuse=lambda base: _base(study, base, delta, seed),
            resume_dir=folder / "resume",
        )
        adapted = adapt(get_method(name), inputs)
    if name in bases():
        study.kept[key] = adapted
    return adapted


def _base(study: Study, name: str, delta: float, seed: int) -> Adapted:
    """A method others build on: first stored as a run of its own, by whichever worker claims it."""
    run_method(study, name, delta, seed)
    return _adapt(study, name, delta, seed)


def run_method(study: Study, name: str, delta: float, seed: int) -> pd.DataFrame:
    """Adapt, evaluate on the test mixture and store one run; skipped when already stored.

    Raises ``Busy`` while another worker computes this run or a run it needs.
    """
    delta = check_delta(delta)
    config = study.method_config(name, delta, seed)
    if not agree(lambda: study.store.is_done(config)):
        source_model(study, seed)  # needed first: raises Busy while another worker trains it
    with claim(study.store, config) as run:
        if run.todo:
            adapted = _adapt(study, name, delta, seed)
            run.fence()
            if is_main():  # the other processes of a data-parallel run wait, then read
                _store(study, config, adapted, delta, seed)
    return study.store.load(config)


def _store(study: Study, config: dict, adapted: Adapted, delta: float, seed: int) -> None:
    """Evaluate an adapted model on the test mixture and store the run."""
    test = study.encoded(study.mixture("test", delta, seed))
    preds = predict(adapted.model, test, study.profile.train.eval_batch_size)
    metrics = test_metrics(preds, study.label_names, study.profile.n_boot, seed)
    tables = {"predictions": preds, "history": adapted.history}
    if adapted.alphas:
        tables["coefficients"] = pd.DataFrame(
            {"group": list(adapted.alphas), "alpha": list(adapted.alphas.values())}
        )
    folder = study.store.run_dir(config)
    if config["method"] in bases():
        save_model(adapted.model, folder / CHECKPOINT)
    study.store.save(config, metrics, tables)
    clear_resume(folder / "resume")


def run_methods(study: Study, methods, deltas=None, seeds=None, wait: bool = True) -> pd.DataFrame:
    """Every method x delta x seed; a run whose loss turns non-finite is reported and skipped.

    Runs other workers hold are come back to (``wait``) until stored, or left out (listed in
    ``attrs["pending"]``).
    """
    deltas = [check_delta(d) for d in (deltas if deltas is not None else study.profile.deltas)]
    seeds = list(seeds if seeds is not None else study.profile.seeds)
    for name in methods:
        get_method(name)  # every name is checked before any training starts
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


def run_all(items: list[tuple], wait: bool = True) -> tuple[dict, list, list[str]]:
    """Compute and store (study, method, delta, seed) items, sharing the work with other workers.

    Returns (stored table by item index, items left to other workers, failed runs). A source
    item also stores its degradation curve.
    """
    failed = []

    def do(index: int):
        study, name, delta, seed = items[index]
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


def run_experiment(study: Study) -> pd.DataFrame:
    """Everything notebooks 01-03 compute for one experiment, without the notebooks."""
    items = run_items(study)
    done, _, _ = run_all(items)
    frames = [t for i, t in done.items() if items[i][1] != SOURCE and t is not None]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
