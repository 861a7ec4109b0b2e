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
