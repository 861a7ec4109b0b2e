"""One run: a method fitted on one delta-mixture and seed, evaluated, stored (or read back)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd
import torch

from helpers.data.mixing import check_delta
from helpers.evaluation.metrics import bootstrap, test_metrics
from helpers.evaluation.predictions import predict
from helpers.models.cbv import CBVModel
from helpers.models.layers import layer_groups
from helpers.spec.methods import bases, get_method
from helpers.study.experiment import CHECKPOINT, Study
from helpers.study.lock import claim
from helpers.study.source import source_model
from helpers.study.store import canonical
from helpers.training.checkpoints import clear_resume, load_model, save_model
from helpers.training.prefix import predict_from_prefix
from helpers.training.ranks import agree, is_main
from helpers.training.strategies import Adapted, FitInputs, adapt

NO_CI = {"ci_low": float("nan"), "ci_high": float("nan")}


def memory_key(study: Study, name: str, delta: float, seed: int, overrides: dict | None) -> tuple:
    """What identifies a fitted model in memory: the run, its size and its training settings
    (so a tuning run and the final run it becomes share one model)."""
    settings = canonical(study.train_config(name, overrides).to_dict())
    return (name, delta, seed, study.size("train"), settings)


def _adapt(
    study: Study, name: str, delta: float, seed: int, overrides: dict | None = None
) -> Adapted:
    """Fit one method; bases of other methods (``bases()``) are kept in memory for reuse, and
    so is a chosen tuning trial until its final run is stored (``tuning._final_run``)."""
    key = memory_key(study, name, delta, seed, overrides)
    if key in study.kept:
        return study.kept[key]
    config = study.method_config(name, delta, seed, overrides)
    folder = study.store.run_dir(config)
    if name in bases() and (folder / CHECKPOINT).exists() and study.store.is_done(config):
        adapted = Adapted(load_model(folder / CHECKPOINT))
    else:
        inputs = FitInputs(
            source_model(study, seed),
            study.encoded(study.mixture("train", delta, seed)),
            study.encoded(study.mixture("validation", delta, seed)),
            study.label_names,
            study.train_config(name, overrides),
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


def run_method(
    study: Study,
    name: str,
    delta: float,
    seed: int,
    overrides: dict | None = None,
    announce: Callable[[], None] | None = None,
    test: bool = True,
    fitted: Callable[[Adapted], None] | None = None,
) -> pd.DataFrame:
    """Adapt, evaluate and store one run; skipped when already stored.

    Tidy metrics: the validation mixture (what tuning and selection see, no interval), each
    whole test pool, and the delta-mixture's exact expected metric from both pools, with 95%
    bootstrap intervals over test examples; and the run's wall time. Raises ``Busy`` while
    another worker computes this run or a run it needs. ``announce`` is called once this
    worker has claimed the run and is about to compute it. A tuning trial passes
    ``test=False`` (validation only: the test pools are not looked at, nor paid for) and
    ``fitted``, which is handed the fitted model, so the chosen trial's model can become its
    final run without being trained again.
    """
    delta = check_delta(delta)
    config = study.method_config(name, delta, seed, overrides)
    if not agree(lambda: study.store.is_done(config)):
        source_model(study, seed)  # needed first: raises Busy while another worker trains it
    with claim(study.store, config) as run:
        if run.todo:
            if announce is not None:
                announce()
            start = time.perf_counter()
            adapted = _adapt(study, name, delta, seed, overrides)
            if fitted is not None:
                fitted(adapted)
            run.fence()
            if is_main():  # the other processes of a data-parallel run wait, then read
                _store(study, config, adapted, delta, seed, start, test)
    return study.store.load(config)


def _store(
    study: Study,
    config: dict,
    adapted: Adapted,
    delta: float,
    seed: int,
    start: float,
    test: bool = True,
):
    """Evaluate an adapted model on validation and (``test``) both whole test pools, and store
    the run."""
    batch = study.profile.train.eval_batch_size
    val = predict(adapted.model, study.encoded(study.mixture("validation", delta, seed)), batch)
    parts = [bootstrap(val, study.label_names, n_boot=1).assign(split="validation", **NO_CI)]
    tables = {"history": adapted.history}
    if test:
        preds = _test_predictions(study, adapted, seed)
        weights = study.weights(delta)
        parts.append(test_metrics(preds, study.label_names, study.profile.n_boot, seed, weights))
        tables["predictions"] = preds
    cost = pd.DataFrame([{"split": "cost", "metric": "seconds"}])
    # what this run cost here: fitting and evaluating, in seconds of wall time
    parts.append(cost.assign(value=time.perf_counter() - start, **NO_CI))
    metrics = pd.concat(parts, ignore_index=True)
    if adapted.alphas:
        tables["coefficients"] = pd.DataFrame(
            {"group": list(adapted.alphas), "alpha": list(adapted.alphas.values())}
        )
    folder = study.store.run_dir(config)
    if config["method"] in bases():
        save_model(adapted.model, folder / CHECKPOINT)
    study.store.save(config, metrics, tables)
    clear_resume(folder / "resume")


def _test_predictions(study: Study, adapted: Adapted, seed: int) -> pd.DataFrame:
    """Predictions on both whole test pools, without redoing known work: a model with the
    source model's weights (``none``) has its source run's stored predictions; one trained
    above a frozen prefix (head, last layers) runs the test pools from the prefix's cached
    features, computed once per process and prefix and shared across deltas and trials."""
    batch = study.profile.train.eval_batch_size
    model = adapted.model
    if _same_weights(model, source_model(study, seed)):
        return study.store.load(study.source_config(seed), "predictions")
    depth = adapted.fits[-1].cached_prefix if adapted.fits else None
    if depth and not isinstance(model, CBVModel):
        return predict_from_prefix(model, layer_groups(model), depth, study.test_set, batch)
    return predict(model, study.test_set, batch)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Whether two models hold the same weights (on another device: taken as different)."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(
        sa[k].device == sb[k].device and torch.equal(sa[k], sb[k]) for k in sa
    )
