"""One experiment under one profile: its data and its run configurations (``open_study``
validates names and paths up front). Part I (``helpers.study.source``) trains the source model
of A; Parts II and III (``helpers.study.adaptation``) adapt it with each method, delta and seed.
Every finished piece is stored under a key of its full configuration, so a rerun skips it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import pandas as pd

from helpers.config.corpora import TableCorpus, to_config
from helpers.config.experiments import (
    Experiment,
    Profile,
    load_experiment,
    load_profile,
    sized,
)
from helpers.config.methods import CODE_VERSION, SOURCE, code_version, get_method
from helpers.config.settings import TrainConfig
from helpers.config.validation import SIZES
from helpers.data.corpora import fingerprint
from helpers.data.encoding import encode
from helpers.data.mixing import capped_weights, sample_mixture
from helpers.data.pools import check_sizes as check_sizes_of
from helpers.data.pools import experiment_pools
from helpers.data.schema import Corpus
from helpers.files import sha256_cached
from helpers.models.loading import load_tokenizer
from helpers.models.precision import compute
from helpers.paths import data_root as resolve_data_root
from helpers.paths import require_data_root
from helpers.study.progress import bars_wanted
from helpers.study.store import Store

SHARED_MODELS = "_models"  # store area of models shared across experiments (source models)
CHECKPOINT = "model"  # folder of a stored model (safetensors, via save_pretrained)


# What a view of a study (an axis, tuning) shares with it: the data, not the sizes or the name.
SHARED = ("tokenizer", "pools", "test_pools", "test_set", "test_subset", "fingerprints")


@dataclass
class Study:
    """An experiment, a profile, where data come from and where results go.

    Immutable in use: the data (pools, tokenizer, encoded test pools) are computed once and
    shared by every ``view`` of it; models kept in memory live in ``helpers.study.memory``.
    """

    experiment: Experiment
    profile: Profile
    data_root: Path
    store: Store
    progress: bool = True
    axis: str | None = None  # runs along a design axis are stored under <profile>/<axis>

    def view(self, axis: str, profile: Profile | None = None) -> Study:
        """The same experiment and data seen from an axis (its own profile sizes, its own store
        area ``<profile>/<axis>``): the data computed so far are shared, not redone."""
        other = replace(self, axis=axis, profile=profile or self.profile)
        other.__dict__.update({k: self.__dict__[k] for k in SHARED if k in self.__dict__})
        return other

    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.profile.model)

    @cached_property
    def pools(self) -> dict[str, tuple[Corpus, Corpus]]:
        """Corpus A and corpus B for each split, in the experiment's label space."""
        return experiment_pools(self.experiment, self.data_root)

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(self.pools["train"][0].label_names)

    def describe(self) -> pd.DataFrame:
        """Pool sizes per split and corpus, with what cleaning dropped and changed."""
        rows = [
            {
                "split": s,
                "corpus": c.name,
                "role": role,
                "examples": len(c.frame),
                "dropped": c.summary.get("raw", len(c.frame)) - len(c.frame),
                "control characters replaced": c.summary.get("control_char_replaced", 0),
            }
            for s, pair in self.pools.items()
            for role, c in zip("AB", pair)
        ]
        return pd.DataFrame(rows)

    # ---- data -------------------------------------------------------------------------
    def size(self, split: str) -> int:
        """Mixture size of a split: the profile's, or (null) the largest every delta allows."""
        n = {
            "train": self.profile.n_train,
            "validation": self.profile.n_val,
            "test": self.profile.n_test,
        }[split]
        a, b = self.pools[split]
        return n if n is not None else min(len(a.frame), len(b.frame))

    def mixture(self, split: str, delta: float, seed: int, n: int | None = None) -> pd.DataFrame:
        a, b = self.pools[split]
        return sample_mixture(a.frame, b.frame, delta, n or self.size(split), seed, stream=split)

    def encoded(self, frame: pd.DataFrame):
        return encode(frame, self.tokenizer, self.experiment.max_length)

    @cached_property
    def test_pools(self) -> pd.DataFrame:
        """Both whole test pools, each example with its inclusion ``weight`` in the capped
        pools the methods are scored on (``test_pool_cap``: rare classes kept whole)."""
        cap = self.profile.test_pool_cap
        frames = [
            c.frame.assign(weight=capped_weights(c.frame["label"].to_numpy(), cap, c.name))
            for c in self.pools["test"]
        ]
        return pd.concat(frames, ignore_index=True)

    @cached_property
    def test_set(self):
        """Both whole test pools, encoded: the source model of Part I is scored on all of it."""
        return self.encoded(self.test_pools)

    @cached_property
    def test_subset(self):
        """The capped test pools, encoded: every method's run is scored on these, with weights."""
        kept = self.test_pools[self.test_pools["weight"] > 0].reset_index(drop=True)
        return self.encoded(kept)

    def with_weights(self, preds: pd.DataFrame) -> pd.DataFrame:
        """Predictions on (a subset of) the test pools, with each example's inclusion weight."""
        by = self.test_pools.set_index(["source", "id"])["weight"]
        keys = pd.MultiIndex.from_frame(preds[["source", "id"]])
        return preds.assign(weight=by.reindex(keys).to_numpy())

    def weights(self, delta: float) -> dict[str, float]:
        """Corpus weights of the delta-mixture: (1 - delta) for A, delta for B."""
        return {self.experiment.source: 1 - delta, self.experiment.target: delta}

    # ---- configs ----------------------------------------------------------------------
    @cached_property
    def fingerprints(self) -> dict[str, str]:
        """Digests of the bytes corpus A and corpus B are read from (part of every run's key)."""
        e = self.experiment
        return {
            role: sha256_cached(declared.file)
            if isinstance(declared, TableCorpus)  # a declared file: its bytes
            else fingerprint(name, self.data_root)  # built-in (hub datasets: their settings)
            for role, name, declared in (
                ("source", e.source, e.source_data),
                ("target", e.target, e.target_data),
            )
        }

    @cached_property
    def compute(self) -> dict[str, str]:
        """Where runs train and in what precision (part of every key): the profile's precision
        where this device has it natively, else fp32 (said once)."""
        return compute(self.profile.train.precision)

    @cached_property
    def source_compute(self) -> dict[str, str]:
        """The same for the source model (the profile's precision too, unless set apart)."""
        return compute(self.profile.source_train.precision, quiet=True)

    def base_config(self, seed: int) -> dict:
        e, p = self.experiment, self.profile
        # A declared corpus's settings join the key; built-in names keep their keys unchanged.
        declared = {
            f"{role}_data": to_config(d)
            for role, d in (("source", e.source_data), ("target", e.target_data))
            if d is not None
        }
        return {
            "data": self.fingerprints,
            "experiment": e.name,
            "profile": p.name if self.axis is None else f"{p.name}/{self.axis}",
            "model": p.model,
            "task": e.task,
            "source": e.source,
            "target": e.target,
            "max_length": e.max_length,
            "seed": seed,
            "compute": self.compute,
            **declared,
        }

    def source_model_config(self, seed: int) -> dict:
        """The source model's identity: shared by every experiment with the same corpus A."""
        e, p = self.experiment, self.profile
        return {
            "experiment": SHARED_MODELS,  # a store area apart from every experiment's runs
            "role": "source_model",
            "data": {"source": self.fingerprints["source"]},
            "code_version": {SOURCE: CODE_VERSION[SOURCE]},
            "profile": p.name,
            "model": p.model,
            "task": e.task,
            "source": e.source,
            "max_length": e.max_length,
            "seed": seed,
            "n_train": p.n_source_train,
            "n_val": p.n_val,
            "compute": self.source_compute,
            "train": self.source_train_config(seed).to_dict(),
        }

    def source_train_config(self, seed: int) -> TrainConfig:
        """How the source model of a seed is trained: its random stream follows the seed."""
        precision = self.source_compute["precision"]
        return replace(self.profile.source_train, seed=seed, precision=precision)

    @property
    def precision(self) -> str:
        return self.compute["precision"]

    def source_model_dir(self, seed: int) -> Path:
        """Where the shared source model of a seed is kept (outside any experiment's runs)."""
        return self.store.run_dir(self.source_model_config(seed))

    def source_config(self, seed: int) -> dict:
        """This experiment's run of the source model: its evaluation on A and B."""
        return {
            **self.base_config(seed),
            "method": SOURCE,
            "delta": 0.0,
            "test_pool_cap": self.profile.test_pool_cap,  # its predictions carry the weights
            "code_version": {SOURCE: CODE_VERSION[SOURCE]},
            "source_model": self.source_model_dir(seed).name,
        }

    def train_config(self, method: str, seed: int, overrides: dict | None = None) -> TrainConfig:
        """The method's training settings: the profile's, the method's own, then ``overrides``
        (the tuned rates, from ``helpers.study.tuning``); the fine-tuning random stream (data
        order, dropout) follows the seed."""
        cfg = get_method(method).train_config(self.profile.train)
        return replace(cfg, seed=seed, precision=self.compute["precision"], **(overrides or {}))

    def method_config(self, method: str, delta: float, seed: int, train: TrainConfig) -> dict:
        """A method's run: what it is, the data and sizes it sees and how it is trained."""
        return {
            **self.base_config(seed),
            "method": method,
            "delta": delta,
            "method_spec": get_method(method).to_dict(),
            "code_version": code_version(method),
            "train": train.to_dict(),
            "sizes": {s: self.size(s) for s in ("train", "validation")},
            "test": {c.name: len(c.frame) for c in self.pools["test"]},  # whole pools
            "test_pool_cap": self.profile.test_pool_cap,  # each scored on at most this many
            "source_run": self.store.run_dir(self.source_config(seed)).name,
        }


