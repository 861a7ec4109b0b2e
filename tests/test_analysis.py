"""Part IV summaries on small hand-made tidy tables with known answers (claims: test_inference)."""

import numpy as np
import pandas as pd
import pytest

from helpers.report import analysis


def metrics_table(effects: dict[str, float], seeds=range(5), noise=0.002):
    rng = np.random.default_rng(0)
    rows = []
    for seed in seeds:
        for delta in (0.5, 1.0):
            for method, effect in effects.items():
                v = 0.7 + effect + rng.normal(0, noise)
                rows.append(
                    dict(
                        experiment="books_to_dvd",
                        method=method,
                        delta=delta,
                        seed=seed,
                        split="test",
                        metric="macro_f1",
                        value=v,
                        ci_low=v - 0.05,
                        ci_high=v + 0.05,
                        run_key=f"{method}{seed}{delta}",
                    )
                )
    return pd.DataFrame(rows)


EFFECTS = {
    "none": 0.0,
    "head": 0.01,
    "first2": 0.05,
    "middle2": 0.02,
    "last2": 0.02,
    "all": 0.06,
    "cbv_weight": 0.08,
    "cbv_study": 0.03,
}


def test_summary_uses_seed_t_interval():
    s = analysis.summarise(metrics_table(EFFECTS), "macro_f1")
    row = s[(s["method"] == "all") & (s["delta"] == 0.5)].iloc[0]
    assert row["n_seeds"] == 5 and row["ci_low"] < row["mean"] < row["ci_high"]
    assert row["ci_high"] - row["ci_low"] < 0.02  # from seed spread, not the +-0.05


def one_class_tables(delta: float = 1.0):
    """Runs on a mixture of corpus a (half class 1) and b (95% class 0): constant, rare
    answers, over-answering class 1, and a sound run (90% one class: not flagged)."""
    labels = {"a": [0, 1] * 10, "b": [0] * 19 + [1]}
    runs = {  # method: (answered class, top_class_share, f1 of class 0, f1 of class 1)
        "last2": (0, 1.0, 0.974, 0.0),
        "all": (0, 0.97, 0.97, 0.2),
        "lp_ft": (1, 0.96, 0.1, 0.1),
        "head": (0, 0.9, 0.95, 0.5),
    }
    metrics, predictions = [], []
    for method, (answered, top, f0, f1) in runs.items():
        values = {"top_class_share": top, "f1_no": f0, "f1_yes": f1, "macro_f1": (f0 + f1) / 2}
        metrics += [
            dict(experiment="x", source="a", target="b", method=method, delta=delta, seed=0,
                 split="test", metric=m, value=v, ci_low=v, ci_high=v, run_key=method)
            for m, v in values.items()
        ]  # fmt: skip
        predictions += [
            dict(experiment="x", source=corpus, id=f"{corpus}{i}", label=y, pred=answered,
                 run_key=method)
            for corpus, ys in labels.items()
            for i, y in enumerate(ys)
        ]  # fmt: skip
    return pd.DataFrame(metrics), pd.DataFrame(predictions)


@pytest.mark.parametrize("delta, majority", [(1.0, 0.95), (0.5, 0.725)])
def test_constant_runs_flag_and_explain_one_class_runs(delta, majority):
    metrics, predictions = one_class_tables(delta)
    table = analysis.constant_runs(metrics, predictions).set_index("method")
    assert list(table.index) == ["last2", "all", "lp_ft"]  # head (90% one class): not flagged
    assert table["reading"].to_dict() == {
        "last2": "constant",
        "all": "rare answers",
        "lp_ft": "over-answers",
    }
    assert table.loc["all", "weakest_class"] == "yes"
    assert table.loc["all", "answered_class"] == "no"
    assert np.isclose(table.loc["all", "true_share"], majority)  # b alone, or half a half b
    assert np.isclose(table.loc["lp_ft", "true_share"], 1 - majority)
    # always answering the majority class: F1 2q/(1+q) on it, 0 on the other
    assert np.allclose(table["constant_macro_f1"], majority / (1 + majority))
    text = analysis.constant_takeaway(table.reset_index())
    assert text.startswith("**3 runs** answer one class")
    assert "(F1 0 on a class): 1 run, `last2` on x." in text
    assert "less often than it occurs: 1 run" in text and "1 of 1 above" in text
    assert "for nearly everything: 1 run." in text


def test_summary_counts_one_class_seeds():
    metrics, _ = one_class_tables()
    summary = analysis.summarise(metrics, "macro_f1").set_index("method")
    assert summary["one_class"].to_dict() == {"all": 1, "head": 0, "last2": 1, "lp_ft": 1}
    wide = analysis.wide_summary(summary.reset_index())
    assert "(1 one-class)" in wide.loc["all"].iat[0]
    assert "one-class" not in wide.loc["head"].iat[0]


def test_the_budget_judges_the_whole_study_once_every_grid_is_stored():
    costs = pd.DataFrame(
        [
            ("a", "main grid", 80, 50.0, 37.5),
            ("a", "tuning", 47, 20.0, 25.5),
            ("a", "axis train_size", 18, 9.0, 30.0),
            ("b", "main grid", 70, 40.0, 34.3),
            ("c", "tuning", 10, 5.0, 30.0),
        ],
        columns=["experiment", "part", "runs computed", "minutes", "seconds per run"],
    )
    table = analysis.budget(costs, complete={"a", "b"}).set_index("experiment")
    assert table.loc["a", "grid + tuning (run min)"] == 70.0  # the axis is listed apart
    assert table.loc["a", "axes (run min)"] == 9.0
    assert table.loc["a", "wall min at 2 workers"] == 39.5  # everything, over two workers
    assert table.loc["all", "wall min at 2 workers"] == 39.5 + 20.0 + 2.5
    assert table.loc["all", "within target"] == "partial"  # c's grid is not stored
    whole = analysis.budget(costs[costs["experiment"] != "c"], complete={"a", "b"})
    assert whole.set_index("experiment").loc["all", "within target"] == "yes"  # 59.5 <= 360
    over = analysis.budget(costs, complete={"a", "b", "c"}, target=60.0).set_index("experiment")
    assert over.loc["all", "within target"] == "no"
