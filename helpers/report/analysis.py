"""Part IV: summaries across seeds, and the small tables and takeaways notebook 04 shows.

Reads only stored tidy tables (``Store.collect``); never trains. Paired comparisons live in
``helpers.report.comparisons`` (statistics in ``helpers.report.inference``); the poster's claims
in ``helpers.report.claims``, reachable here as ``analysis.claims``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from helpers.report.claims import claims, claims_markdown
from helpers.report.comparisons import final_runs
from helpers.report.costs import budget, complete_experiments, grid_runs, run_costs
from helpers.report.one_class import ONE_CLASS, constant_runs, constant_takeaway
from helpers.spec.experiments import AXES
from helpers.spec.methods import in_family

# The notebooks reach these through analysis, their one entry point into Part IV.
__all__ = [
    "budget",
    "claims",
    "claims_markdown",
    "complete_experiments",
    "constant_runs",
    "constant_takeaway",
    "grid_runs",
    "run_costs",
]


def test_rows(metrics: pd.DataFrame, metric: str, split: str = "test") -> pd.DataFrame:
    return metrics[(metrics["split"] == split) & (metrics["metric"] == metric)]


def summarise(metrics: pd.DataFrame, metric: str = "macro_f1") -> pd.DataFrame:
    """Mean and 95% interval per experiment x method x delta.

    Across seeds (t interval) when there are several; with one seed, that run's bootstrap
    interval over test examples. ``n_seeds`` says which; ``one_class`` counts the seeds whose
    run answers one class for more than 95% of its test mixture (``constant_runs`` says why).
    """
    if "config" in metrics:  # tuning-grid runs are not seeds: keep the final run of each unit
        metrics = metrics[metrics["run_key"].isin(set(final_runs(metrics, metric)["run_key"]))]
    rows = []
    keys = ["experiment", "method", "delta"]
    top = test_rows(metrics, "top_class_share")
    one_class = top[top["value"] > ONE_CLASS].groupby(keys)["seed"].nunique()
    for key, g in test_rows(metrics, metric).groupby(keys):
        n = g["seed"].nunique()
        mean = g["value"].mean()
        if n > 1:
            half = stats.t.ppf(0.975, n - 1) * g["value"].std(ddof=1) / np.sqrt(n)
            lo, hi = mean - half, mean + half
        else:
            lo, hi = g["ci_low"].iat[0], g["ci_high"].iat[0]
        rows.append(
            dict(zip(keys, key), metric=metric, mean=mean, ci_low=lo, ci_high=hi, n_seeds=n)
            | {"one_class": int(one_class.get(key, 0))}
        )
    return pd.DataFrame(rows)


def challengers(metrics: pd.DataFrame) -> list[str]:
    """Stored CBV variants and other baselines, in registry order: what is tested."""
    present = set(metrics["method"])
    return in_family("cbv", present) + in_family("baseline", present)


def references(metrics: pd.DataFrame) -> list[str]:
    """Stored reference and surgical methods, in registry order: what they are tested against."""
    present = set(metrics["method"])
    return in_family("reference", present) + in_family("surgical", present)


# ---- small tables and takeaways the notebooks display -----------------------------------
def inventory(metrics: pd.DataFrame) -> pd.DataFrame:
    """How many stored runs there are per experiment and method (a check before analysing)."""
    if metrics.empty:
        return pd.DataFrame({"note": ["no stored results: run the report series first"]})
    runs = metrics.drop_duplicates("run_key")
    return runs.pivot_table(
        index="experiment", columns="method", values="run_key", aggfunc="count", fill_value=0
    )


def curve_table(curve: pd.DataFrame) -> pd.DataFrame:
    """Expected metrics of the source model per delta (rows) and metric (columns)."""
    exp = curve[curve["estimate"] == "expected"]
    return exp.pivot_table(index="delta", columns="metric", values="value").round(4)


def degradation_takeaway(curve: pd.DataFrame, metric: str = "macro_f1") -> str:
    """One paragraph on how far the source model falls from delta = 0 to 1."""
    table = curve_table(curve)[metric]
    start, end = table.iloc[0], table.iloc[-1]
    smp = curve[(curve["estimate"] == "sampled") & (curve["metric"] == metric)]
    width = (smp["ci_high"] - smp["ci_low"]).mean()
    return (
        f"**Takeaway.** Trained on A, the source model's expected test {metric} goes from "
        f"{start:.3f} on A alone (δ = 0) to {end:.3f} on B alone (δ = 1), a change of "
        f"{end - start:+.3f}; in between it moves linearly in δ for accuracy. A sampled test "
        f"mixture carries a 95% interval about {width:.3f} wide, so differences smaller "
        "than that between single runs are not evidence."
    )


def per_source(metrics: pd.DataFrame, metric: str = "macro_f1") -> pd.DataFrame:
    """Test metric on each corpus inside the mixture, per method and delta."""
    rows = metrics[metrics["split"].str.startswith("test:") & (metrics["metric"] == metric)]
    return rows.pivot_table(index=["delta", "method"], columns="split", values="value").round(4)


def wide_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """Summary as 'mean [low, high]' strings, methods as rows, experiment x delta as columns;
    "(n one-class)" marks cells where n seeds' runs answer one class (``constant_runs``)."""

    def text(r) -> str:
        flag = f" ({r['one_class']} one-class)" if r.get("one_class", 0) else ""
        return f"{r['mean']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]{flag}"

    frame = summary.assign(text=summary.apply(text, axis=1))
    return frame.pivot_table(
        index="method", columns=["experiment", "delta"], values="text", aggfunc="first"
    )


