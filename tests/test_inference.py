"""Paired bootstrap inference and the claims table, on predictions with known differences."""

import json
import time

import numpy as np
import pandas as pd
import pytest

from helpers.paths import ROOT
from helpers.report import analysis, comparisons
from helpers.report.inference import (
    DETECTABLE_Z,
    Draws,
    holm,
    paired_difference,
    stratified,
    summary,
    term,
    verdict,
)

A, B = "amazon_books", "amazon_dvd"  # books_to_dvd's corpora, from experiments.yaml
N_A, N_B = 300, 200
FIXTURES = ROOT / "tests" / "fixtures" / "data"


def base_run(rng, error=0.3):
    """Labels of both pools and predictions with about ``error`` of them wrong."""
    source = np.array([A] * N_A + [B] * N_B)
    label = rng.integers(0, 2, N_A + N_B)
    pred = np.where(rng.random(N_A + N_B) < error, 1 - label, label)
    return source, label, pred


def improve(label, pred, source, k, pool=B):
    """The same predictions with the first ``k`` wrong answers of ``pool`` made correct."""
    wrong = np.flatnonzero((pred != label) & (source == pool))[:k]
    out = pred.copy()
    out[wrong] = label[wrong]
    return out


def frame(experiment, method, delta, seed, source, label, pred):
    n = len(label)
    return pd.DataFrame(
        dict(
            experiment=experiment,
            method=method,
            delta=delta,
            seed=seed,
            run_key=f"{experiment}-{method}-{delta}-{seed}",
            id=[f"x{i:04d}" for i in range(n)],
            source=source,
            label=label,
            pred=pred,
        )
    )


def two_methods(k_by_seed, delta=1.0, experiment="books_to_dvd"):
    """``better`` = ``ref`` with k_by_seed[s] extra correct answers in pool B, per seed."""
    rng, frames = np.random.default_rng(0), []
    for seed, k in enumerate(k_by_seed):
        source, label, pred = base_run(rng)
        frames.append(frame(experiment, "ref", delta, seed, source, label, pred))
        better = improve(label, pred, source, k)
        frames.append(frame(experiment, "better", delta, seed, source, label, better))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("delta", [0.5, 1.0])
def test_k_extra_correct_answers_give_that_difference_and_an_interval_above_zero(delta):
    preds = two_methods([10, 10, 10], delta)
    r = paired_difference(preds, "better", "ref", "books_to_dvd", delta, "accuracy", 1000, 0)
    assert r["effect"] == pytest.approx(delta * 10 / N_B)  # the mixture weights pool B by delta
    assert 0 < r["ci_low"] < r["effect"] < r["ci_high"] and r["p_value"] < 0.01
    # paired: only the 10 changed answers vary, drawn about Poisson(10) times, so the width is
    # near 2 x 1.96 x sqrt(10) / 10 = 1.24 effects; unpaired it would be several times wider
    width = r["ci_high"] - r["ci_low"]
    assert 0.9 * r["effect"] < width < 1.6 * r["effect"]
    back = paired_difference(preds, "ref", "better", "books_to_dvd", delta, "accuracy", 1000, 0)
    assert back["effect"] == pytest.approx(-r["effect"]) and back["ci_high"] < 0


def test_identical_methods_tie_and_stay_inconclusive():
    preds = two_methods([0, 0, 0])
    r = paired_difference(preds, "better", "ref", "books_to_dvd", 1.0, "macro_f1", 500, 0)
    assert r["effect"] == 0 and r["ci_low"] <= 0 <= r["ci_high"] and r["p_value"] == 1
    assert verdict(r["ci_low"], r["ci_high"], r["p_value"]) == "inconclusive"


def test_seed_noise_widens_the_interval():
    steady = paired_difference(
        two_methods([15, 15, 15]), "better", "ref", "books_to_dvd", 1.0, "accuracy", 1000, 0
    )
    noisy = paired_difference(
        two_methods([0, 15, 30]), "better", "ref", "books_to_dvd", 1.0, "accuracy", 1000, 0
    )
    assert steady["effect"] == pytest.approx(noisy["effect"])  # same mean over seeds
    assert noisy["ci_high"] - noisy["ci_low"] > 2 * (steady["ci_high"] - steady["ci_low"])
    assert noisy["detectable"] == pytest.approx(DETECTABLE_Z * noisy["se"])


def test_holm_on_a_textbook_example():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4 x 0.005, 3 x 0.01, 2 x 0.03, max(0.06, 1 x 0.04)
    got = holm([0.01, 0.04, 0.03, 0.005, np.nan])
    assert np.allclose(got[:4], [0.03, 0.06, 0.06, 0.02]) and np.isnan(got[4])
    assert np.allclose(holm([0.5, 0.9]), [1.0, 1.0])  # capped at 1


