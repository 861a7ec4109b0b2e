"""Which runs are compared with which: final runs, the validation-chosen reference, the tables.

Torch-free; reads only stored tables (``Store.collect``). The statistics live in
``helpers.report.inference``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from helpers.report.inference import Draws, holm, paired_difference, stratified, term
from helpers.spec.methods import in_family

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
    """One run per experiment, method, delta, seed and training size: the one the study uses.

    Tuning stores a run per grid point at its delta and seed; the final run there is the one
    with the train settings every other delta and seed of that method ran with (the chosen
    ones), else, with nothing to match, the best validation score (how tuning chose it).
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


def select(predictions: pd.DataFrame, metrics: pd.DataFrame, metric: str = "macro_f1"):
    """Predictions of the final runs at each experiment's main training size (source runs too)."""
    runs = final_runs(metrics, metric)
    size = runs["experiment"].map(main_size(runs))
    keep = runs[runs["n_train"].isna() | (runs["n_train"] == size)]["run_key"]
    return predictions[predictions["run_key"].isin(set(keep))]


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


def _reference(name: str, best: dict, experiment: str, delta: float):
    return best.get((experiment, float(delta))) if name == BEST else (name,)


def draws_by_experiment(predictions: pd.DataFrame, n_boot: int, seed: int) -> dict[str, Draws]:
    """The bootstrap replicates of every experiment, drawn once and shared by every comparison."""
    return {e: Draws(g, n_boot, seed) for e, g in predictions.groupby("experiment")}


def paired_differences(
    predictions: pd.DataFrame,
    metrics: pd.DataFrame,
    methods,
    references=("all", BEST),
    metric: str = "macro_f1",
    n_boot: int = 1000,
    seed: int = 0,
    draws: dict | None = None,
) -> pd.DataFrame:
    """Each method against each reference, per experiment and delta, with 95% intervals."""
    preds = select(predictions, metrics, metric)
    draws = draws or draws_by_experiment(preds, n_boot, seed)
    best, rows = best_surgical(metrics, metric), []
    for (e, d), g in preds[preds["method"] != "source"].groupby(["experiment", "delta"]):
        present = set(g["method"])
        for ref_name in references:
            refs = _reference(ref_name, best, e, d)
            if not refs or not set(refs) <= present:
                continue
            for m in methods:
                if m in present and (m,) != refs:
                    r = paired_difference(preds, m, refs, e, d, metric, draws=draws[e])
                    ref_methods = "=".join(refs)
                    rows.append({**r, "reference": ref_name, "reference_methods": ref_methods})
    return pd.DataFrame(rows).assign(metric=metric)


def wide_differences(differences: pd.DataFrame) -> pd.DataFrame:
    """'effect [low, high]' strings: (reference, method) rows, (experiment, delta) columns.

    A reference chosen on validation is named beside the method when it differs from its name.
    """
    if differences.empty:
        return pd.DataFrame({"note": ["no matched runs to compare"]})
    frame = differences.assign(
        text=[
            f"{r.effect:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
            + ("" if r.reference == r.reference_methods else f" vs {r.reference_methods}")
            for r in differences.itertuples()
        ]
    )
    return frame.pivot_table(
        index=["reference", "method"],
        columns=["experiment", "delta"],
        values="text",
        aggfunc="first",
    )


def comparison_units(draws: dict, metrics, method: str, reference, metric: str) -> dict:
    """Per experiment, the (delta, seed) units of ``method`` - ``reference`` (see Draws.units).

    ``reference``: a method name, ``BEST``, or a tuple of names averaged into one side.
    ``method`` may be a tuple too (a group of methods, averaged).
    """
    best = best_surgical(metrics, metric) if reference == BEST else {}
    out = {}
    for e, dr in draws.items():
        comps = []
        for d in sorted({k[1] for k in dr.runs if k[0] != "source"}):
            refs = reference if isinstance(reference, tuple) else _reference(reference, best, e, d)
            mine = method if isinstance(method, tuple) else (method,)
            need = set(refs or ()) | set(mine)
            if refs and need <= {k[0] for k in dr.runs if k[1] == d} and set(mine) != set(refs):
                comps.append(
                    (tuple(term(m, e, d) for m in mine), tuple(term(r, e, d) for r in refs))
                )
        if comps:
            out[e] = dr.units(comps, metric)
    return out


def across_experiments(
    predictions: pd.DataFrame,
    metrics: pd.DataFrame,
    methods,
    references=("all", BEST),
    metric: str = "macro_f1",
    n_boot: int = 1000,
    seed: int = 0,
    draws: dict | None = None,
) -> pd.DataFrame:
    """Mean difference and probability of improvement over (experiment, delta, seed) units.

    Stratified bootstrap (seeds and test examples resampled within each experiment); p-values
    for mean difference = 0, Holm-adjusted across the rows of this table.
    """
    preds = select(predictions, metrics, metric)
    draws = draws or draws_by_experiment(preds, n_boot, seed)
    rows = []
    for ref in references:
        for m in methods:
            if m == ref:
                continue
            units = comparison_units(draws, metrics, m, ref, metric)
            if not units:
                continue
            s = stratified(units)
            mean, prob = s["mean"], s["prob"]
            rows.append(
                dict(
                    method=m,
                    reference=ref,
                    experiments=len(units),
                    units=s["n"],
                    mean_diff=mean["effect"],
                    ci_low=mean["ci_low"],
                    ci_high=mean["ci_high"],
                    detectable=mean["detectable"],
                    p_value=mean["p_value"],
                    prob_improvement=prob["effect"],
                    prob_ci_low=prob["ci_low"],
                    prob_ci_high=prob["ci_high"],
                )
            )
    out = pd.DataFrame(rows)
    if len(out):
        out["p_holm"] = holm(out["p_value"])
    return out
