"""Part IV: summaries across seeds, and the small tables and takeaways notebook 04 shows.

Reads only stored tidy tables (``Store.collect``); never trains. Paired comparisons live in
``helpers.report.comparisons`` (statistics in ``helpers.report.inference``); the poster's claims
in ``helpers.report.claims``, reachable here as ``analysis.claims``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from helpers.config.experiments import AXES
from helpers.config.methods import in_family
from helpers.report.claim_registry import MARGIN
from helpers.report.claims import claims, claims_markdown
from helpers.report.comparisons import BEST, Paired, final_runs
from helpers.report.costs import budget, complete_experiments, grid_runs, run_costs
from helpers.report.inference import difference_verdict, holm_family, tost
from helpers.report.one_class import ONE_CLASS, constant_runs, constant_takeaway

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


def surgical_pairs(methods) -> list[tuple[str, str]]:
    """Notebook 02's comparisons: all - none (does fine-tuning help at all?), then each other
    trained method against all."""
    others = [m for m in methods if m not in ("all", "none")]
    return [("all", "none")] * ({"all", "none"} <= set(methods)) + [(m, "all") for m in others]


def cbv_pairs(methods) -> list[tuple[str, str]]:
    """Notebook 03's comparisons: each CBV variant against the best surgical method (chosen per
    experiment and delta on validation, never on test)."""
    return [(m, BEST) for m in methods]


def methods_takeaway(summary, paired: Paired, pairs, metric: str = "macro_f1") -> str:
    """Per delta: the highest mean (a description), then each paired comparison of ``pairs``
    ((method, reference); the reference may be ``comparisons.BEST``) over the seeds, with its
    95% interval and verdict, Holm-corrected across the comparisons of the paragraph.

    Paired: both methods on the same seeds and test examples (``comparisons.Paired``); two
    unpaired intervals that overlap say nothing about the difference, so none is read here.
    """
    rows = []
    for e in paired.experiments():
        for delta in sorted(summary["delta"].unique()):
            for m, r in pairs:
                est = paired.compare([e], (m,), r if r == BEST else (r,), [float(delta)])
                if est.n > 1:
                    rows.append((float(delta), m, r, est))
    if not rows:
        return f"**Takeaway** (test {metric}): too few seeds to compare yet (two or more needed)."
    p = [est.p_value() for *_, est in rows]
    adjusted, equivalent = holm_family(p, [tost(est, MARGIN) for *_, est in rows])
    lines = []
    for delta, g in summary.groupby("delta"):
        best = g.set_index("method")["mean"].idxmax()
        said = []
        for (d, m, r, est), q, q_tost in zip(rows, adjusted, equivalent):
            if d != float(delta):
                continue
            low, high = est.interval()
            verdict = difference_verdict(est, q, q_tost)
            said.append(
                f"{m} − {r}: {est.effect:+.3f} [{low:+.3f}, {high:+.3f}] over "
                f"{est.n} seeds, **{verdict}**"
            )
        head = f"δ = {delta:g}: highest mean **{best}** ({g['mean'].max():.3f})"
        lines.append("\n".join([f"- {head}", *(f"    - {t}" for t in said)]))
    return (
        f"**Takeaway** (test {metric}; each difference paired on seeds and test examples, with "
        "its 95% interval, seeds as the units).\n\n"
        + "\n".join(lines)
        + f"\n\n*supported*: the method is better (Holm-corrected p below 0.05 across these "
        f"comparisons and their equivalence tests, one family); *contradicted*: it is worse; "
        f"*equivalent*: within ±{MARGIN} (two one-sided tests, corrected alike); "
        "*inconclusive*: this run does not tell them apart."
    )


def axis_tables(store, experiments, profile: str, keys=None) -> dict:
    """The design axes' stored tables (``helpers.study.axes``), by axis and table name (the
    plan's runs only where ``keys`` is given)."""
    tables = ("metrics", "predictions", "coefficients")
    return {
        a: {t: store.collect(t, experiments, f"{profile}/{a}", keys) for t in tables} for a in AXES
    }


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


def tuning_table(table: pd.DataFrame) -> pd.DataFrame:
    """The learning rates tried per method (``tune``'s table): the mean validation score of
    each trial, the choice, and whether it sits at the edge of what was tried (flagged)."""
    if table is None or table.empty:
        return pd.DataFrame({"note": ["this profile has no tuning"]})
    return table[["method", "setting", "value", "score", "chosen", "at_edge"]].rename(
        columns={"score": "validation (mean of seeds)"}
    )


def tuning_choices(table: pd.DataFrame) -> pd.DataFrame:
    """The chosen setting of each method and tuned setting, with its validation score."""
    if "chosen" not in table:
        return table
    return table[table["chosen"]].drop(columns="chosen").reset_index(drop=True)


def tuning_takeaway(table: pd.DataFrame) -> str:
    """One paragraph on what tuning did: trials per method, and any choice left at an edge."""
    if table is None or "chosen" not in table:
        return "No tuning: every method ran at the profile's learning rates."
    trials = table.drop_duplicates(["method", "value", "setting"]).groupby("method").size()
    edge = table[table["chosen"] & table["at_edge"]]
    flagged = ", ".join(f"{r.method} ({r.setting} = {r.value:.3g})" for r in edge.itertuples())
    return (
        f"**Tuning**: every trained method got the same budget of trials ({trials.max()} "
        "settings), on a log ladder from its own starting rate, extended past an edge until its "
        "choice was bracketed; each trial is the mean validation score of the tuning seeds. "
        + (
            f"Left at an edge of what was tried (flagged): {flagged}."
            if flagged
            else "Every choice is bracketed by a worse rate on each side."
        )
    )
