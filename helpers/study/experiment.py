"""One experiment under one profile: its data, its run configurations, and its stored tables.

``open_study`` validates names and paths up front. Part I (``helpers.study.source``) trains the
source model of corpus A and its degradation curve; Parts II and III (``helpers.study.adaptation``)
adapt it with each named method on each delta and seed. Every finished piece is stored under a
key of its full configuration, so a rerun skips it and an interrupted run redoes only what did
not finish.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import pandas as pd

from helpers.data.corpora import fingerprint
from helpers.data.encoding import encode
from helpers.data.mixing import sample_mixture
from helpers.data.pools import experiment_pools
from helpers.data.schema import Corpus
from helpers.errors import UserError
from helpers.files import sha256_cached
from helpers.models.loading import load_tokenizer
from helpers.paths import data_root as resolve_data_root
from helpers.paths import require_data_root
from helpers.spec.corpora import TableCorpus, to_config
from helpers.spec.experiments import Experiment, Profile, load_experiment, load_profile
from helpers.spec.methods import CODE_VERSION, SOURCE, code_version, get_method
from helpers.spec.settings import TrainConfig
from helpers.study.progress import bars_wanted
from helpers.study.store import Store

SHARED_MODELS = "_models"  # store area of models shared across experiments (source models)
TUNING = "tuning.parquet"  # the tuned learning rates, beside an experiment's runs
CHECKPOINT = "model"  # folder of a stored model (safetensors, via save_pretrained)


@dataclass
class Study:
    """An experiment, a profile, where data come from and where results go."""

    experiment: Experiment
    profile: Profile
    data_root: Path
    store: Store
    progress: bool = True
    axis: str | None = None  # runs along a design axis are stored under <profile>/<axis>
    # Fitted models that other runs build on (source models, bases in the method registry),
    # kept in memory by (method, delta, seed); the source model's delta is 0.
    kept: dict[tuple, object] = field(default_factory=dict, repr=False)
    # Training settings chosen on validation per method (helpers.study.tuning fills it).
    choices: dict[str, dict] = field(default_factory=dict)

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
        """Pool sizes per split and corpus, and the profile's sample sizes."""
        rows = [
            {"split": s, "corpus": c.name, "role": role, "examples": len(c.frame)}
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
    def test_set(self):
        """Both whole test pools, encoded: every run is evaluated on all of them once."""
        return self.encoded(pd.concat([c.frame for c in self.pools["test"]], ignore_index=True))

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
            "train": p.source_train.to_dict(),
        }

    def source_model_dir(self, seed: int) -> Path:
        """Where the shared source model of a seed is kept (outside any experiment's runs)."""
        return self.store.run_dir(self.source_model_config(seed))

    def source_config(self, seed: int) -> dict:
        """This experiment's run of the source model: its evaluation on A and B."""
        return {
            **self.base_config(seed),
            "method": SOURCE,
            "delta": 0.0,
            "code_version": {SOURCE: CODE_VERSION[SOURCE]},
            "source_model": self.source_model_dir(seed).name,
        }

    def train_config(self, method: str, overrides: dict | None = None) -> TrainConfig:
        """The method's training settings: the profile's, with the tuned (or given) overrides."""
        grids = self.profile.tune
        if overrides is None:
            tuned = grids is not None and get_method(method).tuned_settings(bool(grids.alpha_lr))
            if tuned and method not in self.choices:
                self.choices.update(self.stored_choices())
            if tuned and method not in self.choices:
                raise RuntimeError(f"{method}: tune before running (helpers.study.tuning.tune)")
            overrides = self.choices.get(method, {})
        return replace(get_method(method).train_config(self.profile.train), **overrides)

    def tuning_path(self) -> Path:
        """Where the table of tuned learning rates is kept, beside the experiment's runs."""
        return self.store.root / self.experiment.name / self.profile.name / TUNING

    def stored_choices(self) -> dict[str, dict]:
        """The choices of an earlier tuning, read back from its table ({} when there is none)."""
        if not self.tuning_path().exists():
            return {}
        chosen = pd.read_parquet(self.tuning_path()).query("chosen")
        return {m: dict(zip(g["setting"], g["value"])) for m, g in chosen.groupby("method")}

    def method_config(
        self, method: str, delta: float, seed: int, overrides: dict | None = None
    ) -> dict:
        return {
            **self.base_config(seed),
            "method": method,
            "delta": delta,
            "method_spec": get_method(method).to_dict(),
            "code_version": code_version(method),
            "train": self.train_config(method, overrides).to_dict(),
            "sizes": {s: self.size(s) for s in ("train", "validation")},
            "test": {c.name: len(c.frame) for c in self.pools["test"]},  # whole pools
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
    prof = load_profile(profile)
    exp = load_experiment(experiment, prof)
    progress = bars_wanted() if progress is None else progress
    # Declared files need no data root; built-in corpora (and the hub cache) live under one.
    root = resolve_data_root(data_root) if _declared_only(exp) else require_data_root(data_root)
    study = Study(exp, prof, root, Store(reports_dir), progress)
    check_sizes(study)  # loads and checks both corpora now, before anything is trained
    return study


def _declared_only(e: Experiment) -> bool:
    return e.source_data is not None and e.target_data is not None


def check_sizes(study: Study) -> None:
    """Raise before any training when a profile's sample size exceeds what a pool holds.

    Mixtures span delta = 0 (all A) to delta = 1 (all B), so each size must fit both pools.
    """
    p = study.profile
    wanted = {"train": p.n_train, "validation": p.n_val, "test": p.n_test}
    for split, n in wanted.items():
        a, b = study.pools[split]
        if n is not None and n > min(len(a.frame), len(b.frame)):
            raise UserError(
                f"profile {p.name!r} asks for {split} mixtures of {n}, but the "
                f"{split} pools hold {len(a.frame)} ({a.name}) and {len(b.frame)} "
                f"({b.name}); set n_{'val' if split == 'validation' else split} to "
                f"at most {min(len(a.frame), len(b.frame))} or null in "
                "experiments.yaml"
            )
    a_train = study.pools["train"][0]
    if p.n_source_train is not None and p.n_source_train > len(a_train.frame):
        raise UserError(
            f"profile {p.name!r} asks for {p.n_source_train} source training "
            f"examples, but {a_train.name} holds {len(a_train.frame)}; lower "
            "n_source_train or set it to null in experiments.yaml"
        )


def stored(study: Study, table: str = "metrics", methods=None) -> pd.DataFrame:
    """A stored table of this experiment and profile, optionally for some methods only."""
    frame = study.store.collect(table, [study.experiment.name], study.profile.name)
    if methods is not None and len(frame):
        frame = frame[frame["method"].isin(list(methods))]
    return frame.reset_index(drop=True)
