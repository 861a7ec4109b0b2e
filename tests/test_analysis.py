"""Part IV summaries and claim checks on small hand-made tidy tables with known answers."""

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


def test_paired_test_detects_a_real_difference():
    r = analysis.paired(metrics_table(EFFECTS), "cbv_weight", "all")
    assert r["n"] == 10 and r["mean_diff"] > 0.015 and r["p_value"] < 1e-3 and r["win_rate"] == 1


def test_claims_say_which_way_the_evidence_goes():
    curve = pd.DataFrame(
        {
            "experiment": "books_to_dvd",
            "estimate": "expected",
            "metric": "macro_f1",
            "delta": [0.0, 1.0],
            "value": [0.85, 0.75],
        }
    )
    history = pd.DataFrame(
        {
            "experiment": "books_to_dvd",
            "delta": 1.0,
            "seed": 0,
            "metric": "alpha/layer.0",
            "step": [0, 9, 0, 9],
            "method": ["cbv_study", "cbv_study", "cbv_weight", "cbv_weight"],
            "value": [0.14, 0.14, 0.5, 0.7],
        }
    )
    table = analysis.claims(metrics_table(EFFECTS), curve, history).set_index("poster claim")
    verdicts = table["verdict"]
    assert verdicts["I. A model trained on A degrades as delta grows"] == "holds"
    assert (
        verdicts["II. Fine-tuning all and the first layers works best among surgical choices"]
        == "holds"
    )
    assert verdicts["III. CBV outperforms surgical fine-tuning on average: vs all"] == "holds"
    assert verdicts["III. Optimising the alphas is slow at usual learning rates"] == "holds"
    reversed_ = analysis.claims(metrics_table({**EFFECTS, "cbv_weight": 0.0}), curve, history)
    row = reversed_.set_index("poster claim").loc[
        "III. CBV outperforms surgical fine-tuning on average: vs all"
    ]
    assert row["verdict"] == "reversed (significant)"