def test_stratified_bootstrap_keeps_each_experiment_in_its_stratum():
    better = two_methods([20, 20, 20], experiment="books_to_dvd")
    tie = two_methods([0, 0, 0], experiment="books_to_kitchen").replace({B: "amazon_kitchen"})
    units = {}
    for e, g in [("books_to_dvd", better), ("books_to_kitchen", tie)]:
        d = Draws(g, 1000, 0)
        units[e] = d.units([((term("better", e, 1.0),), (term("ref", e, 1.0),))], "accuracy")
    s = stratified(units)
    assert s["n"] == 6 and s["mean"]["effect"] == pytest.approx(20 / N_B / 2)
    # three wins and three ties in every replicate: P(improvement) = (3 + 0.5 x 3) / 6 exactly
    assert s["prob"]["effect"] == 0.75
    assert s["prob"]["ci_low"] == s["prob"]["ci_high"] == 0.75
    assert 0 < s["mean"]["ci_low"] < s["mean"]["ci_high"] < 20 / N_B


@pytest.mark.parametrize(
    "low, high, p, direction, expected",
    [
        (0.01, 0.05, 0.01, 1, "supported"),
        (0.01, 0.05, 0.01, -1, "contradicted"),
        (-0.05, -0.01, 0.01, 1, "contradicted"),
        (-0.05, -0.01, 0.01, -1, "supported"),
        (-0.01, 0.05, 0.2, 1, "inconclusive"),
        (0.0, 0.0, 1.0, 1, "inconclusive"),  # a tie is neither a win nor a loss
        (0.01, 0.05, 0.08, 1, "inconclusive"),  # Holm does not separate it from zero
    ],
)
def test_verdicts_are_symmetric(low, high, p, direction, expected):
    assert verdict(low, high, p, direction) == expected


def test_p_value_from_the_bootstrap_distribution():
    boot = np.r_[np.full(974, 0.1), np.full(26, -0.1)]
    assert summary(0.1, boot)["p_value"] == pytest.approx(2 * 27 / 1001)


def test_a_thousand_replicates_of_three_seeds_take_well_under_a_second():
    preds = two_methods([10, 10, 10])
    big = pd.concat([preds.assign(id=preds["id"] + f"-{i}") for i in range(5)])  # 2,500 each
    start = time.perf_counter()
    paired_difference(big, "better", "ref", "books_to_dvd", 1.0, "macro_f1", 1000, 0)
    assert time.perf_counter() - start < 1.0


# ---- the claims table on a synthetic store with known effects ------------------------------
EXTRA = {"none": -60, "head": 0, "first2": 30, "middle2": 0, "last2": 0, "all": 30}
EXTRA["cbv_weight"] = 60


