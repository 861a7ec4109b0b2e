"""Claim estimates on constructed tables with known answers (torch-free)."""

import json

import numpy as np
import pandas as pd
import pytest

from helpers.report.claim_estimates import _alpha_distance
from helpers.report.claim_registry import CLAIMS

SLOW = next(c for c in CLAIMS if c.key == "III:slow")
GROUPS = ("layer.0", "layer.1", "head")


def runs_at_two_rates(offset: float) -> dict:
    """cbv_study runs at coefficient rates 1e-4 and 1e-2 for 4 seeds, each with a converged
    companion ``offset`` away from the run it converges from (its ``base_run``)."""
    metrics, coefficients = [], []
    rng = np.random.default_rng(0)
    for seed in range(4):
        for rate in (1e-4, 1e-2):
            key = f"run-{seed}-{rate:g}"
            end = rng.random(len(GROUPS))  # each rate ends somewhere else
            own = 0.6 + 0.1 * seed + (0.05 if rate > 1e-3 else 0.0)  # every run its own score
            for method, k, alphas, base, score in (
                ("cbv_study", key, end, None, own),
                ("cbv_study_converged", f"{key}-c", end + offset, key, own + 0.02),
            ):
                train = {"lr": 1e-4, "alpha_lr": rate}
                config = json.dumps({"train": train, "base_run": base})
                row = dict(run_key=k, experiment="books_to_dvd", method=method, delta=1.0)
                row.update(seed=seed, config=config)
                metrics.append({**row, "split": "test", "metric": "macro_f1", "value": score})
                coefficients += [{**row, "group": g, "alpha": a} for g, a in zip(GROUPS, alphas)]
    return {"metrics": pd.DataFrame(metrics), "coefficients": pd.DataFrame(coefficients)}


def test_each_run_is_measured_against_its_own_converged_alphas():
    same = _alpha_distance(SLOW, runs_at_two_rates(0.0))
    assert same["main"].effect == pytest.approx(0.0)  # not against another rate's end point
    assert same["main"].n == 4  # the usual rate's runs only, one per seed
    moved = _alpha_distance(SLOW, runs_at_two_rates(0.03))
    assert moved["main"].effect == pytest.approx(0.03)
    assert moved["cost"].effect == pytest.approx(0.02)  # what stopping at the budget costs
