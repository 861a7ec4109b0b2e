"""Test examples resampled, seeds held: the test-sampling part of every comparison's variance.

Every run of an experiment is scored on the same test pools (the same examples, with the same
inclusion weights where a pool is capped), so a bootstrap replicate draws, once per pool and
class, which examples it counts (with replacement, within each class, as the pools were drawn)
and applies the same draw to every run, method and seed: differences stay paired. A pool shared
by several experiments (Amazon books in the three review experiments) gets one draw for all of
them. The seeds are the units of every claim (``helpers.report.inference``); this module gives,
per run, its metric on each replicate, from which the variance of any average over seeds due to
the finite test pools follows.

Metrics: macro-F1 and the like from the delta-mixture's expected confusion matrix, and AUROC of
the class with index 1 (threshold-free, from the stored probabilities), of the same mixture.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from helpers.evaluation.metrics import metrics_from_confusion

N_DRAWS = 2000  # replicates: the relative error of a variance from B of them is ~sqrt(2 / B)
AUROC_DRAWS = 500  # AUROC's (a beside-the-headline column): 6% on its variance, 4x faster


class ExampleDraws:
    """Replicate multiplicities of every example of every test pool, drawn once per pool.

    ``pools``: pool name -> the pool's (ids, labels, weights) in a fixed order (sorted by id).
    """

    def __init__(self, pools: dict[str, pd.DataFrame], n_draws: int = N_DRAWS, seed: int = 0):
        self.n = n_draws
        self.pools = {name: frame.sort_values("id", kind="stable") for name, frame in pools.items()}
        self.counts: dict[str, np.ndarray] = {}  # pool -> (n_draws, n_pool) multiplicities
        for name, frame in self.pools.items():
            rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
            labels = frame["label"].to_numpy()
            counts = np.zeros((n_draws, len(frame)), dtype=np.float32)
            for label in np.unique(labels):
                rows = np.flatnonzero(labels == label)
                picks = rows[rng.integers(0, len(rows), size=(n_draws, len(rows)))]
                np.add.at(counts, (np.arange(n_draws)[:, None], picks), 1.0)
            self.counts[name] = counts

    def weights(self, pool: str) -> np.ndarray:
        frame = self.pools[pool]
        return frame["weight"].to_numpy(float) if "weight" in frame else np.ones(len(frame))


def pools_of(predictions: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each pool's examples (id, label, weight) as every run scored them (the first run's)."""
    first = predictions.drop_duplicates(["source", "id"])
    cols = [c for c in ("id", "label", "weight") if c in first]
    return {name: g[cols].reset_index(drop=True) for name, g in first.groupby("source")}


class RunValues:
    """One run's metric on its delta-mixture: the point value and one per replicate."""

    def __init__(self, draws: ExampleDraws, preds: pd.DataFrame, k: int):
        self.draws, self.k = draws, k
        self.by_pool = {}
        for pool, g in preds.groupby("source"):
            g = g.sort_values("id", kind="stable")
            ref = draws.pools[pool]["id"].to_numpy()
            if len(g) != len(ref) or not np.array_equal(g["id"].to_numpy(), ref):
                raise ValueError(
                    f"run {g['run_key'].iat[0] if 'run_key' in g else '?'} was not scored on "
                    f"the experiment's test examples of {pool}; rerun it"
                )
            self.by_pool[pool] = g

    def confusion(self, mixture: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """Expected normalised confusion of the mixture: point (k*k,), replicates (n, k*k)."""
        k2 = self.k * self.k
        point, boot = np.zeros(k2), np.zeros((self.draws.n, k2))
        for pool, w in mixture.items():
            if w <= 0:
                continue
            g = self.by_pool[pool]
            cells = g["label"].to_numpy() * self.k + g["pred"].to_numpy()
            onehot = np.eye(k2)[cells] * self.draws.weights(pool)[:, None]  # (n_pool, k2)
            rep = self.draws.counts[pool] @ onehot  # (n_draws, k2)
            point += w * onehot.sum(0) / onehot.sum()
            boot += w * rep / rep.sum(1, keepdims=True)
        return point, boot

    def metric(self, name: str, mixture: dict[str, float]) -> tuple[float, np.ndarray]:
        """A confusion metric (macro_f1, accuracy ...) or ``auroc`` of the mixture."""
        if name == "auroc":
            if self.k != 2:  # of class 1 against the rest: defined here for two classes
                return float("nan"), np.full(AUROC_DRAWS, np.nan)
            return self._auroc(mixture)
        point, boot = self.confusion(mixture)
        labels = [str(i) for i in range(self.k)]
        p = metrics_from_confusion(point.reshape(self.k, self.k), labels)[name]
        b = metrics_from_confusion(boot.reshape(-1, self.k, self.k), labels)[name]
        return float(p), np.asarray(b, float)

    def _auroc(self, mixture: dict[str, float]) -> tuple[float, np.ndarray]:
        """Weighted Mann-Whitney AUROC of class 1 on the mixture (ties count one half)."""
        scores, pos, w_point, w_boot = [], [], [], []
        for pool, w in mixture.items():
            if w <= 0:
                continue
            g = self.by_pool[pool]
            ex = self.draws.weights(pool)
            scores.append(g["p_1"].to_numpy(float))
            pos.append(g["label"].to_numpy() == 1)
            w_point.append(w * ex / ex.sum())
            rep = self.draws.counts[pool][:AUROC_DRAWS] * ex
            w_boot.append(w * rep / rep.sum(1, keepdims=True))
        s, y = np.concatenate(scores), np.concatenate(pos)
        point = auroc(s, y, np.concatenate(w_point)[None, :])[0]
        return float(point), auroc(s, y, np.concatenate(w_boot, axis=1))


def auroc(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUROC per row of ``weights`` (n_rows, n): P(score of a positive > a negative's), with
    ties counted one half, every example weighted."""
    order = np.argsort(scores, kind="stable")
    s, y, w = scores[order], positive[order], weights[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # runs of tied scores
    group = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1
    neg = np.where(~y, w, 0.0)
    pos = np.where(y, w, 0.0)
    neg_g = np.add.reduceat(neg, starts, axis=1)  # negative weight per tied group
    below = np.cumsum(neg_g, axis=1) - neg_g  # negative weight strictly below each group
    credit = below[:, group] + 0.5 * neg_g[:, group]
    num = (pos * credit).sum(1)
    den = pos.sum(1) * neg.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)
