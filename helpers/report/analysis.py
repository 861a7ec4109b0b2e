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
from helpers.spec.experiments import AXES, load_profile
from helpers.spec.methods import SOURCE, in_family

__all__ = ["claims", "claims_markdown"]  # the claims table's public home stays analysis


ONE_CLASS = 0.95  # a run answering one class for more of its test mixture than this is flagged


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


def label_shares(predictions: pd.DataFrame) -> dict[tuple[str, str], pd.Series]:
    """Each test pool's class shares, per (experiment, corpus): the same for every run."""
    first = predictions.drop_duplicates(["experiment", "source", "id"])
    return {
        key: g["label"].value_counts(normalize=True).sort_index()
        for key, g in first.groupby(["experiment", "source"])
    }


def constant_runs(
    metrics: pd.DataFrame, predictions: pd.DataFrame, share: float = ONE_CLASS
) -> pd.DataFrame:
    """Runs that answer one class for more than ``share`` of their test mixture, and why.

    Beside each flagged run: the class it answers and how much of its test mixture truly is that
    class, its F1 on the class it answers least well, its macro-F1 and that of the constant
    classifier (always the true majority class) on the same mixture. ``reading``: "constant"
    when a class's F1 is 0 (not one correct answer of it); "rare answers" when the answered
    class is the true majority and every class is sometimes answered right: the run answers
    the rare class less often than it occurs, which on a mixture that is itself about 95% one
    class (Davidson is about 95% not-hate) a sound classifier can do too; "over-answers" when
    the answered class is not the majority.
    """
    test = metrics[metrics["split"] == "test"]
    top = test[(test["metric"] == "top_class_share") & (test["value"] > share)]
    columns = [
        "experiment", "method", "delta", "seed", "answered_class", "answered_share",
        "true_share", "weakest_class", "weakest_f1", "macro_f1", "constant_macro_f1", "reading",
    ]  # fmt: skip
    if top.empty:
        return pd.DataFrame(columns=columns)
    truth = label_shares(predictions)
    rows = []
    for run in top.itertuples(index=False):
        values = test[test["run_key"] == run.run_key].set_index("metric")["value"]
        f1 = values[values.index.str.startswith("f1_")]  # one per class, in label order
        names = [n.removeprefix("f1_") for n in f1.index]
        weights = {run.source: 1 - run.delta, run.target: run.delta}
        answers = predictions[predictions["run_key"] == run.run_key]
        mixed = _mix({c: truth[(run.experiment, c)] for c in weights}, weights)
        answered = _mix(
            {c: answers.loc[answers["source"] == c, "pred"].value_counts(normalize=True)
             for c in weights},
            weights,
        )  # fmt: skip
        k = int(answered.idxmax())
        q = float(mixed.max())
        if f1.min() == 0:
            reading = "constant"
        elif mixed.get(k, 0.0) == q:
            reading = "rare answers"
        else:
            reading = "over-answers"
        rows.append(
            {
                "experiment": run.experiment,
                "method": run.method,
                "delta": run.delta,
                "seed": run.seed,
                "answered_class": names[k],
                "answered_share": run.value,
                "true_share": float(mixed.get(k, 0.0)),
                "weakest_class": names[int(f1.to_numpy().argmin())],
                "weakest_f1": float(f1.min()),
                "macro_f1": float(values["macro_f1"]),
                # always the majority class: F1 2q/(1+q) on it, 0 on each of the other classes
                "constant_macro_f1": 2 * q / (1 + q) / len(f1),
                "reading": reading,
            }
        )
    return pd.DataFrame(rows, columns=columns)


def _mix(shares: dict[str, pd.Series], weights: dict[str, float]) -> pd.Series:
    """Class shares of a mixture: each corpus's shares (class -> share) weighted, a class
    missing from a corpus counting 0 there."""
    frame = pd.DataFrame({c: s * weights[c] for c, s in shares.items()}).fillna(0.0)
    return frame.sum(axis=1)


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def constant_takeaway(table: pd.DataFrame, share: float = ONE_CLASS) -> str:
    """One paragraph on the flagged runs: how many are constant, and what the others are."""
    if table.empty:
        return f"**No run** answers one class for more than {share:.0%} of its test mixture."
    text = (
        f"**{_runs(len(table))}** answer one class for more than {share:.0%} of the test mixture."
    )
    constant = table[table["reading"] == "constant"]
    if len(constant):
        names = ", ".join(sorted(set(constant["method"] + " on " + constant["experiment"])))
        text += f" Constant in effect (F1 0 on a class): {_runs(len(constant))}, {names}."
    rare = table[table["reading"] == "rare answers"]
    if len(rare):
        above = int((rare["macro_f1"] > rare["constant_macro_f1"]).sum())
        text += (
            f" Answering the rare class less often than it occurs: {_runs(len(rare))}, on test "
            f"mixtures that are {rare['true_share'].min():.1%}-{rare['true_share'].max():.1%} "
            f"the answered class; F1 on the rare class {rare['weakest_f1'].min():.2f}-"
            f"{rare['weakest_f1'].max():.2f}; {above} of {len(rare)} above the constant "
            "classifier's macro-F1."
        )
    over = table[table["reading"] == "over-answers"]
    if len(over):
        text += f" Answering a minority class for nearly everything: {_runs(len(over))}."
    return text


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
        "then runs every seed and delta at its choice (the chosen trial is reused, not rerun)."
    )


