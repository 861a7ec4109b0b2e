"""One experiment under one profile: its data, its run configurations, and its stored tables.

``open_study`` validates names and paths up front. Part I (``helpers.study.source``) trains the
source model of corpus A and its degradation curve; Parts II and III (``helpers.study.adaptation``)
adapt it with each named method on each delta and seed. Every finished piece is stored under a
key of its full configuration, so a rerun skips it and an interrupted run redoes only what did
not finish.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from helpers.data.corpora import load_corpus
from helpers.data.encoding import encode
from helpers.data.mixing import check_label_spaces, sample_mixture
from helpers.data.schema import SPLITS, Corpus
from helpers.errors import UserError
from helpers.models.loading import load_tokenizer
from helpers.paths import require_data_root
from helpers.spec.experiments import Experiment, Profile, load_experiment, load_profile
from helpers.spec.methods import get_method
from helpers.study.progress import bars_wanted
from helpers.study.store import Store

CHECKPOINT = "model"  # folder of a stored model (safetensors, via save_pretrained)
SOURCE = "source"  # the method name of a source model's run


@dataclass
class Study:
    """An experiment, a profile, where data come from and where results go."""

    experiment: Experiment
    profile: Profile
    data_root: Path
    store: Store
    progress: bool = True
    # Fitted models that other runs build on (source models, bases in the method registry),
    # kept in memory by (method, delta, seed); the source model's delta is 0.
    kept: dict[tuple[str, float, int], object] = field(default_factory=dict, repr=False)

    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.profile.model)

    @cached_property
    def pools(self) -> dict[str, tuple[Corpus, Corpus]]:
        """Corpus A and corpus B for each split, in the experiment's label space."""
        out = {}
        for split in SPLITS:
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

    # ---- configs ----------------------------------------------------------------------
    def base_config(self, seed: int) -> dict:
        e, p = self.experiment, self.profile
        return {
            "experiment": e.name,
            "profile": p.name,
            "model": p.model,
            "task": e.task,
            "source": e.source,
            "target": e.target,
            "max_length": e.max_length,
            "seed": seed,
        }

    def source_config(self, seed: int) -> dict:
        p = self.profile
        return {
            **self.base_config(seed),
            "method": SOURCE,
            "delta": 0.0,
            "n_train": p.n_source_train,
            "n_val": p.n_val,
            "train": p.source_train.to_dict(),
        }

    def method_config(self, method: str, delta: float, seed: int) -> dict:
        p = self.profile
        return {
            **self.base_config(seed),
            "method": method,
            "delta": delta,
            "method_spec": get_method(method).to_dict(),
            "train": p.train.to_dict(),
            "sizes": {s: self.size(s) for s in SPLITS},
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
    study = Study(exp, prof, require_data_root(data_root), Store(reports_dir), progress)
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
