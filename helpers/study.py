"""One experiment under one profile: the calls the notebooks make, section by section.

``open_study`` validates names and paths up front; ``source_model`` trains (or loads) the model
of corpus A; ``degradation`` evaluates it along the delta curve; ``run_methods`` adapts it with
each named method on each delta and seed. Every finished piece is stored under a key of its full
configuration, so a rerun skips it and an interrupted run redoes only what did not finish.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd
from helpers.checkpoints import clear_resume, load_model, save_model
from helpers.config import Experiment, Profile, load_experiment, load_profile
from helpers.corpora import Corpus, load_corpus
from helpers.encoding import encode
from helpers.errors import UserError
from helpers.evaluation import bootstrap, expected_curve, predict
from helpers.methods import Adapted, FitInputs, adapt, get_method
from helpers.mixing import check_delta, check_label_spaces, sample_mixture
from helpers.models import load_classifier, load_tokenizer
from helpers.paths import data_root as resolve_data_root
from helpers.results import Store, write_table
from helpers.training import NonFiniteLossError

CHECKPOINT = "model"          # folder of a stored model (safetensors, via save_pretrained)
KEEP_MODELS = {"all"}         # methods other methods build on (two-stage CBV, WiSE-FT)


@dataclass
class Study:
    """An experiment, a profile, where data come from and where results go."""

    experiment: Experiment
    profile: Profile
    data_root: Path
    store: Store
    progress: bool = True
    _adapted: dict = field(default_factory=dict, repr=False)

    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.profile.model)

    @cached_property
    def pools(self) -> dict[str, tuple[Corpus, Corpus]]:
        """Corpus A and corpus B for each split, in the experiment's label space."""
        out = {}
        for split in ("train", "validation", "test"):
            a = load_corpus(self.experiment.source, split, self.experiment.task, self.data_root)
            b = load_corpus(self.experiment.target, split, self.experiment.task, self.data_root)
            check_label_spaces(a, b)
            out[split] = (a, b)
        return out

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(self.pools["train"][0].label_names)

    def describe(self) -> pd.DataFrame:
        """Pool sizes per split and corpus, and the profile's sample sizes."""
        rows = [{"split": s, "corpus": c.name, "role": role, "examples": len(c.frame)}
                for s, pair in self.pools.items() for role, c in zip("AB", pair)]
        return pd.DataFrame(rows)

    # ---- data -------------------------------------------------------------------------
    def size(self, split: str) -> int:
        """Mixture size of a split: the profile's, or (null) the largest every delta allows."""
        n = {"train": self.profile.n_train, "validation": self.profile.n_val,
             "test": self.profile.n_test}[split]
        a, b = self.pools[split]
        return n if n is not None else min(len(a.frame), len(b.frame))

    def mixture(self, split: str, delta: float, seed: int, n: int | None = None) -> pd.DataFrame:
        a, b = self.pools[split]
        return sample_mixture(a.frame, b.frame, delta, n or self.size(split), seed, stream=split)

    def encoded(self, frame: pd.DataFrame):
        return encode(frame, self.tokenizer, self.experiment.max_length)

    # ---- configs ----------------------------------------------------------------------
    def base_config(self, seed: int) -> dict:
        e, p = self.experiment, self.profile
        return {"experiment": e.name, "profile": p.name, "model": p.model, "task": e.task,
                "source": e.source, "target": e.target, "max_length": e.max_length,
                "seed": seed}

    def source_config(self, seed: int) -> dict:
        p = self.profile
        return {**self.base_config(seed), "method": "source", "delta": 0.0,
                "n_train": p.n_source_train, "n_val": p.n_val, "train": p.source_train.to_dict()}

    def method_config(self, method: str, delta: float, seed: int) -> dict:
        p = self.profile
        return {**self.base_config(seed), "method": method, "delta": delta,
                "method_spec": get_method(method).to_dict(), "train": p.train.to_dict(),
                "sizes": {s: self.size(s) for s in ("train", "validation", "test")},
                "source_run": self.store.run_dir(self.source_config(seed)).name}


