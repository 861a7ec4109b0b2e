"""One run of the plan: a method fitted on one delta-mixture and seed, evaluated, stored (or read
back)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd
import torch

from helpers.evaluation.metrics import bootstrap, test_metrics
from helpers.evaluation.predictions import predict
from helpers.models.cbv import CBVModel
from helpers.models.layers import layer_groups
from helpers.study.experiment import CHECKPOINT
from helpers.study.lock import claim
from helpers.study.memory import recall, remember, slot
from helpers.study.plan import Run
from helpers.study.source import source_model
from helpers.training.checkpoints import clear_resume, load_model, save_model
from helpers.training.prefix import predict_from_prefix
from helpers.training.ranks import agree, is_main
from helpers.training.strategies import Adapted, FitInputs, adapt

NO_CI = {"ci_low": float("nan"), "ci_high": float("nan")}


def fitted(run: Run) -> Adapted:
    """The run's fitted model: a base of other runs (``run.keep``) is kept in memory and read
    back from its checkpoint once stored; any other run is fitted now."""
    study = run.study
    kept = recall(slot(study.store, run.key))
    if kept is not None:
        return kept
    folder = study.store.run_dir(run.config)
    if run.keep and (folder / CHECKPOINT).exists() and study.store.is_done(run.config):
        adapted = Adapted(load_model(folder / CHECKPOINT))
    else:
        inputs = FitInputs(
            source_model(study, run.seed),
            study.encoded(study.mixture("train", run.delta, run.seed)),
            study.encoded(study.mixture("validation", run.delta, run.seed)),
            study.label_names,
            run.train,
            study.progress,
            reuse=lambda _name: _base(run.base),
            resume_dir=folder / "resume",
        )
        adapted = adapt(run.entry, inputs)
    if run.keep:
        remember(slot(study.store, run.key), adapted)
    return adapted


def _base(run: Run) -> Adapted:
    """A method others build on: first stored as a run of its own, by whichever worker claims it."""
    run_method(run)
    return fitted(run)


def run_method(run: Run, announce: Callable[[], None] | None = None) -> pd.DataFrame:
    """Fit, evaluate and store one run; skipped when already stored. Its stored metrics.

    Tidy metrics: the validation mixture (what tuning and selection see, no interval), each
    whole test pool, and the delta-mixture's exact expected metric from both pools, with 95%
    bootstrap intervals over test examples; and the run's wall time. Raises ``Busy`` while
    another worker computes this run or a run it needs. ``announce`` is called once this
    worker has claimed the run and is about to compute it. A tuning trial (``run.test`` False)
    is scored on validation only: the test pools are neither looked at nor paid for.
    """
    study = run.study
    if not agree(lambda: study.store.is_done(run.config)):
        source_model(study, run.seed)  # needed first: raises Busy while another worker trains it
    with claim(study.store, run.config) as held:
        if held.todo:
            if announce is not None:
                announce()
            start = time.perf_counter()
            adapted = fitted(run)
            held.fence()
            if is_main():  # the other processes of a data-parallel run wait, then read
                _store(run, adapted, start)
    return study.store.load(run.config)


def _store(run: Run, adapted: Adapted, start: float) -> None:
    """Evaluate a fitted run on validation and (unless a tuning trial) both whole test pools,
    and store it."""
    study, delta, seed = run.study, run.delta, run.seed
    batch, precision = study.profile.train.eval_batch_size, study.precision
    val_set = study.encoded(study.mixture("validation", delta, seed))
    val = predict(adapted.model, val_set, batch, precision=precision)
    parts = [bootstrap(val, study.label_names, n_boot=1).assign(split="validation", **NO_CI)]
    tables = {"history": adapted.history}
    if run.test:
        preds = _test_predictions(run, adapted)
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
    folder = study.store.run_dir(run.config)
    # Others build on it: a checkpoint, so that any worker can read it back. A CBV model (the
    # base of a converged companion) has none: a worker without it in memory fits it again,
    # from the same seed to the same model.
    if run.keep and not isinstance(adapted.model, CBVModel):
        save_model(adapted.model, folder / CHECKPOINT)
    study.store.save(run.config, metrics, tables)
    clear_resume(folder / "resume")


def _test_predictions(run: Run, adapted: Adapted) -> pd.DataFrame:
    """Predictions on the (capped) test pools, with each example's weight, without redoing
    known work: a model with the source model's weights (``none``) has its source run's stored
    predictions; one trained above a frozen prefix (head, last layers) runs the test pools from
    the prefix's cached features, computed once per process and prefix and shared."""
    study = run.study
    batch, precision = study.profile.train.eval_batch_size, study.precision
    model = adapted.model
    if _same_weights(model, source_model(study, run.seed)):
        known = study.store.load(study.source_config(run.seed), "predictions")
        return known[known["weight"] > 0].reset_index(drop=True)
    data = study.test_subset
    depth = adapted.fits[-1].cached_prefix if adapted.fits else None
    if depth and not isinstance(model, CBVModel):
        groups = layer_groups(model)
        preds = predict_from_prefix(model, groups, depth, data, batch, precision)
    else:
        preds = predict(model, data, batch, precision=precision)
    return study.with_weights(preds)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Whether two models hold the same weights (on another device: taken as different)."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(
        sa[k].device == sb[k].device and torch.equal(sa[k], sb[k]) for k in sa
    )
