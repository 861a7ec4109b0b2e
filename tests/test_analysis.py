"""Part IV summaries on small hand-made tidy tables with known answers (claims: test_inference)."""

import numpy as np
import pandas as pd

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


def one_class_tables():
    """Three runs at delta 1 on a target that is 95% class 0: constant, rare answers, sound."""
    labels = {"a": [0, 1] * 10, "b": [0] * 19 + [1]}
    predictions = pd.DataFrame(
        [
            dict(experiment="x", source=corpus, id=f"{corpus}{i}", label=y)
            for corpus, ys in labels.items()
            for i, y in enumerate(ys)
        ]
    )
    runs = {  # method: (top_class_share, f1 of class 0, f1 of class 1)
        "last2": (1.0, 0.974, 0.0),
        "all": (0.97, 0.97, 0.2),
        "head": (0.9, 0.95, 0.5),
    }
    rows = []
    for method, (top, f0, f1) in runs.items():
        values = {"top_class_share": top, "f1_no": f0, "f1_yes": f1, "macro_f1": (f0 + f1) / 2}
        rows += [
            dict(experiment="x", source="a", target="b", method=method, delta=1.0, seed=0,
                 split="test", metric=m, value=v, ci_low=v, ci_high=v, run_key=method)
            for m, v in values.items()
        ]  # fmt: skip
    return pd.DataFrame(rows), predictions


def test_constant_runs_flag_and_explain_one_class_runs():
    metrics, predictions = one_class_tables()
    table = analysis.constant_runs(metrics, predictions).set_index("method")
    assert list(table.index) == ["last2", "all"]  # head (90% one class) is not flagged
    assert table.loc["last2", "reading"] == "constant"
    assert table.loc["all", "reading"] == "rare answers"
    assert table.loc["all", "weakest_class"] == "yes"
    assert table["true_majority_share"].eq(0.95).all()  # b alone at delta 1
    # always answering class 0 on a 95% mixture: F1 2 * 0.95 / 1.95 on it, 0 on the other
    assert np.allclose(table["constant_macro_f1"], 0.95 / 1.95)
    text = analysis.constant_takeaway(table.reset_index())
    assert "**2 runs**" in text and "1 of them is constant" in text and "last2 on x" in text
    assert "1 of 1 score above" in text


def test_summary_counts_one_class_seeds():
    metrics, _ = one_class_tables()
    summary = analysis.summarise(metrics, "macro_f1").set_index("method")
    assert summary["one_class"].to_dict() == {"all": 1, "head": 0, "last2": 1}
    assert "(1 one-class)" in analysis.wide_summary(summary.reset_index()).loc["all"].iat[0]
    assert "one-class" not in analysis.wide_summary(summary.reset_index()).loc["head"].iat[0]


def test_budget_judges_whole_grids_only():
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
    assert table.loc["a", "wall min at 2 workers"] == 35.0
    assert table["within target"].to_dict() == {"a": "no", "b": "yes", "c": "partial grid"}
    assert table.loc["a", "axes (run min)"] == 9.0