def open_study(experiment: str, profile: str = "quick", data_root=None, reports_dir=None,
               progress: bool = True) -> Study:
    """Validate the names and the data root, and open an experiment under a profile."""
    prof = load_profile(profile)
    exp = load_experiment(experiment, prof)
    root = resolve_data_root(data_root)
    if not root.is_dir():
        raise UserError(f"data root {root} does not exist; fetch the corpora with "
                        f"`python -m helpers download --data-dir {root}`, or point --data-dir "
                        "(or $CBV_DATA_DIR) at a folder that holds them")
    study = Study(exp, prof, root, Store(reports_dir), progress)
    check_sizes(study)  # loads and checks both corpora now, before anything is trained
    return study


def check_sizes(study: Study) -> None:
    """Raise before any training when a profile's sample size exceeds what a pool holds.

    Mixtures span delta = 0 (all A) to delta = 1 (all B), so each size must fit both pools.
    """
    p = study.profile
    wanted = {"train": p.n_train, "validation": p.n_val, "test": p.n_test}
    for split, n in wanted.items():
        a, b = study.pools[split]
        if n is not None and n > min(len(a.frame), len(b.frame)):
            raise UserError(f"profile {p.name!r} asks for {split} mixtures of {n}, but the "
                            f"{split} pools hold {len(a.frame)} ({a.name}) and {len(b.frame)} "
                            f"({b.name}); set n_{'val' if split == 'validation' else split} to "
                            f"at most {min(len(a.frame), len(b.frame))} or null in "
                            "experiments.yaml")
    a_train = study.pools["train"][0]
    if p.n_source_train is not None and p.n_source_train > len(a_train.frame):
        raise UserError(f"profile {p.name!r} asks for {p.n_source_train} source training "
                        f"examples, but {a_train.name} holds {len(a_train.frame)}; lower "
                        "n_source_train or set it to null in experiments.yaml")


# ---- Part I: the source model and its degradation ---------------------------------------
def _load_stored_model(folder: Path):
    return load_model(folder / CHECKPOINT)


def source_model(study: Study, seed: int):
    """The model trained on all layers of corpus A (trained once, then loaded from the store)."""
    config = study.source_config(seed)
    if ("source", seed) in study._adapted:
        return study._adapted[("source", seed)]
    if study.store.is_done(config):
        model = _load_stored_model(study.store.run_dir(config))
        study._adapted[("source", seed)] = model
        return model
    a_train, _ = study.pools["train"]
    a_val, _ = study.pools["validation"]
    n_train = study.profile.n_source_train or len(a_train.frame)
    n_val = study.profile.n_val or len(a_val.frame)
    train = study.encoded(sample_mixture(a_train.frame, a_train.frame, 0.0, n_train, seed,
                                         stream="source-train"))
    val = study.encoded(sample_mixture(a_val.frame, a_val.frame, 0.0, n_val, seed,
                                       stream="source-validation"))
    model = load_classifier(study.profile.model, study.label_names, seed=seed)
    folder = study.store.run_dir(config)
    inputs = FitInputs(model, train, val, study.label_names, study.profile.source_train,
                       study.progress, resume_dir=folder / "resume")
    adapted = adapt(get_method("all"), inputs)
    # Per-corpus test predictions: every mixture's metric follows from these two.
    test = pd.concat([c.frame for c in study.pools["test"]], ignore_index=True)
    preds = predict(adapted.model, study.encoded(test), study.profile.train.eval_batch_size)
    metrics = pd.concat([bootstrap(g, study.label_names, study.profile.n_boot, seed)
                         .assign(split=f"test:{src}") for src, g in preds.groupby("source")])
    save_model(adapted.model, folder / CHECKPOINT)
    study.store.save(config, metrics, {"predictions": preds, "history": adapted.history})
    clear_resume(folder / "resume")
    study._adapted[("source", seed)] = adapted.model
    return adapted.model


def degradation(study: Study) -> pd.DataFrame:
    """The source model along delta in [0, 1]: exact expected metrics and sampled mixtures.

    Tidy: seed, delta, estimate (expected | sampled), metric, value, ci_low, ci_high. No forward
    pass beyond the two per-corpus evaluations stored with the source model.
    """
    frames = []
    e, p = study.experiment, study.profile
    for seed in p.seeds:
        source_model(study, seed)
        folder = study.store.run_dir(study.source_config(seed))
        if not (folder / "curve.parquet").exists():
            write_table(folder / "curve.parquet", _curve(study, seed))
        frames.append(pd.read_parquet(folder / "curve.parquet"))
    return pd.concat(frames, ignore_index=True)


