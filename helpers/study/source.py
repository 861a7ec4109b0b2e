"""Part I: the source model trained on corpus A, and how it degrades as delta grows.

The source model depends only on corpus A, the task, the model and the seed, so it is trained
once per seed and shared by every experiment that starts from the same corpus (the three books
experiments share one). Each experiment then stores its own run of it: predictions on both whole
test pools, from which every delta's expected metric follows exactly.
"""

from __future__ import annotations

import pandas as pd

from helpers.data.mixing import sample_mixture
from helpers.evaluation.metrics import bootstrap, expected_curve, test_metrics
from helpers.evaluation.predictions import predict
from helpers.files import write_json, write_table
from helpers.models.loading import load_classifier
from helpers.spec.methods import get_method
from helpers.study.experiment import CHECKPOINT, SOURCE, Study
from helpers.study.progress import RunProgress
from helpers.training.checkpoints import clear_resume, load_model, save_model
from helpers.training.strategies import FitInputs, adapt


def _train_source(study: Study, seed: int):
    """Fine-tune every layer on corpus A (early stopping on A's validation macro-F1)."""
    a_train, _ = study.pools["train"]
    a_val, _ = study.pools["validation"]
    n_train = study.profile.n_source_train or len(a_train.frame)
    n_val = study.profile.n_val or len(a_val.frame)
    train = sample_mixture(a_train.frame, a_train.frame, 0.0, n_train, seed, stream="source-train")
    val = sample_mixture(a_val.frame, a_val.frame, 0.0, n_val, seed, stream="source-validation")
    folder = study.source_model_dir(seed)
    inputs = FitInputs(
        load_classifier(study.profile.model, study.label_names, seed=seed),
        study.encoded(train),
        study.encoded(val),
        study.label_names,
        study.profile.source_train,
        study.progress,
        resume_dir=folder / "resume",
    )
    adapted = adapt(get_method("all"), inputs)
    # The checkpoint is written last: a folder holding it is a finished source model.
    write_table(folder / "history.parquet", adapted.history)
    write_json(folder / "config.json", study.source_model_config(seed))
    save_model(adapted.model, folder / CHECKPOINT)
    clear_resume(folder / "resume")
    return adapted.model


def source_model(study: Study, seed: int):
    """The model trained on all layers of corpus A, with this experiment's run of it stored."""
    key = (SOURCE, 0.0, seed)
    if key in study.kept:
        return study.kept[key]
    folder = study.source_model_dir(seed)
    if (folder / CHECKPOINT).exists():
        model = load_model(folder / CHECKPOINT)
    else:
        model = _train_source(study, seed)
    config = study.source_config(seed)
    if not study.store.is_done(config):
        # Per-corpus test predictions: every mixture's metric follows from these two.
        preds = predict(model, study.test_set, study.profile.train.eval_batch_size)
        metrics = test_metrics(preds, study.label_names, study.profile.n_boot, seed)
        history = pd.read_parquet(folder / "history.parquet")
        study.store.save(config, metrics, {"predictions": preds, "history": history})
    study.kept[key] = model
    return model


def degradation(study: Study) -> pd.DataFrame:
    """The source model along delta in [0, 1]: exact expected metrics and sampled mixtures.

    Tidy: seed, delta, estimate (expected | sampled | majority), metric, value, ci_low, ci_high.
    ``majority`` is the classifier that always answers the most frequent class of A's training
    split: the floor every trained model has to clear. No forward pass beyond the two
    per-corpus evaluations stored with the source model.
    """
    frames = []
    todo = [s for s in study.profile.seeds if not study.store.is_done(study.source_config(s))]
    progress = RunProgress([SOURCE] * len(todo), "source model")
    for seed in study.profile.seeds:
        if seed in todo:
            progress.start(f"{study.experiment.name} on {study.experiment.source} seed={seed}")
        source_model(study, seed)
        config = study.source_config(seed)
        if not study.store.has_table(config, "curve"):
            # A curve that fails verification fails its run's manifest: source_model has
            # just redone the run, so the curve is computed again from verified predictions.
            study.store.add_table(config, "curve", _curve(study, seed))
        frames.append(study.store.load(config, "curve"))
    return pd.concat(frames, ignore_index=True)


def _curve(study: Study, seed: int) -> pd.DataFrame:
    e, p = study.experiment, study.profile
    preds = study.store.load(study.source_config(seed), "predictions")
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
