"""Parts II and III: every method adapts the source model on each delta-mixture and seed."""

from __future__ import annotations

import pandas as pd

from helpers.data.mixing import check_delta
from helpers.evaluation.metrics import test_metrics
from helpers.evaluation.predictions import predict
from helpers.spec.methods import bases, get_method
from helpers.study.experiment import CHECKPOINT, Study
from helpers.study.progress import RunProgress
from helpers.study.source import degradation, source_model
from helpers.training.checkpoints import clear_resume, load_model, save_model
from helpers.training.engine import NonFiniteLossError
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
            reuse=lambda base: _adapt(study, base, delta, seed),
            resume_dir=folder / "resume",
        )
        adapted = adapt(get_method(name), inputs)
    if name in bases():
        study.kept[key] = adapted
    return adapted


def run_method(study: Study, name: str, delta: float, seed: int) -> pd.DataFrame:
    """Adapt, evaluate on the test mixture and store one run; skipped when already stored."""
    delta = check_delta(delta)
    config = study.method_config(name, delta, seed)
    if study.store.is_done(config):
        return study.store.load(config)
    adapted = _adapt(study, name, delta, seed)
    test = study.encoded(study.mixture("test", delta, seed))
    preds = predict(adapted.model, test, study.profile.train.eval_batch_size)
    metrics = test_metrics(preds, study.label_names, study.profile.n_boot, seed)
    tables = {"predictions": preds, "history": adapted.history}
    if adapted.alphas:
        tables["coefficients"] = pd.DataFrame(
            {"group": list(adapted.alphas), "alpha": list(adapted.alphas.values())}
        )
    folder = study.store.run_dir(config)
    if name in bases():
        save_model(adapted.model, folder / CHECKPOINT)
    study.store.save(config, metrics, tables)
    clear_resume(folder / "resume")
    return study.store.load(config)


def run_methods(study: Study, methods, deltas=None, seeds=None) -> pd.DataFrame:
    """Every method x delta x seed; a run whose loss turns non-finite is reported and skipped."""
    deltas = [check_delta(d) for d in (deltas if deltas is not None else study.profile.deltas)]
    seeds = list(seeds if seeds is not None else study.profile.seeds)
    for name in methods:
        get_method(name)  # every name is checked before any training starts
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
    return run_methods(study, [*study.profile.surgical, *study.profile.cbv])