def methods_takeaway(summary: pd.DataFrame, reference: str) -> str:
    """One paragraph: the best method per delta and how it compares with a reference method."""
    lines = []
    for delta, g in summary.groupby("delta"):
        g = g.set_index("method")
        best = g["mean"].idxmax()
        ref = g.loc[reference] if reference in g.index else None
        text = f"δ = {delta:g}: best is **{best}** ({g.loc[best, 'mean']:.3f})"
        if ref is not None and best != reference:
            overlap = g.loc[best, "ci_low"] <= ref["ci_high"]
            text += (
                f", {g.loc[best, 'mean'] - ref['mean']:+.3f} over {reference} "
                f"({ref['mean']:.3f}); the 95% intervals "
                + ("overlap, so this run does not separate them." if overlap else "do not overlap.")
            )
        lines.append(text)
    metric = summary["metric"].iat[0]
    return f"**Takeaway** (test {metric}).\n\n" + "\n\n".join(f"- {t}" for t in lines)


def axis_tables(store, experiments, profile: str) -> dict:
    """The design axes' stored tables (``helpers.study.axes``), by axis and table name."""
    tables = ("metrics", "predictions", "history")
    return {a: {t: store.collect(t, experiments, f"{profile}/{a}") for t in tables} for a in AXES}


# Published results on a corpus's own test split, to set our source model beside (facts
# carried over from the papers, as reported).
PUBLISHED = {
    "tweeteval_hate": (
        "macro_f1",
        0.47,
        "TweetEval paper (Barbieri et al. 2020), RoBERTa-base: about 0.47",
    ),
}


def source_baselines(curve: pd.DataFrame, source: str) -> pd.DataFrame:
    """The source model on corpus A (delta = 0) beside the majority-class classifier and, where
    one exists, the published result on that corpus: is the source model worth adapting?"""
    at_a = curve[(curve["delta"] == 0.0) & curve["estimate"].isin(["expected", "majority"])]
    table = at_a.pivot_table(index="metric", columns="estimate", values="value").rename(
        columns={"expected": "source model (mean over seeds)", "majority": "majority class"}
    )
    if source in PUBLISHED:
        metric, value, where = PUBLISHED[source]
        table.loc[metric, f"published: {where}"] = value
    return table.round(4)


def tuning_table(path) -> pd.DataFrame:
    """The learning rates tried per method, their validation score and cost, and the choice."""
    if not path.exists():
        return pd.DataFrame({"note": ["this profile has no tuning grid"]})
    table = pd.read_parquet(path)
    columns = [c for c in table.columns if c.startswith("val_")]
    return table[["method", "setting", "value", *columns, "seconds", "chosen"]]


def tuning_takeaway(table: pd.DataFrame) -> str:
    """One line on what tuning cost: its runs and their wall time."""
    if "seconds" not in table:
        return "No tuning: every method ran at the profile's learning rates."
    return (
        f"**Tuning** tried {len(table)} settings over {table['method'].nunique()} methods at one "
        f"delta and seed, {table['seconds'].sum() / 60:.1f} min of wall time here; each method "
        "then runs every seed and delta at its choice (the chosen trial becomes its final run, "
        "evaluated on the test pools, not trained again)."
    )


def stored_claims(store, profile: str, metric: str = "macro_f1") -> pd.DataFrame:
    """The poster's claims over every stored run of a profile and its design axes."""
    return claims(
        store.collect("metrics", profile=profile),
        store.collect("predictions", profile=profile),
        store.collect("history", profile=profile),
        metric,
        axes=axis_tables(store, None, profile),
    )
