"""Which runs are compared with which: final runs, the reference chosen on validation, the
paired differences per seed (torch-free; reads only stored tables, ``Store.collect``).

A comparison is two sides, each a set of methods whose metrics are averaged (a tie of
references, a group of methods), at some deltas. Per experiment and seed it gives one unit: the
side difference averaged over the deltas (the deltas of one seed share a source model, so they
are not separate units). The statistics live in ``helpers.report.inference``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from helpers.config.experiments import load_experiment
from helpers.config.methods import SOURCE, in_family
from helpers.report.inference import Estimate, estimate
from helpers.report.resampling import ExampleDraws, RunValues, pools_of

SURGICAL = tuple(in_family("surgical"))  # from the method registry
BEST = "best surgical"  # the reference chosen per experiment and delta on validation
UNIT = ["experiment", "method", "delta", "seed", "n_train"]


def run_table(metrics: pd.DataFrame, metric: str = "macro_f1") -> pd.DataFrame:
    """One row per stored run: identity, training-mixture size, train settings, validation."""
    runs = metrics.drop_duplicates("run_key")[["run_key", *UNIT[:-1], "config"]].copy()
    configs = [json.loads(c) for c in runs["config"]]
    runs["n_train"] = [(c.get("sizes") or {}).get("train", np.nan) for c in configs]
    runs["train"] = [json.dumps(c.get("train"), sort_keys=True) for c in configs]
    val = metrics[(metrics["split"] == "validation") & (metrics["metric"] == metric)]
    runs["validation"] = runs["run_key"].map(val.set_index("run_key")["value"])
    return runs.drop(columns="config").reset_index(drop=True)


def final_runs(metrics: pd.DataFrame, metric: str = "macro_f1") -> pd.DataFrame:
    """One run per experiment, method, delta, seed and training size.

    The store areas the report reads hold the plan's runs only (tuning trials are stored apart);
    should one unit still hold several (runs of an earlier configuration: ``python -m helpers
    store prune`` lists and removes them), the one whose settings most runs of the method share
    is kept, then the best validation score.
    """
    runs = run_table(metrics, metric)
    keys = ["experiment", "method", "n_train"]
    runs["used"] = runs.groupby(keys, dropna=False)["train"].transform(
        lambda s: s.map(s.value_counts())
    )
    runs = runs.sort_values(["used", "validation"], ascending=False, na_position="last")
    return runs.drop_duplicates(UNIT).sort_values(UNIT).reset_index(drop=True)


def main_size(runs: pd.DataFrame) -> pd.Series:
    """Per experiment, the training size most runs have (the profile's; others: a size axis)."""
    sized = runs.dropna(subset=["n_train"])
    return sized.groupby("experiment")["n_train"].agg(lambda s: s.value_counts().idxmax())


def best_surgical(metrics: pd.DataFrame, metric: str = "macro_f1") -> dict:
    """(experiment, delta) -> the surgical method(s) with the best mean validation score.

    Chosen on the validation mixture, never on test; tied methods are all kept (their test
    metrics are then averaged into one reference: a tie is not broken by chance).
    """
    runs = final_runs(metrics, metric)
    runs = runs[runs["method"].isin(SURGICAL)]
    runs = runs[
        runs["n_train"].isna() | (runs["n_train"] == runs["experiment"].map(main_size(runs)))
    ]
    out = {}
    for (e, d), g in runs.groupby(["experiment", "delta"]):
        means = g.groupby("method")["validation"].mean().dropna()
        if len(means):
            top = means[np.isclose(means, means.max(), rtol=0, atol=1e-12)]
            out[(e, float(d))] = tuple(m for m in SURGICAL if m in top.index)
    return out


def mixture(experiment: str, delta: float) -> dict[str, float]:
    """Corpus weights of an experiment's delta-mixture: (1 - delta) for A, delta for B."""
    e = load_experiment(experiment)
    return {e.source: 1.0 - float(delta), e.target: float(delta)}


class Paired:
    """The stored runs of a profile, ready to compare: each run's metric on its delta-mixture,
    point and test-example replicates, the replicates drawn once for every pool."""

    def __init__(self, metrics: pd.DataFrame, predictions: pd.DataFrame, metric: str, seed=0):
        runs = final_runs(metrics, metric)
        self.metric, self.metrics = metric, metrics
        size = runs["experiment"].map(main_size(runs))
        runs = runs[runs["n_train"].isna() | (runs["n_train"] == size)]
        self.runs = {
            (r.experiment, r.method, float(r.delta), int(r.seed)): r.run_key
            for r in runs.itertuples()
        }
        preds = predictions[predictions["run_key"].isin(set(self.runs.values()))]
        if "weight" in preds:  # a source run holds the whole pools; the methods the capped ones
            preds = preds[preds["weight"].isna() | (preds["weight"] > 0)]
        # A pool is a corpus in one task's labels (Davidson is two: hate, offensive); a pool
        # shared by experiments (Amazon books) is drawn once for all of them.
        preds = preds.assign(source=pool_name(preds["task"], preds["source"]))
        self.preds = {k: g for k, g in preds.groupby("run_key")}
        self.draws = ExampleDraws(pools_of(preds), seed=seed)
        self.k = {e: _classes(g) for e, g in preds.groupby("experiment")}
        self.best = best_surgical(metrics, metric)
        self.clusters = source_clusters(metrics)  # experiments sharing source models
        self.flagged: set = set()  # (experiment, delta) cells a sensitivity check leaves out
        self._values: dict = {}

    def seeds(self, experiment: str) -> list[int]:
        return sorted({k[3] for k in self.runs if k[0] == experiment and k[1] != SOURCE})

    def experiments(self) -> list[str]:
        return sorted({k[0] for k in self.runs})

    def value(self, experiment, method, delta, seed, at=None, metric=None):
        """(point, replicates) of one run on the mixture of delta ``at`` (its own by default);
        ``method`` "source" is the source run. None when the store lacks the run."""
        metric = metric or self.metric
        fitted = 0.0 if method == SOURCE else float(delta)
        key = self.runs.get((experiment, method, fitted, int(seed)))
        if key is None:
            return None
        cache = (key, metric, float(at if at is not None else delta))
        if cache not in self._values:
            g = self.preds[key]
            task = g["task"].iat[0]
            weights = {pool_name(task, c): w for c, w in mixture(experiment, cache[2]).items()}
            values = RunValues(self.draws, g, self.k[experiment])
            self._values[cache] = values.metric(metric, weights)
        return self._values[cache]

    def side(self, experiment, methods, delta, seed, metric=None):
        """The mean of several methods' values (BEST: the validation-chosen surgical ones)."""
        names = self.best.get((experiment, float(delta)), ()) if methods == BEST else methods
        got = [self.value(experiment, m, delta, seed, metric=metric) for m in names]
        if not got or any(v is None for v in got):
            return None
        return np.mean([p for p, _ in got]), np.mean([b for _, b in got], axis=0)

    def units(self, experiment, a, b, deltas, metric=None, at=None):
        """Per-seed differences side a - side b, averaged over ``deltas``: (diffs, a Series by
        seed; boot (B, S), its test-example replicates)."""
        seeds, points, boots = [], [], []
        for seed in self.seeds(experiment):
            per = []
            for d in deltas:
                sa = (
                    self.side(experiment, a, d, seed, metric)
                    if at is None
                    else self.value(experiment, a, d, seed, at=at, metric=metric)
                )
                sb = (
                    self.side(experiment, b, d, seed, metric)
                    if at is None
                    else self.value(experiment, b, d, seed, at=at, metric=metric)
                )
                if sa is None or sb is None:
                    per = []
                    break
                per.append((sa[0] - sb[0], sa[1] - sb[1]))
            point = np.mean([p for p, _ in per]) if per else np.nan
            if np.isfinite(point):  # a unit whose metric is undefined is left out of both
                seeds.append(seed)
                points.append(point)
                boots.append(np.mean([bb for _, bb in per], axis=0))
        if not points:
            return pd.Series(dtype=float), np.empty((self.draws.n, 0))
        return pd.Series(points, index=seeds, dtype=float), np.stack(boots, axis=1)

    def compare(self, experiments, a, b, deltas=None, metric=None, at=None, skip=()) -> Estimate:
        """The claim's estimate over ``experiments`` (strata), seeds as units (experiments that
        share their source models give one unit per seed: ``source_clusters``); ``skip``:
        (experiment, delta) cells left out."""
        units, boots = {}, []
        for e in experiments:
            ds = deltas or sorted({k[2] for k in self.runs if k[0] == e and k[1] != SOURCE})
            ds = [d for d in ds if (e, float(d)) not in skip]
            if not ds:
                continue
            diffs, boot = self.units(e, a, b, ds, metric, at)
            if len(diffs):
                units[e] = diffs
                boots.append(boot.mean(axis=1))
        # a cluster with a single seed is left out of the estimate: out of its test part too
        seeds: dict = {}
        for e, diffs in units.items():
            seeds.setdefault(self.clusters.get(e, e), set()).update(diffs.index)
        kept = [i for i, e in enumerate(units) if len(seeds[self.clusters.get(e, e)]) > 1]
        pooled = np.mean([boots[i] for i in kept], axis=0) if kept else None
        return estimate(units, pooled, self.clusters)


def source_clusters(metrics: pd.DataFrame) -> dict[str, str]:
    """Experiment -> the source models it adapts (one per seed, as its stored source runs name
    them): experiments with the same ones share each seed's source model (the same corpus A,
    ``Study.source_model_config``), so their seeds are not independent units."""
    runs = metrics[metrics["method"] == SOURCE].drop_duplicates("run_key")
    cluster: dict[str, str] = {}  # experiment -> its cluster's name (union of shared models)
    owner: dict[str, str] = {}  # source model -> the first experiment seen with it
    for e, config in sorted(zip(runs["experiment"], runs["config"])):
        cluster.setdefault(e, e)
        model = json.loads(config).get("source_model")
        if model is None:
            continue
        first = owner.setdefault(model, e)
        if cluster[first] != cluster[e]:  # merge e's cluster into the first owner's
            old = cluster[e]
            cluster.update({k: cluster[first] for k, c in cluster.items() if c == old})
    return cluster


def pool_name(task, corpus):
    """A test pool's name: its corpus in its task's labels."""
    return task + ":" + corpus


def _classes(preds: pd.DataFrame) -> int:
    probs = [c for c in preds.columns if str(c).startswith("p_") and preds[c].notna().any()]
    return len(probs) or int(preds[["label", "pred"]].to_numpy().max()) + 1


def paired_differences(paired: Paired, methods, references=("all", BEST)) -> pd.DataFrame:
    """Each method against each reference, per experiment and delta: the mean over seeds with
    its 95% interval (seeds as units, test sampling counted), for the figure and notebook 04."""
    rows = []
    for e in paired.experiments():
        deltas = sorted({k[2] for k in paired.runs if k[0] == e and k[1] != SOURCE})
        for ref in references:
            for m in methods:
                if m == ref:
                    continue
                for d in deltas:
                    est = paired.compare([e], (m,), ref if ref == BEST else (ref,), [d])
                    if est.n < 2:
                        continue
                    low, high = est.interval()
                    rows.append(
                        dict(
                            experiment=e,
                            delta=d,
                            method=m,
                            reference=ref,
                            effect=est.effect,
                            ci_low=low,
                            ci_high=high,
                            n_seeds=est.n,
                            metric=paired.metric,
                        )
                    )
    return pd.DataFrame(rows)


def wide_differences(differences: pd.DataFrame) -> pd.DataFrame:
    """'effect [low, high]' strings: (reference, method) rows, (experiment, delta) columns."""
    if differences.empty:
        return pd.DataFrame({"note": ["no matched runs to compare"]})
    frame = differences.assign(
        text=[
            f"{r.effect:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]" for r in differences.itertuples()
        ]
    )
    return frame.pivot_table(
        index=["reference", "method"],
        columns=["experiment", "delta"],
        values="text",
        aggfunc="first",
    )


def across_experiments(paired: Paired, methods, references=("all", BEST)) -> pd.DataFrame:
    """Each method against each reference over every experiment (strata) and delta, seeds as
    units: mean difference, 95% interval and the number of units (uncorrected: a survey, not
    the claims)."""
    rows = []
    for ref in references:
        for m in methods:
            if m == ref:
                continue
            est = paired.compare(paired.experiments(), (m,), ref if ref == BEST else (ref,))
            if est.n < 2:
                continue
            low, high = est.interval()
            row = dict(method=m, reference=ref, experiments=est.n_strata, units=est.n)
            row.update(mean_diff=est.effect, ci_low=low, ci_high=high, p_value=est.p_value())
            rows.append(row)
    return pd.DataFrame(rows)
