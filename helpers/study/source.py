"""Part I: the source model trained on corpus A, and how it degrades as delta grows.

The source model depends only on corpus A, the task, the model and the seed, so it is trained
once per seed and shared by every experiment that starts from the same corpus (the three books
experiments share one). Each experiment then stores its own run of it: predictions on both whole
test pools, from which every delta's expected metric follows exactly.
"""

from __future__ import annotations

import pandas as pd

from helpers.config.methods import get_method
from helpers.data.mixing import sample_mixture
from helpers.evaluation.metrics import bootstrap, expected_curve, test_metrics
from helpers.evaluation.predictions import predict
from helpers.models.loading import load_classifier
from helpers.study.experiment import CHECKPOINT, SOURCE, Study
from helpers.study.lock import claim, work_through
from helpers.study.memory import CHECKED, recall, remember, slot
from helpers.study.progress import RunProgress
from helpers.study.store import run_key
from helpers.training.checkpoints import clear_resume, load_model, save_model
from helpers.training.ranks import agree, barrier, is_main
from helpers.training.strategies import FitInputs, adapt


def _train_source(study: Study, seed: int, run) -> None:
    """Fine-tune every layer on corpus A (early stopping on A's validation macro-F1); the main
    process stores the model as a run of the shared models' area."""
    a_train, _ = study.pools["train"]
    a_val, _ = study.pools["validation"]
    n_train = study.profile.n_source_train or len(a_train.frame)
    n_val = study.profile.n_val or len(a_val.frame)
    train = sample_mixture(a_train.frame, a_train.frame, 0.0, n_train, seed, stream="source-train")
    val = sample_mixture(a_val.frame, a_val.frame, 0.0, n_val, seed, stream="source-validation")
    config = study.source_model_config(seed)
    folder = study.store.run_dir(config)
    inputs = FitInputs(
        load_classifier(study.profile.model, study.label_names, seed=seed),
        study.encoded(train),
        study.encoded(val),
        study.label_names,
        study.source_train_config(seed),
        study.progress,
        resume_dir=folder / "resume",
    )
    adapted = adapt(get_method("all"), inputs)
    run.fence()
    if is_main():  # the other processes of a data-parallel run wait, then read
        metric = study.profile.source_train.select_metric
        best = pd.DataFrame(
            [{"split": "validation", "metric": metric, "value": adapted.fits[0].best_score}]
        )
        save_model(adapted.model, folder / CHECKPOINT)
        study.store.save(config, best, {"history": adapted.history})
        clear_resume(folder / "resume")


def _shared_model(study: Study, seed: int):
    """The source model of a seed: trained by whichever worker claims it, then loaded."""
    config = study.source_model_config(seed)
    with claim(study.store, config) as run:
        if run.todo:
            _train_source(study, seed, run)
    return load_model(study.store.run_dir(config) / CHECKPOINT)


def source_model(study: Study, seed: int):
    """The model trained on all layers of corpus A, with this experiment's run of it stored.

    Raises ``Busy`` while another worker trains or evaluates it.
    """
    key = slot(study.store, run_key(study.source_model_config(seed)))
    model = recall(key)  # the model, shared by every view of the study (tuning, axes)
    if model is None:
        model = _shared_model(study, seed)
        remember(key, model)
    config = study.source_config(seed)
    stored = slot(study.store, run_key(config))  # this experiment's run, checked once
    if stored in CHECKED:
        return model
    with claim(study.store, config) as run:
        if run.todo:
            run.fence()
            if is_main():
                # Per-corpus test predictions: every mixture's metric follows from these two.
                batch = study.profile.train.eval_batch_size
                preds = predict(model, study.test_set, batch, precision=study.precision)
                preds = study.with_weights(preds)  # which the methods' capped pools keep
                whole = preds.drop(columns="weight")  # Part I reads the whole pools
                metrics = test_metrics(whole, study.label_names, study.profile.n_boot, seed)
                history = study.store.load(study.source_model_config(seed), "history")
                study.store.save(config, metrics, {"predictions": preds, "history": history})
    CHECKED.add(stored)
    return model


def degradation(study: Study, wait: bool = True) -> pd.DataFrame:
    """The source model along delta in [0, 1]: exact expected metrics and sampled mixtures.

    Tidy: seed, delta, estimate (expected | sampled | majority), metric, value, ci_low, ci_high.
    ``majority`` is the classifier that always answers the most frequent class of A's training
    split: the floor every trained model has to clear. No forward pass beyond the two
    per-corpus evaluations stored with the source model. A source model another worker trains
    is waited for (``wait``) or left out.
    """
    from helpers.study.adaptation import stored_only

    seeds = list(study.profile.seeds)
    todo = [s for s in seeds if not study.store.is_done(study.source_config(s))]
    if stored_only():  # read what is stored, train nothing
        seeds, todo = [s for s in seeds if s not in todo], []
    progress = RunProgress([SOURCE] * len(todo), "source model")

    def one(seed: int) -> pd.DataFrame:
        if seed in todo:
            progress.start(f"{study.experiment.name} on {study.experiment.source} seed={seed}")
        return curve(study, seed)

    done, _ = work_through(seeds, one, wait=wait)
    frames = [done[s] for s in seeds if s in done]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def curve(study: Study, seed: int) -> pd.DataFrame:
    """One seed's degradation curve, computed once from the stored source predictions.

    A stored source run is enough: the model itself is loaded (or trained) only when the run
    is missing, so a fully stored experiment re-renders without any training.
    """
    if not agree(lambda: study.store.is_done(study.source_config(seed))):
        source_model(study, seed)
    config = study.source_config(seed)
    if is_main() and not study.store.has_table(config, "curve"):
        # A curve that fails verification fails its run's manifest: source_model has just
        # redone the run, so the curve is computed again from verified predictions.
        study.store.add_table(config, "curve", _curve(study, seed))
    barrier()
    return study.store.load(config, "curve")


def _curve(study: Study, seed: int) -> pd.DataFrame:
    e, p = study.experiment, study.profile
    preds = study.store.load(study.source_config(seed), "predictions")
    preds = preds.drop(columns="weight", errors="ignore")  # Part I: the whole pools, as drawn
    nan = {"ci_low": float("nan"), "ci_high": float("nan")}
    majority = int(study.pools["train"][0].frame["label"].mode().iat[0])
    frames = [
        expected_curve(preds, e.source, e.target, p.curve_deltas, study.label_names).assign(
            estimate="expected", **nan
        ),
        expected_curve(
            preds.assign(pred=majority), e.source, e.target, p.curve_deltas, study.label_names
        ).assign(estimate="majority", **nan),
    ]
    by_id = preds.set_index("id")
    for delta in p.curve_deltas:
        ids = study.mixture("test", delta, seed)["id"]
        sampled = bootstrap(by_id.loc[ids].reset_index(), study.label_names, p.n_boot, seed)
        frames.append(sampled.assign(delta=delta, estimate="sampled"))
    out = pd.concat(frames, ignore_index=True)
    return out.assign(seed=seed, experiment=e.name, profile=p.name, model=p.model)
