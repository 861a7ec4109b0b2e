"""Part IV: summaries across seeds, paired comparisons, and the poster's claims in numbers.

Reads only stored tidy tables (``Store.collect``); never trains.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from helpers.spec.methods import in_family

SURGICAL = tuple(in_family("surgical"))  # from the method registry
AMAZON_PREFIX = "books_to_"


def test_rows(metrics: pd.DataFrame, metric: str, split: str = "test") -> pd.DataFrame:
    return metrics[(metrics["split"] == split) & (metrics["metric"] == metric)]


def summarise(metrics: pd.DataFrame, metric: str = "macro_f1") -> pd.DataFrame:
    """Mean and 95% interval per experiment x method x delta.

    Across seeds (t interval) when there are several; with one seed, that run's bootstrap
    interval over test examples. ``n_seeds`` says which.
    """
    rows = []
    keys = ["experiment", "method", "delta"]
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
        )
    return pd.DataFrame(rows)


def paired(metrics: pd.DataFrame, method: str, baseline: str, metric: str = "macro_f1") -> dict:
    """``method`` minus ``baseline`` over matched runs (experiment, delta, seed).

    Paired t-test over the matched units, and the share of units where ``method`` wins.
    """
    rows = test_rows(metrics, metric)
    wide = rows.pivot_table(index=["experiment", "delta", "seed"], columns="method", values="value")
    if method not in wide or baseline not in wide:
        return {"method": method, "baseline": baseline, "n": 0}
    pair = wide[[method, baseline]].dropna()
    diff = pair[method] - pair[baseline]
    p = stats.ttest_rel(pair[method], pair[baseline]).pvalue if len(pair) > 1 else np.nan
    return {
        "method": method,
        "baseline": baseline,
        "metric": metric,
        "n": len(pair),
        "mean_diff": diff.mean(),
        "win_rate": (diff > 0).mean(),
        "p_value": p,
    }


def paired_table(
    metrics: pd.DataFrame, methods, baselines, metric: str = "macro_f1"
) -> pd.DataFrame:
    """Every method against every baseline, paired across experiments, deltas and seeds."""
    return pd.DataFrame(
        [paired(metrics, m, b, metric) for m in methods for b in baselines if m != b]
    )


def challengers(metrics: pd.DataFrame) -> list[str]:
    """Stored CBV variants and other baselines, in registry order: what is tested."""
    present = set(metrics["method"])
    return in_family("cbv", present) + in_family("baseline", present)


def references(metrics: pd.DataFrame) -> list[str]:
    """Stored reference and surgical methods, in registry order: what they are tested against."""
    present = set(metrics["method"])
    return in_family("reference", present) + in_family("surgical", present)


def _verdict(ok: bool | None, yes: str, no: str, unknown: str = "not testable here") -> str:
    return unknown if ok is None else (yes if ok else no)


def _paired_verdict(diff: float, p: float) -> str:
    """Words for a paired difference: direction, and whether the test separates it from zero."""
    significant = bool(p < 0.05) if np.isfinite(p) else False
    if diff > 0:
        return "holds" if significant else "same direction, not significant"
    return "reversed (significant)" if significant else "not supported (no significant difference)"


def alpha_movement(history: pd.DataFrame) -> pd.Series:
    """Mean |alpha at the end - alpha at the first step| per method, over groups and runs."""
    alphas = history[history["metric"].str.startswith("alpha/")]
    if alphas.empty:
        return pd.Series(dtype=float)
    keys = ["method", "experiment", "delta", "seed", "metric"]
    ordered = alphas.sort_values("step").groupby(keys)["value"]
    return (ordered.last() - ordered.first()).abs().groupby(level="method").mean()


def claims(
    metrics: pd.DataFrame,
    curves: pd.DataFrame,
    history: pd.DataFrame,
    metric: str = "macro_f1",
    cbv: str = "cbv_weight",
) -> pd.DataFrame:
    """The poster's claims, one row each, checked against our numbers and said in words."""
    out = []

    def add(claim, evidence, verdict):
        out.append({"poster claim": claim, "our evidence": evidence, "verdict": verdict})

    exp = curves[(curves["estimate"] == "expected") & (curves["metric"] == metric)]
    if len(exp):
        ends = exp.pivot_table(index="experiment", columns="delta", values="value")
        drop = ends[ends.columns.min()] - ends[ends.columns.max()]
        add(
            "I. A model trained on A degrades as delta grows",
            f"{metric} falls by {drop.mean():+.3f} on average from delta=0 to 1 "
            f"({(drop > 0).sum()}/{len(drop)} experiments degrade)",
            _verdict(bool((drop > 0).mean() > 0.5), "holds", "does not hold"),
        )

    def versus(m, b, claim):
        r = paired(metrics, m, b, metric)
        if not r.get("n"):
            add(claim, f"no matched runs of {m} and {b}", "not testable here")
            return
        add(
            claim,
            f"{m} - {b}: {r['mean_diff']:+.3f} {metric} over {r['n']} matched runs, "
            f"wins {r['win_rate']:.0%}, paired t-test p={r['p_value']:.3g}",
            _paired_verdict(r["mean_diff"], r["p_value"]),
        )

    versus("all", "none", "II. Fine-tuning on the mixture beats the un-updated source model")
    rows = test_rows(metrics, metric)
    means = rows.groupby("method")["value"].mean()
    if all(m in means for m in ("all", "first2", "middle2", "last2")):
        top = means[["first2", "middle2", "last2", "all"]].sort_values(ascending=False)
        add(
            "II. Fine-tuning all and the first layers works best among surgical choices",
            "mean " + metric + ": " + ", ".join(f"{k} {v:.3f}" for k, v in top.items()),
            _verdict(
                set(top.index[:2]) == {"all", "first2"},
                "holds",
                "does not hold (the top two are " + " and ".join(top.index[:2]) + ")",
            ),
        )
    for b in SURGICAL:
        versus(cbv, b, f"III. CBV outperforms surgical fine-tuning on average: vs {b}")
    amazon = rows[rows["experiment"].str.startswith(AMAZON_PREFIX)]
    if len(amazon) and cbv in amazon["method"].values:
        best = (
            amazon[amazon["method"].isin(SURGICAL)]
            .groupby(["experiment", "delta", "seed"])["value"]
            .max()
        )
        ours = amazon[amazon["method"] == cbv].set_index(["experiment", "delta", "seed"])["value"]
        gap = (ours - best).dropna().groupby("experiment").mean()
        add(
            "III. CBV gives consistent results across the Amazon domains",
            "CBV minus best surgical per domain: "
            + ", ".join(f"{k} {v:+.3f}" for k, v in gap.items()),
            _verdict(
                bool(len(gap) > 1 and gap.std() < 0.02) if len(gap) > 1 else None,
                "holds (spread < 0.02)",
                f"does not hold (spread {gap.std():.3f})",
            ),
        )
    add(
        "III. CBV fails to beat all-layer fine-tuning on the largest data set (books)",
        "every experiment here fine-tunes on mixtures of one size, so data set size is not a "
        "factor of this design",
        "not testable here",
    )
    moved = alpha_movement(history)
    if "cbv_study" in moved and cbv in moved:
        add(
            "III. Optimising the alphas is slow at usual learning rates",
            "mean abs(alpha at the end - alpha at the first step): "
            f"cbv_study (one shared lr, sum-normalised) "
            f"{moved['cbv_study']:.4f}, {cbv} (own lr, warm-up) {moved[cbv]:.4f}",
            _verdict(bool(moved["cbv_study"] < moved[cbv]), "holds", "does not hold"),
        )
    return pd.DataFrame(out)


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
    """Summary as 'mean [low, high]' strings, methods as rows, experiment x delta as columns."""
    frame = summary.assign(
        text=summary.apply(
            lambda r: f"{r['mean']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]", axis=1
        )
    )
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
