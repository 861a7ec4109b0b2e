"""Metrics from confusion matrices, bootstrap intervals, mixture metrics (torch-free).

Every metric is a function of a (normalised) confusion matrix. Because a delta-mixture's expected
confusion matrix is the delta-weighted mix of the per-corpus ones, the metric of any mixture
follows from per-corpus predictions without running the model again.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def confusion(
    labels: np.ndarray, preds: np.ndarray, num_labels: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """Counts C[true, predicted] (weighted: a capped test pool's inclusion weights)."""
    cells = labels * num_labels + preds
    counts = np.bincount(cells, weights=weights, minlength=num_labels**2)
    return counts.reshape(num_labels, num_labels).astype(float)


def example_weights(preds: pd.DataFrame) -> np.ndarray | None:
    """A predictions table's inclusion weights, or None where every example counts once."""
    return preds["weight"].to_numpy(float) if "weight" in preds else None


def metrics_from_confusion(c: np.ndarray, label_names) -> dict[str, float]:
    """Accuracy, macro-F1, per-class F1 and the top predicted class's share of a (possibly
    fractional) confusion matrix.

    Works on stacks of matrices too (shape [..., k, k]); returns arrays then.
    """
    total = c.sum((-2, -1))
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    support, predicted = c.sum(-1), c.sum(-2)
    denom = support + predicted
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
        out = {"accuracy": tp.sum(-1) / total, "macro_f1": f1.mean(-1)}
        # share of the most predicted class: near 1 means a (nearly) constant classifier
        out["top_class_share"] = predicted.max(-1) / total
    for k, name in enumerate(label_names):
        out[f"f1_{name}"] = f1[..., k]
    return out


def mixture_confusion(per_corpus: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Expected normalised confusion matrix of a mixture with the given corpus weights."""
    return sum(w * per_corpus[s] / per_corpus[s].sum() for s, w in weights.items() if w > 0)


def expected_curve(
    preds: pd.DataFrame, source_a: str, source_b: str, deltas, label_names
) -> pd.DataFrame:
    """Exact expected metrics of p_delta for each delta, from per-corpus predictions (tidy)."""
    k = len(label_names)
    per = {
        s: confusion(g["label"].to_numpy(), g["pred"].to_numpy(), k)
        for s, g in preds.groupby("source")
    }
    rows = []
    for d in deltas:
        values = metrics_from_confusion(
            mixture_confusion(per, {source_a: 1 - d, source_b: d}), label_names
        )
        rows += [{"delta": d, "metric": m, "value": float(v)} for m, v in values.items()]
    return pd.DataFrame(rows)


def bootstrap(
    preds: pd.DataFrame,
    label_names,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    weights: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Point estimate and percentile bootstrap interval of every metric (tidy: metric, value, ci).

    Resamples within each source corpus, so a mixture keeps its exact composition. With
    ``weights`` ({corpus: weight}), the metric is that of the weighted mixture of the corpora's
    normalised confusion matrices: the exact expected metric of a delta-mixture, computed from
    every test example of each corpus rather than from a sample of them. A ``weight`` column
    (a capped test pool's inclusion weights, ``helpers.data.mixing.capped_weights``) weighs each
    example, and resampling then keeps each class's count within its corpus, as the cap drew it.
    """
    k = len(label_names)
    rng = np.random.default_rng(seed)
    cells = preds["label"].to_numpy() * k + preds["pred"].to_numpy()
    ex = preds["weight"].to_numpy(float) if "weight" in preds else np.ones(len(preds))
    strata = ["source", "label"] if "weight" in preds else ["source"]
    boot, point = np.zeros((n_boot, k * k)), np.zeros(k * k)
    totals = pd.Series(ex, index=preds.index).groupby(preds["source"]).sum()
    for key, rows in preds.groupby(strata).indices.items():
        source = key[0] if isinstance(key, tuple) else key
        w = 1.0 if weights is None else weights.get(source, 0.0) / totals[source]
        point += w * np.bincount(cells[rows], weights=ex[rows], minlength=k * k)
        draws = rows[rng.integers(0, len(rows), size=(n_boot, len(rows)))]
        # Offset each replicate's cells so one bincount counts all replicates at once.
        picked = cells[draws] + (np.arange(n_boot) * k * k)[:, None]
        counted = np.bincount(picked.ravel(), weights=ex[draws].ravel(), minlength=n_boot * k * k)
        boot += w * counted.reshape(n_boot, k * k)
    point = metrics_from_confusion(point.reshape(k, k), label_names)
    dist = metrics_from_confusion(boot.reshape(n_boot, k, k), label_names)
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    return pd.DataFrame(
        [
            {
                "metric": m,
                "value": float(point[m]),
                "ci_low": float(np.quantile(dist[m], lo)),
                "ci_high": float(np.quantile(dist[m], hi)),
            }
            for m in point
        ]
    )


def test_metrics(
    preds: pd.DataFrame,
    label_names,
    n_boot: int,
    seed: int,
    weights: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Bootstrap metrics on each test corpus (split ``test:<corpus>``) and, given the mixture's
    corpus ``weights``, on the delta-mixture (split ``test``); tidy, one row per split x metric."""
    frames = [
        bootstrap(g, label_names, n_boot, seed).assign(split=f"test:{src}")
        for src, g in preds.groupby("source")
    ]
    if weights is not None:
        mixed = bootstrap(preds, label_names, n_boot, seed, weights=weights)
        frames.insert(0, mixed.assign(split="test"))
    return pd.concat(frames, ignore_index=True)