def open_study(
    experiment: str,
    profile: str = "quick",
    data_root=None,
    reports_dir=None,
    progress: bool | None = None,
) -> Study:
    """Validate the names and the data root, and open an experiment under a profile.

    ``progress``: per-step training bars; None shows them where someone watches live (a
    terminal, JupyterLab), never in logs or the report runner's kernels.
    """
    base = load_profile(profile)
    exp = load_experiment(experiment, base)
    prof = sized(base, exp)  # with the experiment's own sample sizes, if it sets any
    progress = bars_wanted() if progress is None else progress
    # Declared files need no data root; built-in corpora (and the hub cache) live under one.
    root = resolve_data_root(data_root) if _declared_only(exp) else require_data_root(data_root)
    study = Study(exp, prof, root, Store(reports_dir), progress)
    check_sizes(study)  # loads and checks both corpora now, before anything is trained
    return study


def _declared_only(e: Experiment) -> bool:
    return e.source_data is not None and e.target_data is not None


def check_sizes(study: Study) -> None:
    """Raise before any training when a sample size of the study (its profile's, and those of
    the training-size axis) exceeds what a pool holds."""
    p, e = study.profile, study.experiment
    check_sizes_of(e, study.pools, {k: getattr(p, k) for k in SIZES})
    for axis in p.axes:
        if axis.name == "train_size" and e.name in axis.experiments:
            asked = {"n_train": int(max(axis.values))}
            check_sizes_of(e, study.pools, asked, f"axis train_size of profile {p.name!r}")
