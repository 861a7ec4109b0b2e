"""Part I: the source model trained on corpus A, and how it degrades as delta grows."""

from __future__ import annotations

import pandas as pd

from helpers.data.mixing import sample_mixture
from helpers.evaluation.metrics import bootstrap, expected_curve, test_metrics
from helpers.evaluation.predictions import predict
from helpers.files import write_table
from helpers.models.loading import load_classifier
from helpers.spec.methods import get_method
from helpers.study.experiment import CHECKPOINT, SOURCE, Study
from helpers.study.lock import claim, work_through
from helpers.training.checkpoints import clear_resume, load_model, save_model
from helpers.training.ranks import barrier, is_main
from helpers.training.strategies import FitInputs, adapt


def source_model(study: Study, seed: int):
    """The model trained on all layers of corpus A (trained once, then loaded from the store).

    Raises ``Busy`` while another worker trains it.
    """
    config = study.source_config(seed)
    key = (SOURCE, 0.0, seed)
    if key in study.kept:
        return study.kept[key]
    with claim(study.store, config) as run:
        if run.todo:
            study.kept[key] = _train_source(study, seed, run)
    if key not in study.kept:
        study.kept[key] = load_model(study.store.run_dir(config) / CHECKPOINT)
    return study.kept[key]


def _train_source(study: Study, seed: int, run):
    """Train, evaluate and (main process only) store the source model of one seed."""
    config = study.source_config(seed)
    a_train, _ = study.pools["train"]
    a_val, _ = study.pools["validation"]
    n_train = study.profile.n_source_train or len(a_train.frame)
    n_val = study.profile.n_val or len(a_val.frame)
    train = study.encoded(
        sample_mixture(a_train.frame, a_train.frame, 0.0, n_train, seed, stream="source-train")
    )
    val = study.encoded(
        sample_mixture(a_val.frame, a_val.frame, 0.0, n_val, seed, stream="source-validation")
    )
    model = load_classifier(study.profile.model, study.label_names, seed=seed)
    folder = study.store.run_dir(config)
    inputs = FitInputs(
        model,
        train,
        val,
        study.label_names,
        study.profile.source_train,
        study.progress,
        resume_dir=folder / "resume",
    )
    adapted = adapt(get_method("all"), inputs)
    run.fence()
    if is_main():  # the other processes of a data-parallel run wait, then read
        # Per-corpus test predictions: every mixture's metric follows from these two.
        test = pd.concat([c.frame for c in study.pools["test"]], ignore_index=True)
        preds = predict(adapted.model, study.encoded(test), study.profile.train.eval_batch_size)
        metrics = test_metrics(preds, study.label_names, study.profile.n_boot, seed, mixture=False)
        save_model(adapted.model, folder / CHECKPOINT)
        study.store.save(config, metrics, {"predictions": preds, "history": adapted.history})
        clear_resume(folder / "resume")
    return adapted.model


def degradation(study: Study, wait: bool = True) -> pd.DataFrame:
    """The source model along delta in [0, 1]: exact expected metrics and sampled mixtures.

    Tidy: seed, delta, estimate (expected | sampled), metric, value, ci_low, ci_high. No forward
    pass beyond the two per-corpus evaluations stored with the source model. A source model
    another worker trains is waited for (``wait``) or left out.
    """
    seeds = list(study.profile.seeds)
    done, _ = work_through(seeds, lambda seed: curve(study, seed), wait=wait)
    frames = [done[s] for s in seeds if s in done]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def curve(study: Study, seed: int) -> pd.DataFrame:
    """One seed's degradation curve, computed once from the stored source predictions."""
    source_model(study, seed)
    folder = study.store.run_dir(study.source_config(seed))
    if is_main() and not (folder / "curve.parquet").exists():
        write_table(folder / "curve.parquet", _curve(study, seed))
    barrier()
    return pd.read_parquet(folder / "curve.parquet")


def _curve(study: Study, seed: int) -> pd.DataFrame:
    e, p = study.experiment, study.profile
    preds = study.store.load(study.source_config(seed), "predictions").set_index("id")
    curve = expected_curve(
        preds.reset_index(), e.source, e.target, p.curve_deltas, study.label_names
    )
    frames = [curve.assign(estimate="expected", ci_low=float("nan"), ci_high=float("nan"))]
    for delta in p.curve_deltas:
        ids = study.mixture("test", delta, seed)["id"]
        sampled = bootstrap(preds.loc[ids].reset_index(), study.label_names, p.n_boot, seed)
        frames.append(sampled.assign(delta=delta, estimate="sampled"))
    out = pd.concat(frames, ignore_index=True)
    return out.assign(seed=seed, experiment=e.name, profile=p.name, model=p.model)
