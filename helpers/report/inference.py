"""Paired bootstrap inference over seeds and test examples together (torch-free).

Every stored run holds predictions on both whole test pools (corpus A's and B's), with the same
example ids for every method, delta and seed of an experiment. A delta-mixture's metric is the
exact expected one: the metric of ``(1 - delta) C_A / n_A + delta C_B / n_B`` from the per-pool
confusion counts. One bootstrap replicate of an experiment draws its seeds with replacement and,
within each test pool, example indices with replacement; the same draws serve every method and
delta, so a difference is paired on seeds (shared source models) and on test examples, and its
interval counts training noise and test sampling at once.
"""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pandas as pd

from helpers.evaluation.metrics import metrics_from_confusion
from helpers.spec.experiments import load_experiment

LEVEL = 0.95
# z_{1 - alpha/2} + z_{power} = 1.960 + 0.842 for alpha = 0.05 (two-sided) and 80% power
DETECTABLE_Z = 2.8

# A term is one run's metric: (method, delta the run was fitted at, corpus weights of the test
# mixture); a side is a tuple of terms, averaged (tied references, groups of methods).
Term = tuple[str, float, tuple[tuple[str, float], ...]]


def mixture(experiment: str, delta: float) -> tuple[tuple[str, float], ...]:
    """Corpus weights of an experiment's delta-mixture: (1 - delta) for A, delta for B."""
    e = load_experiment(experiment)
    return ((e.source, 1.0 - delta), (e.target, float(delta)))


def term(method: str, experiment: str, delta: float) -> Term:
    """A method's run at ``delta``, scored on that delta's test mixture."""
    return (method, float(delta), mixture(experiment, delta))


