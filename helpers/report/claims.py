"""The poster's claims, one row each: effect, 95% interval, Holm p, smallest detectable, verdict.

Torch-free; reads only stored tables. Every effect is a paired difference from the runs'
predictions on both whole test pools, with a bootstrap that resamples seeds and test examples
(``helpers.report.inference``); across experiments the bootstrap is stratified by experiment.
Verdicts use one vocabulary (``inference.verdict``): supported, contradicted, inconclusive, or
"not testable here" when the store lacks the runs a claim needs.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from helpers.report.comparisons import (
    BEST,
    SURGICAL,
    comparison_units,
    draws_by_experiment,
    final_runs,
    select,
)
from helpers.report.inference import holm, mixture, seed_mean, stratified, summary, verdict

AMAZON_PREFIX = "books_to_"
MARGIN = 0.02  # the largest spread across domains still called consistent (metric units)
FREE = "cbv_study_free"  # cbv_study without the sum normalisation: the controlled comparison
UNTESTABLE = "not testable here"


def _row(claim, compared, stats=None, direction=1, null=0.0, note=UNTESTABLE) -> dict:
    stats = stats or summary(np.nan, np.empty(0))
    return dict(claim=claim, compared=compared, direction=direction, null=null, note=note, **stats)


def _spread(units: dict) -> dict:
    """max - min across experiments of each one's mean difference, per replicate."""
    points, boots = zip(*(seed_mean(*u) for u in units.values()))
    point = max(points) - min(points)
    boot = np.max(boots, axis=0) - np.min(boots, axis=0)
    return summary(point, boot, MARGIN)


def size_trend(predictions, metrics, method, reference, metric, n_boot, seed) -> pd.DataFrame:
    """``method`` - ``reference`` per training-mixture size, over experiments with several sizes."""
    runs = final_runs(metrics, metric)
    sized = runs.dropna(subset=["n_train"])
    several = sized.groupby("experiment")["n_train"].nunique()
    sized = sized[sized["experiment"].isin(several[several > 1].index)]
    rows = []
    for n, g in sized.groupby("n_train"):
        preds = predictions[predictions["run_key"].isin(set(g["run_key"]))]
        units = comparison_units(
            draws_by_experiment(preds, n_boot, seed), metrics, method, reference, metric
        )
        if units:
            rows.append({"n_train": int(n), **stratified(units)["mean"]})
    return pd.DataFrame(rows)


def alpha_rates(history, metrics, metric, n_boot, seed) -> pd.DataFrame:
    """Coefficient movement with and without sum normalisation, per coefficient learning rate.

    The runs of the ``alpha_rate`` design axis (helpers.study.axes): cbv_study and
    cbv_study_free at the same weights' rate over one grid of coefficient rates. Movement of a
    run: mean over groups of |alpha at the last step - alpha at the first|. Per rate, the
    difference cbv_study_free - cbv_study over matched (experiment, delta, seed) units, with a
    bootstrap over those units.
    """
    # every run: the rate grid is a set of runs per (experiment, delta, seed), not tuning noise
    runs = _all_runs(metrics)
    alphas = history[
        history["metric"].str.startswith("alpha/") & history["method"].isin(["cbv_study", FREE])
    ]
    if alphas.empty:
        return pd.DataFrame()
    ordered = alphas.sort_values("step").groupby(["run_key", "metric"])["value"]
    moved = (ordered.last() - ordered.first()).abs().groupby(level="run_key").mean()
    runs = runs[runs["run_key"].isin(moved.index)].assign(
        movement=lambda r: r["run_key"].map(moved)
    )
    wide = runs.pivot_table(
        index=["lr", "experiment", "delta", "seed"], columns="method", values="movement"
    )
    if not {"cbv_study", FREE} <= set(wide.columns):
        return pd.DataFrame()
    rng, rows = np.random.default_rng(seed), []
    for lr, g in wide.dropna().groupby(level="lr"):
        diff = (g[FREE] - g["cbv_study"]).to_numpy()
        boot = diff[rng.integers(0, len(diff), size=(n_boot, len(diff)))].mean(1)
        moved = {"study": float(g["cbv_study"].mean()), "free": float(g[FREE].mean())}
        rows.append({"lr": lr, **moved, **summary(float(diff.mean()), boot)})
    return pd.DataFrame(rows)


