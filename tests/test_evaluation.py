"""Metrics from confusion matrices, mixture-derived metrics, bootstrap intervals."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from helpers.evaluation.metrics import bootstrap, confusion, expected_curve, metrics_from_confusion

LABELS = ("neg", "pos")


def preds(source, n, acc, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    wrong = rng.random(n) > acc
    return pd.DataFrame(
        {
            "id": [f"{source}{i}" for i in range(n)],
            "source": source,
            "label": y,
            "pred": np.where(wrong, 1 - y, y),
        }
    )


def test_metrics_match_sklearn():
    p = preds("a", 500, 0.8, 0)
    m = metrics_from_confusion(confusion(p["label"].values, p["pred"].values, 2), LABELS)
    assert m["accuracy"] == pytest.approx(accuracy_score(p["label"], p["pred"]))
    assert m["macro_f1"] == pytest.approx(f1_score(p["label"], p["pred"], average="macro"))
    assert m["f1_pos"] == pytest.approx(f1_score(p["label"], p["pred"]))


def test_expected_curve_equals_metric_of_exact_mixture():
    a, b = preds("a", 400, 0.9, 1), preds("b", 400, 0.6, 2)
    curve = expected_curve(pd.concat([a, b]), "a", "b", [0.0, 0.25, 1.0], LABELS)
    # A mixture holding exactly 300 of A and 100 of B (3:1, same per-corpus rates as the pools)
    # has the expected metric when both pools are used in full proportion: repeat A 3 times.
    mix = pd.concat([a, a, a, b])
    direct = metrics_from_confusion(confusion(mix["label"].values, mix["pred"].values, 2), LABELS)
    got = curve[(curve["delta"] == 0.25)].set_index("metric")["value"]
    for metric in ("accuracy", "macro_f1", "f1_pos"):
        assert got[metric] == pytest.approx(direct[metric])
    ends = curve[curve["metric"] == "accuracy"].set_index("delta")["value"]
    assert ends[0.0] == pytest.approx((a["label"] == a["pred"]).mean())
    assert ends[1.0] == pytest.approx((b["label"] == b["pred"]).mean())


def test_bootstrap_interval_brackets_point_and_is_deterministic():
    p = pd.concat([preds("a", 300, 0.85, 3), preds("b", 100, 0.6, 4)])
    first, again = bootstrap(p, LABELS, 400, seed=7), bootstrap(p, LABELS, 400, seed=7)
    assert first.equals(again)
    for _, r in first.iterrows():
        assert r["ci_low"] <= r["value"] <= r["ci_high"]
    acc = first.set_index("metric").loc["accuracy"]
    assert 0.02 < acc["ci_high"] - acc["ci_low"] < 0.15  # about 2 x 1.96 x sqrt(p(1-p)/n)


def test_weighted_bootstrap_is_the_expected_mixture_metric():
    rng = np.random.default_rng(0)
    frames = []
    for source, n, acc in (("A", 300, 0.9), ("B", 100, 0.6)):
        label = rng.integers(0, 2, n)
        pred = np.where(rng.random(n) < acc, label, 1 - label)
        frames.append(pd.DataFrame({"source": source, "label": label, "pred": pred}))
    preds = pd.concat(frames, ignore_index=True)
    names = ("neg", "pos")
    for delta in (0.0, 0.3, 1.0):
        got = bootstrap(preds, names, 200, 0, weights={"A": 1 - delta, "B": delta})
        want = expected_curve(preds, "A", "B", [delta], names)
        for metric in ("accuracy", "macro_f1"):
            row = got.set_index("metric").loc[metric]
            value = want.set_index("metric").loc[metric, "value"]
            assert row["value"] == pytest.approx(value, abs=1e-12)
            assert row["ci_low"] <= row["value"] <= row["ci_high"]
    # weights proportional to the pool sizes give the plain pooled metric
    pooled = bootstrap(preds, names, 1, 0).set_index("metric")["value"]
    weighted = bootstrap(preds, names, 1, 0, weights={"A": 0.75, "B": 0.25})
    assert np.allclose(weighted.set_index("metric")["value"], pooled)