class Draws:
    """Bootstrap replicates of one experiment's stored predictions (seeds and test examples).

    ``predictions``: one experiment's collected predictions (one run per method, delta and
    seed) with columns method, delta, seed, id, source, label, pred.
    """

    def __init__(self, predictions: pd.DataFrame, n_boot: int = 1000, seed: int = 0):
        frame = predictions.sort_values(["source", "id"], kind="stable")
        name = str(frame["experiment"].iat[0]) if "experiment" in frame else ""
        # one stream per experiment, stable across sessions (str hashes are salted)
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        probs = [c for c in frame.columns if str(c).startswith("p_")]
        # the label space: one probability column per class, else the largest label seen
        self.k = len(probs) or int(frame[["label", "pred"]].to_numpy().max()) + 1
        self.n_boot = n_boot
        self.seeds = sorted(frame["seed"].unique().tolist())
        self.runs = {key: g for key, g in frame.groupby(["method", "delta", "seed"])}
        first = next(iter(self.runs.values()))
        self.pools = {s: len(g) for s, g in first.groupby("source", sort=True)}
        self.ids = first["id"].to_numpy()
        self.multiplicity = {}  # pool -> (n_boot, n_pool): how often each example is drawn
        for pool, n in self.pools.items():
            idx = rng.integers(0, n, size=(n_boot, n)) + (np.arange(n_boot) * n)[:, None]
            self.multiplicity[pool] = np.bincount(idx.ravel(), minlength=n_boot * n).reshape(
                n_boot, n
            )
        self.seed_draws = rng.integers(0, len(self.seeds), size=(n_boot, len(self.seeds)))
        self._counts: dict = {}
        self._values: dict = {}

    def counts(self, method: str, delta: float, seed: int):
        """Confusion counts per pool of one run: point (k*k,) and replicates (n_boot, k*k)."""
        key = (method, delta, seed)
        if key not in self._counts:
            run = self.runs.get(key)
            if run is None:
                self._counts[key] = None
                return None
            if len(run) != len(self.ids) or not np.array_equal(run["id"].to_numpy(), self.ids):
                raise ValueError(
                    f"run {key} was not scored on the experiment's test examples; rerun it so "
                    "that every run predicts both whole test pools"
                )
            out = {}
            for pool, g in run.groupby("source", sort=True):
                cells = g["label"].to_numpy() * self.k + g["pred"].to_numpy()
                onehot = np.eye(self.k * self.k)[cells]  # (n_pool, k*k)
                out[pool] = (onehot.sum(0), self.multiplicity[pool] @ onehot)
            self._counts[key] = out
        return self._counts[key]

    def values(self, t: Term, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """A term's metric per seed: point (S,) and replicates (n_boot, S); NaN: no such run."""
        key = (t, metric)
        if key not in self._values:
            method, delta, weights = t
            point = np.full(len(self.seeds), np.nan)
            boot = np.full((self.n_boot, len(self.seeds)), np.nan)
            for j, s in enumerate(self.seeds):
                counts = self.counts(method, delta, s)
                if counts is None:
                    continue
                k2 = self.k * self.k
                p, b = np.zeros(k2), np.zeros((self.n_boot, k2))
                for pool, w in weights:
                    if w > 0:
                        p += w / self.pools[pool] * counts[pool][0]
                        b += w / self.pools[pool] * counts[pool][1]
                names = [str(i) for i in range(self.k)]
                point[j] = metrics_from_confusion(p.reshape(self.k, self.k), names)[metric]
                boot[:, j] = metrics_from_confusion(b.reshape(-1, self.k, self.k), names)[metric]
            self._values[key] = (point, boot)
        return self._values[key]

    def side(self, terms, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """The mean of several terms' metrics (point (S,), replicates (n_boot, S))."""
        pairs = [self.values(t, metric) for t in terms]
        return np.mean([p for p, _ in pairs], 0), np.mean([b for _, b in pairs], 0)

    def units(self, comparisons, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """Differences side_a - side_b per (comparison, seed) unit, seeds resampled.

        ``comparisons``: a list of (side_a, side_b). Returns the observed differences (U,) and
        their replicates (n_boot, U), U = comparisons x seeds: replicate b's j-th seed slot holds
        the seed drawn there, the same seed for every comparison (deltas share a source model).
        """
        points, boots = [], []
        rows = np.arange(self.n_boot)[:, None]
        for a, b in comparisons:
            (pa, ba), (pb, bb) = self.side(a, metric), self.side(b, metric)
            points.append(pa - pb)
            boots.append((ba - bb)[rows, self.seed_draws])
        return np.concatenate(points), np.concatenate(boots, axis=1)


def summary(point: float, boot: np.ndarray, null: float = 0.0) -> dict:
    """Effect, 95% percentile interval, bootstrap p-value against ``null``, smallest detectable.

    ``p_value`` is two-sided: 2 min(1 + #{b <= null}, 1 + #{b >= null}) / (n_boot + 1), capped
    at 1 (a zero difference in every replicate, a tie, gives 1). ``detectable`` is the smallest
    true effect this design finds with 80% power at alpha = 0.05, two-sided, by the normal
    approximation: (z_0.975 + z_0.80) x SE = 2.8 x the bootstrap standard error.
    """
    boot = boot[np.isfinite(boot)]
    if not np.isfinite(point) or not len(boot):
        nan = float("nan")
        return dict(effect=nan, ci_low=nan, ci_high=nan, se=nan, p_value=nan, detectable=nan)
    lo, hi = np.quantile(boot, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    below, above = np.sum(boot <= null), np.sum(boot >= null)
    se = float(boot.std(ddof=1)) if len(boot) > 1 else float("nan")
    return dict(
        effect=float(point),
        ci_low=float(lo),
        ci_high=float(hi),
        se=se,
        p_value=float(min(1.0, 2 * (1 + min(below, above)) / (len(boot) + 1))),
        detectable=DETECTABLE_Z * se,
    )


def seed_mean(point: np.ndarray, boot: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean over units (NaN units, runs that are missing, left out)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: no matched run, NaN result
        return float(np.nanmean(point)), np.nanmean(boot, axis=1)


def paired_difference(
    predictions: pd.DataFrame,
    method: str,
    reference,
    experiment: str,
    delta: float,
    metric: str = "macro_f1",
    n_boot: int = 1000,
    seed: int = 0,
    draws: Draws | None = None,
) -> dict:
    """``method`` - ``reference`` on the delta-mixture, averaged over seeds, paired bootstrap.

    ``reference``: a method name, or several (ties), whose metrics are averaged. Each replicate
    resamples seeds and, within each test pool, test examples, the same for both methods.
    ``draws``: the experiment's replicates, to share them across many calls.
    """
    if draws is None:
        draws = Draws(predictions[predictions["experiment"] == experiment], n_boot, seed)
    refs = (reference,) if isinstance(reference, str) else tuple(reference)
    a = (term(method, experiment, delta),)
    b = tuple(term(r, experiment, delta) for r in refs)
    point, boot = draws.units([(a, b)], metric)
    out = summary(*seed_mean(point, boot))
    return dict(
        experiment=experiment,
        delta=delta,
        method=method,
        reference="=".join(refs),
        n_seeds=int(np.isfinite(point).sum()),
        **out,
    )


def stratified(units: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """Across experiments: mean difference and probability of improvement, stratified bootstrap.

    ``units``: experiment -> (observed differences (U,), replicates (n_boot, U)) from
    ``Draws.units``, each resampled within its own experiment (stratum); a replicate recombines
    one draw of every stratum. P(improvement) is the share of (experiment, delta, seed) units
    where the method beats the reference, a tie counting one half (as rliable counts it).
    """
    point = np.concatenate([p for p, _ in units.values()])
    boot = np.concatenate([b for _, b in units.values()], axis=1)
    keep = np.isfinite(point)
    point, boot = point[keep], boot[:, keep]
    if not len(point):
        return {"mean": summary(np.nan, np.empty(0)), "prob": summary(np.nan, np.empty(0), 0.5)}

    def prob(x):
        return (x > 0).mean(-1) + 0.5 * (x == 0).mean(-1)

    mean = summary(float(point.mean()), boot.mean(1))
    return {"mean": mean, "prob": summary(float(prob(point)), prob(boot), 0.5), "n": len(point)}


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries stay NaN and do not count)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m, running = len(order), 0.0
    for i, j in enumerate(order):
        # each adjusted p is at least the one before it: the procedure stops at the first failure
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return out


def verdict(
    ci_low: float, ci_high: float, p_holm: float, direction: int = 1, null: float = 0.0
) -> str:
    """ "supported", "contradicted" or "inconclusive" for a claim that the effect is on the
    ``direction`` side (+1 above, -1 below) of ``null``.

    Supported: the 95% interval excludes ``null`` on the claimed side and the Holm-adjusted
    p-value is below 0.05; contradicted: the same on the other side; otherwise inconclusive (an
    interval touching ``null``, a tie, or a family-wise test that does not separate it).
    """
    if not (np.isfinite(ci_low) and np.isfinite(ci_high)) or not p_holm < 0.05:
        return "inconclusive"
    if ci_low > null:
        return "supported" if direction > 0 else "contradicted"
    if ci_high < null:
        return "supported" if direction < 0 else "contradicted"
    return "inconclusive"