def _curve(study: Study, seed: int) -> pd.DataFrame:
    e, p = study.experiment, study.profile
    preds = study.store.load(study.source_config(seed), "predictions").set_index("id")
    curve = expected_curve(preds.reset_index(), e.source, e.target, p.curve_deltas,
                           study.label_names)
    frames = [curve.assign(estimate="expected", ci_low=float("nan"), ci_high=float("nan"))]
    for delta in p.curve_deltas:
        ids = study.mixture("test", delta, seed)["id"]
        sampled = bootstrap(preds.loc[ids].reset_index(), study.label_names, p.n_boot, seed)
        frames.append(sampled.assign(delta=delta, estimate="sampled"))
    out = pd.concat(frames, ignore_index=True)
    return out.assign(seed=seed, experiment=e.name, profile=p.name, model=p.model)


# ---- Parts II and III: adapting the source model ----------------------------------------
def _adapt(study: Study, name: str, delta: float, seed: int) -> Adapted:
    """Fit one method; bases of other methods (KEEP_MODELS) are kept in memory for reuse."""
    key = (name, delta, seed)
    if key in study._adapted:
        return study._adapted[key]
    config = study.method_config(name, delta, seed)
    folder = study.store.run_dir(config)
    if name in KEEP_MODELS and (folder / CHECKPOINT).exists() and study.store.is_done(config):
        adapted = Adapted(_load_stored_model(folder))
    else:
        train = study.encoded(study.mixture("train", delta, seed))
        val = study.encoded(study.mixture("validation", delta, seed))
        inputs = FitInputs(source_model(study, seed), train, val, study.label_names,
                           study.profile.train, study.progress,
                           reuse=lambda base: _adapt(study, base, delta, seed),
                           resume_dir=folder / "resume")
        adapted = adapt(get_method(name), inputs)
    if name in KEEP_MODELS:
        study._adapted[key] = adapted
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
    p = study.profile
    metrics = [bootstrap(preds, study.label_names, p.n_boot, seed).assign(split="test")]
    metrics += [bootstrap(g, study.label_names, p.n_boot, seed).assign(split=f"test:{src}")
                for src, g in preds.groupby("source")]
    tables = {"predictions": preds, "history": adapted.history}
    alphas = adapted.extras.get("alphas")
    if alphas:
        tables["coefficients"] = pd.DataFrame({"group": list(alphas),
                                               "alpha": list(alphas.values())})
    folder = study.store.run_dir(config)
    if name in KEEP_MODELS:
        save_model(adapted.model, folder / CHECKPOINT)
    study.store.save(config, pd.concat(metrics, ignore_index=True), tables,
                     {k: v for k, v in adapted.extras.items() if k != "alphas"})
    clear_resume(folder / "resume")
    return study.store.load(config)


def run_methods(study: Study, methods, deltas=None, seeds=None) -> pd.DataFrame:
    """Every method x delta x seed; a run whose loss turns non-finite is reported and skipped."""
    deltas = [check_delta(d) for d in (deltas if deltas is not None else study.profile.deltas)]
    seeds = list(seeds if seeds is not None else study.profile.seeds)
    for name in methods:
        get_method(name)  # every name is checked before any training starts
    frames, failed = [], []
    for seed in seeds:
        for delta in deltas:
            for name in methods:
                try:
                    frames.append(run_method(study, name, delta, seed))
                except NonFiniteLossError as e:
                    failed.append(f"{name} delta={delta} seed={seed}: {e}")
                    print(f"skipped: {failed[-1]}")
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out.attrs["failed"] = failed
    return out


def stored(study: Study, table: str = "metrics", methods=None) -> pd.DataFrame:
    """A stored table of this experiment and profile, optionally for some methods only."""
    frame = study.store.collect(table, [study.experiment.name], study.profile.name)
    if methods is not None and len(frame):
        frame = frame[frame["method"].isin(list(methods))]
    return frame.reset_index(drop=True)



def run_experiment(study: Study) -> pd.DataFrame:
    """Everything notebooks 01-03 compute for one experiment, without the notebooks."""
    degradation(study)
    return run_methods(study, [*study.profile.surgical, *study.profile.cbv])