def _all_runs(metrics) -> pd.DataFrame:
    """Every stored run with its coefficients' learning rate (the weights' when shared)."""
    runs = metrics.drop_duplicates("run_key")
    settings = [json.loads(c).get("train") or {} for c in runs["config"]]
    lr = [t.get("alpha_lr") if t.get("alpha_lr") is not None else t.get("lr") for t in settings]
    return runs[["run_key", "experiment", "method", "delta", "seed"]].assign(lr=lr)


def claims(
    metrics: pd.DataFrame,
    predictions: pd.DataFrame,
    history: pd.DataFrame,
    metric: str = "macro_f1",
    cbv: str = "cbv_weight",
    n_boot: int = 1000,
    seed: int = 0,
    axes: dict | None = None,
) -> pd.DataFrame:
    """The poster's claims checked against the stored runs (numbers; ``claims_markdown`` shows).

    ``axes``: the design axes' tables ({"train_size": {"metrics": ..., "predictions": ...},
    "alpha_rate": {"metrics": ..., "history": ...}}, as ``analysis.axis_tables`` reads them);
    without them the two claims that need an axis are "not testable".

    Columns: claim, compared, effect, ci_low, ci_high, p_value, p_holm (Holm across the rows
    with a p-value), detectable (2.8 x bootstrap SE), verdict. The smallest bootstrap p-value
    is 2 / (n_boot + 1), so Holm over m rows can reach 0.05 only if n_boot > 40 m: 1,000
    replicates serve a family of up to 24 claims.
    """
    preds = select(predictions, metrics, metric)
    draws = draws_by_experiment(preds, n_boot, seed)
    rows = []
    for e, dr in draws.items():
        a, b = mixture(e, 0.0), mixture(e, 1.0)
        src = [s for s in dr.seeds if ("source", 0.0, s) in dr.runs]
        if src:
            units = dr.units([((("source", 0.0, a),), (("source", 0.0, b),))], metric)
            stats = summary(*seed_mean(*units))
        rows.append(
            _row(
                f"I. A model trained on A degrades as delta grows ({e})",
                f"source model: {metric} at delta=0 minus at delta=1, mean of {len(src)} seeds",
                stats if src else None,
            )
        )

    def across(claim, method, reference, label, direction=1):
        units = comparison_units(draws, metrics, method, reference, metric)
        if not units:
            rows.append(_row(claim, f"{label}: no matched runs", note=f"{UNTESTABLE} (no runs)"))
            return
        n = sum(np.isfinite(u[0]).sum() for u in units.values())
        text = (
            f"{label}: mean over {n} (experiment, delta, seed) units in {len(units)} experiment(s)"
        )
        rows.append(_row(claim, text, stratified(units)["mean"], direction))

    across(
        "II. Fine-tuning on the mixture beats the un-updated source model",
        "all",
        "none",
        "all - none",
    )
    across(
        "II. Fine-tuning all and the first layers works best among surgical choices",
        ("all", "first2"),
        ("middle2", "last2"),
        "mean of (all, first2) - mean of (middle2, last2)",
    )
    for ref in [*SURGICAL, BEST]:
        label = f"{cbv} - {ref}" + (" (chosen on validation)" if ref == BEST else "")
        across(f"III. CBV outperforms surgical fine-tuning on average: vs {ref}", cbv, ref, label)

    amazon = {e: d for e, d in draws.items() if e.startswith(AMAZON_PREFIX)}
    units = comparison_units(amazon, metrics, cbv, BEST, metric)
    rows.append(
        _row(
            "III. CBV gives consistent results across the Amazon domains",
            f"spread (max - min over {len(units)} domains) of {cbv} - best surgical; "
            f"consistent: below {MARGIN}",
            _spread(units) if len(units) > 1 else None,
            direction=-1,
            null=MARGIN,
            note=f"{UNTESTABLE} (needs two or more Amazon domains)",
        )
    )

    axes = axes or {}
    sizes = axes.get("train_size") or {}
    trend = (
        size_trend(sizes["predictions"], sizes["metrics"], cbv, "all", metric, n_boot, seed)
        if len(sizes.get("metrics", ()))
        else pd.DataFrame()
    )
    claim = "III. CBV fails to beat all-layer fine-tuning on the largest data set"
    if len(trend):
        top = trend.iloc[-1]
        sizes = ", ".join(f"n={r.n_train}: {r.effect:+.3f}" for r in trend.itertuples())
        rows.append(
            _row(
                claim,
                f"{cbv} - all by training size ({sizes}); at the largest",
                top.drop("n_train").to_dict(),
                direction=-1,
            )
        )
    else:
        text = f"{cbv} - all by training size: the store has one size per experiment"
        rows.append(_row(claim, text, note="not testable (needs the data-size axis)"))

    claim = "III. Optimising the alphas is slow at usual learning rates"
    grid = axes.get("alpha_rate") or {}
    rates = (
        alpha_rates(grid["history"], grid["metrics"], metric, n_boot, seed)
        if len(grid.get("history", ()))
        else None
    )
    if rates is not None and len(rates):
        low = rates.iloc[0]
        rows.append(
            _row(
                claim,
                "alpha movement over a run (mean over groups of abs(alpha at the end - at "
                f"the start)) at the usual weight rate {low['lr']:g}: cbv_study (sum-normalised) "
                f"{low['study']:.2g}, {FREE} {low['free']:.2g}; effect: {FREE} - cbv_study. "
                "At the other rates (study / free): "
                + ", ".join(
                    f"{r.lr:g}: {r.study:.2g} / {r.free:.2g}" for r in rates.iloc[1:].itertuples()
                ),
                low.drop(["lr", "study", "free"]).to_dict(),
            )
        )
    else:
        text = f"alpha movement of cbv_study against {FREE} over one rate grid: no such runs"
        rows.append(_row(claim, text, note=f"{UNTESTABLE} (needs the controlled comparison)"))

    table = pd.DataFrame(rows)
    table["p_holm"] = holm(table["p_value"])
    table["verdict"] = [
        verdict(r.ci_low, r.ci_high, r.p_holm, r.direction, r.null)
        if np.isfinite(r.effect)
        else r.note
        for r in table.itertuples()
    ]
    return table.drop(columns=["note", "se"])


def claims_markdown(table: pd.DataFrame) -> pd.DataFrame:
    """The claims table as strings, for the README and notebook 04."""

    def num(x, sign="+"):
        """Three decimals; tiny values (alpha movements) in scientific notation, not 0.000."""
        if not np.isfinite(x):
            return "-"
        return f"{x:{sign}.2e}" if 0 < abs(x) < 5e-4 else f"{x:{sign}.3f}"

    return pd.DataFrame(
        {
            "poster claim": table["claim"],
            "what is compared": table["compared"],
            "effect": table["effect"].map(num),
            "95% interval": [
                "-" if not np.isfinite(lo) else f"[{num(lo)}, {num(hi)}]"
                for lo, hi in zip(table["ci_low"], table["ci_high"])
            ],
            "Holm p": table["p_holm"].map(lambda p: "-" if not np.isfinite(p) else f"{p:.3g}"),
            "smallest detectable": table["detectable"].map(lambda x: num(x, sign="")),
            "verdict": table["verdict"],
        }
    )