def run_costs(store, profile: str) -> pd.DataFrame:
    """Where the compute went: stored runs and their wall time per experiment and part of the
    study (main grid, tuning, each design axis). Source-model training is not a run of an
    experiment and is not counted. A main-grid run copied from its chosen tuning trial carries
    that trial's metrics, wall time included, so it is counted once, in tuning."""
    views = {"main grid": profile, "tuning": f"{profile}/tuning"}
    views.update({f"axis {a}": f"{profile}/{a}" for a in AXES})

    def costs(view: str) -> pd.DataFrame:
        metrics = store.collect("metrics", profile=view)
        if metrics.empty:
            return metrics
        return metrics[(metrics["split"] == "cost") & (metrics["metric"] == "seconds")]

    same = ["experiment", "method", "delta", "seed", "value"]
    found = {part: costs(view) for part, view in views.items()}
    trials = found["tuning"]
    rows = []
    for part, cost in found.items():
        if part == "main grid" and len(cost) and len(trials):
            copied = cost[same].merge(trials[same], how="left", indicator=True)["_merge"] == "both"
            cost = cost[~copied.to_numpy()]
        if cost.empty:
            continue
        for experiment, g in cost.groupby("experiment"):
            minutes, per_run = g["value"].sum() / 60, g["value"].mean()
            rows.append([experiment, part, len(g), round(minutes, 1), round(per_run, 1)])
    columns = ["experiment", "part", "runs computed", "minutes", "seconds per run"]
    return pd.DataFrame(rows, columns=columns).sort_values("experiment", kind="stable")


def grid_runs(profile: str) -> int:
    """How many runs one experiment's main grid holds: per seed the source run and every
    method at every delta."""
    p = load_profile(profile)
    return len(p.seeds) * (1 + len(p.deltas) * (len(p.surgical) + len(p.cbv)))


def complete_experiments(metrics: pd.DataFrame, profile: str) -> set[str]:
    """The stored experiments holding every run of their main grid (``grid_runs``): each
    (method, delta, seed) cell the profile asks for, runs of other settings not counted."""
    if metrics.empty:
        return set()
    p = load_profile(profile)
    runs = metrics.drop_duplicates("run_key")
    wanted = (runs["method"] == SOURCE) | (
        runs["method"].isin([*p.surgical, *p.cbv]) & runs["delta"].isin(p.deltas)
    )
    cells = runs[wanted & runs["seed"].isin(p.seeds)]
    counts = cells.drop_duplicates(["experiment", "method", "delta", "seed"]).value_counts(
        "experiment"
    )
    return {e for e, n in counts.items() if n >= grid_runs(profile)}


def budget(
    costs: pd.DataFrame,
    complete: set[str],
    workers: int = 2,
    target: float = 30.0,
) -> pd.DataFrame:
    """Each experiment's main grid and tuning against the time budget (``target`` minutes).

    ``costs`` is ``run_costs``; ``complete``, the experiments holding their whole main grid
    (the others are judged "partial"). Run minutes are summed over runs; the wall clock is
    taken as run minutes / ``workers`` (the stored times were measured with that many workers
    sharing the machine): a lower bound, as it assumes no worker ever waits, and it leaves out
    training the source models, which the experiments of one corpus share. Design axes are
    listed apart: the budget counts an experiment's grid with its tuning.
    """
    rows = []
    for experiment, g in costs.groupby("experiment", sort=True):
        parts = g.set_index("part")["minutes"]
        grid = float(parts.get("main grid", 0.0) + parts.get("tuning", 0.0))
        axes = float(parts[parts.index.str.startswith("axis")].sum())
        wall = grid / workers
        rows.append(
            {
                "experiment": experiment,
                "grid + tuning (run min)": round(grid, 1),
                f"wall min at {workers} workers": round(wall, 1),
                "target (min)": target,
                "within target": ("yes" if wall <= target else "no")
                if experiment in complete
                else "partial grid",
                "axes (run min)": round(axes, 1),
            }
        )
    return pd.DataFrame(rows)


def stored_claims(store, profile: str, metric: str = "macro_f1") -> pd.DataFrame:
    """The poster's claims over every stored run of a profile and its design axes."""
    return claims(
        store.collect("metrics", profile=profile),
        store.collect("predictions", profile=profile),
        store.collect("history", profile=profile),
        metric,
        axes=axis_tables(store, None, profile),
    )