def synthetic_store(extra=EXTRA, seeds=(0, 1, 2), kitchen=None):
    """Metrics and predictions of two Amazon experiments: each method is a shared base with
    ``extra[method]`` more correct answers (negative: more wrong ones) in both pools
    (``kitchen``: other extras for books_to_kitchen)."""
    rng, preds, metrics = np.random.default_rng(1), [], []
    for e, target in [("books_to_dvd", "amazon_dvd"), ("books_to_kitchen", "amazon_kitchen")]:
        extras = kitchen if (kitchen and e == "books_to_kitchen") else extra
        for seed in seeds:
            source, label, pred = base_run(rng, error=0.35)
            source = np.where(source == B, target, source)
            wrong_b = np.where(source == target, 1 - label, pred)  # source model: fails on B
            preds.append(
                frame(e, "source", 0.0, seed, source, label, np.where(source == A, label, wrong_b))
            )
            metrics.append(
                dict(
                    experiment=e,
                    method="source",
                    delta=0.0,
                    seed=seed,
                    split=f"test:{A}",
                    metric="macro_f1",
                    value=1.0,
                    config="{}",
                    run_key=f"{e}-source-0.0-{seed}",
                )
            )
            for delta in (0.5, 1.0):
                for m, k in extras.items():
                    if k >= 0:
                        p = improve(label, improve(label, pred, source, k, A), source, k, target)
                    else:  # about -k more wrong answers: every n/-k-th example flipped wrong
                        p = np.where(np.arange(len(pred)) % (len(pred) // -k) == 0, 1 - label, pred)
                    preds.append(frame(e, m, delta, seed, source, label, p))
                    config = {"sizes": {"train": 256}, "train": {"lr": 1e-4}}
                    metrics.append(
                        dict(
                            experiment=e,
                            method=m,
                            delta=delta,
                            seed=seed,
                            split="validation",
                            metric="macro_f1",
                            value=0.7 + k / 1000,
                            config=json.dumps(config),
                            run_key=f"{e}-{m}-{delta}-{seed}",
                        )
                    )
    return pd.DataFrame(metrics), pd.concat(preds, ignore_index=True)


def test_claims_on_known_effects():
    metrics, preds = synthetic_store()
    history = pd.DataFrame(columns=["metric", "method", "step", "value", "run_key"])
    table = analysis.claims(metrics, preds, history, "macro_f1", n_boot=500)
    v = table.set_index("claim")["verdict"]
    assert v["I. A model trained on A degrades as delta grows (books_to_dvd)"] == "supported"
    assert v["II. Fine-tuning on the mixture beats the un-updated source model"] == "supported"
    best = "II. Fine-tuning all and the first layers works best among surgical choices"
    assert v[best] == "supported"
    assert v["III. CBV outperforms surgical fine-tuning on average: vs all"] == "supported"
    # first2 and all tie on validation: the reference is their mean, not a coin flip
    assert v["III. CBV outperforms surgical fine-tuning on average: vs best surgical"] == (
        "supported"
    )
    # equal effects, yet 3 seeds cannot show the spread is below 0.02: its interval reaches past
    consistent = "III. CBV gives consistent results across the Amazon domains"
    assert v[consistent] == "inconclusive"
    assert table.set_index("claim").loc[consistent, "ci_high"] > 0.02
    assert v["III. CBV fails to beat all-layer fine-tuning on the largest data set"].startswith(
        "not testable"
    )
    tested = table.dropna(subset=["p_value"])
    assert (tested["p_holm"] >= tested["p_value"] - 1e-12).all()
    assert comparisons.best_surgical(metrics)[("books_to_dvd", 0.5)] == ("first2", "all")
    md = analysis.claims_markdown(table)
    assert list(md.columns)[-1] == "verdict" and md["95% interval"].str.startswith("[").any()

    # CBV helps on dvd only; 1,000 replicates: the smallest p (2 / 1001) must survive Holm x 11
    uneven = synthetic_store(kitchen={**EXTRA, "cbv_weight": 30})
    spread = analysis.claims(*uneven, history, n_boot=1000).set_index("claim").loc[consistent]
    assert spread["ci_low"] > 0.02 and spread["verdict"] == "contradicted"

    equal = synthetic_store({**EXTRA, "cbv_weight": 30})
    tied = analysis.claims(*equal[:1], equal[1], history, n_boot=300).set_index("claim")
    row = tied.loc["III. CBV outperforms surgical fine-tuning on average: vs all"]
    assert row["effect"] == 0 and row["verdict"] == "inconclusive"


def test_final_runs_drop_tuning_grid_runs():
    metrics, _ = synthetic_store({"all": 0}, seeds=(0, 1))
    grid = (
        metrics[metrics["method"] == "all"]
        .iloc[[0]]
        .assign(
            run_key="tuning-point",
            value=0.99,
            config=json.dumps({"sizes": {"train": 256}, "train": {"lr": 3e-4}}),
        )
    )
    final = comparisons.final_runs(pd.concat([metrics, grid]))
    assert "tuning-point" not in set(final["run_key"]) and len(final) == len(metrics)


# ---- end to end: a smoke study on the fixture corpora feeding the claims ------------------
def test_claims_end_to_end_on_a_smoke_study(tmp_path):
    from helpers.study.adaptation import run_methods
    from helpers.study.experiment import open_study

    study = open_study("books_to_dvd", "smoke", FIXTURES, tmp_path, progress=False)
    run_methods(study, ["none", "all", "cbv_weight"], seeds=[0, 1])
    store = study.store
    metrics, preds = store.collect("metrics"), store.collect("predictions")
    table = analysis.claims(metrics, preds, store.collect("history"), n_boot=200)
    rows = table.set_index("claim")
    vocabulary = {"supported", "contradicted", "inconclusive"}
    for claim in [
        "I. A model trained on A degrades as delta grows (books_to_dvd)",
        "II. Fine-tuning on the mixture beats the un-updated source model",
        "III. CBV outperforms surgical fine-tuning on average: vs all",
    ]:
        r = rows.loc[claim]
        assert np.isfinite(r["effect"]) and r["ci_low"] <= r["effect"] <= r["ci_high"]
        assert r["verdict"] in vocabulary and r["p_holm"] >= r["p_value"]
    assert "2 (experiment, delta, seed) units" in rows.loc[claim, "compared"]
    assert rows.loc[
        "III. CBV outperforms surgical fine-tuning on average: vs first2", "verdict"
    ].startswith("not testable")
    diffs = comparisons.paired_differences(preds, metrics, ["none", "cbv_weight"], n_boot=200)
    assert set(diffs["reference"]) == {"all", "best surgical"} and (diffs["n_seeds"] == 2).all()


def test_paired_differences_table_and_its_figure():
    from helpers.report import plots

    metrics, preds = synthetic_store()
    diffs = comparisons.paired_differences(preds, metrics, ["none", "cbv_weight"], n_boot=200)
    # 2 experiments x 2 deltas x 2 methods x 2 references (all; first2 = all tied on validation)
    assert len(diffs) == 16 and set(diffs["reference_methods"]) == {"all", "first2=all"}
    assert (diffs[diffs["method"] == "cbv_weight"]["ci_low"] > 0).all()
    fig = plots.paired_differences(diffs, "synthetic")
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == [
        "books_to_dvd",
        "books_to_kitchen",
    ]
