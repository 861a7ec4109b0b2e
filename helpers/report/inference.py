"""Inference with seeds as the units: effects, intervals, tests and verdicts (torch-free).

A unit is one seed of one cluster of experiments: the experiments that adapt the same source
models (the same corpus A) share each seed's source model, so their paired differences are
averaged per seed into one unit; an experiment of its own is its own cluster. A claim's effect
is the mean over experiments (equal weights) of the mean over seeds of a paired difference
(each computed on the whole, or capped and weighted, test pools). Its variance has two parts:

- between seeds: ``sum_g w_g^2 s_g^2 / n_g`` over clusters g (weight w_g: its share of the
  experiments; s_g: the SD of its per-seed units), clusters fixed, seeds random within them;
- test sampling: the finite test pools are shared by every seed, so their sampling error does
  not average out over seeds; its variance is that of the effect over test-example bootstrap
  replicates with the seeds held (``helpers.report.resampling``). Counting it in full beside the
  seeds' variance, which already holds each seed's own share of it, errs on the wide side.

The interval and p-value are t-based, with Welch-Satterthwaite degrees of freedom from the
clusters (the test part counted as known). With five units or fewer the p-value is the exact
sign-flip test of the weighted mean over units instead (every sign pattern enumerated; it cannot
go below 2 / 2^n; conditional on the test pools) and the report says so. Multiplicity: each
row's own test and the test its opposite verdict rests on (two one-sided tests against the
margin for equivalence; "a beats b" against "no better than"; ...) form one Holm family over
the whole table (statsmodels), and each row's interval is shown at the level that agrees with
its adjusted p. Consistency across domains: the between-domain standard deviation of the effect,
tau, with a Q-profile interval that counts each domain's sampling error and the domains'
covariance (generalised Q; random-effects meta-analysis: Viechtbauer 2007).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats
from statsmodels.stats.multitest import multipletests

ALPHA = 0.05
EXACT_UNITS = 5  # at most this many units: the exact sign-flip test, not the t distribution
POWER = 0.8  # of "smallest detectable"


@dataclass(frozen=True)
class Estimate:
    """A weighted mean of unit differences with its two variance parts and degrees of freedom.

    A unit is one seed of one cluster: the experiments that share a source model (the same
    corpus A) are one cluster, their differences averaged per seed, so correlated experiments
    are never counted as independent units.
    """

    effect: float
    var_seed: float
    var_test: float
    df: float
    units: np.ndarray  # the unit differences (for the exact test)
    n_strata: int  # experiments the effect spans
    weights: np.ndarray | None = None  # each unit's weight in the effect (they sum to 1)
    dropped: int = 0  # clusters left out for holding a single unit

    @property
    def n(self) -> int:
        return len(self.units)

    @property
    def se(self) -> float:
        return float(np.sqrt(self.var_seed + self.var_test))

    @property
    def exact(self) -> bool:
        return self.n <= EXACT_UNITS

    def interval(self, alpha: float = ALPHA) -> tuple[float, float]:
        """Two-sided (1 - alpha) t interval."""
        if not np.isfinite(self.se) or self.n < 2:
            return float("nan"), float("nan")
        half = stats.t.ppf(1 - alpha / 2, self.df) * self.se
        return self.effect - half, self.effect + half

    def p_value(self, null: float = 0.0, side: int = 0) -> float:
        """p of H0: effect = null (side 0, two-sided), <= null (side +1) or >= null (side -1).

        Five units or fewer: the exact sign-flip test of the weighted mean (conditional on the
        test pools: their sampling error is not in it)."""
        if self.n < 2 or not np.isfinite(self.se):
            return float("nan")
        if self.exact:
            return sign_flip(self.units - null, side, self.weights)
        if self.se == 0:
            if side == 0:
                return 1.0 if self.effect == null else 0.0
            return 1.0 if side * (self.effect - null) <= 0 else 0.0
        t = (self.effect - null) / self.se
        if side == 0:
            return float(2 * stats.t.sf(abs(t), self.df))
        return float(stats.t.sf(side * t, self.df))

    def bound(self, alpha: float, side: int) -> tuple[float, float]:
        """The one-sided (1 - alpha) bound of a one-sided test (``side`` +1: a lower bound, the
        interval [low, inf); -1: an upper bound): it clears a null exactly when that test's p is
        below ``alpha``."""
        low, high = self.interval(2 * alpha)
        return (low, float("inf")) if side > 0 else (float("-inf"), high)

    def detectable(self, alpha: float = ALPHA, sides: int = 2) -> float:
        """The smallest true effect this design finds with 80% power at level ``alpha``
        (``sides`` 1 for a one-sided test); infinite where the exact test cannot reach it."""
        if self.n < 2:
            return float("nan")
        if self.exact and sides * 0.5**self.n >= alpha:
            return float("inf")  # 2 / 2^n (two-sided) is the exact test's smallest p
        crit = stats.t.ppf(1 - alpha / sides, self.df)
        return float((crit + stats.t.ppf(POWER, self.df)) * self.se)


def estimate(units: dict, boot: np.ndarray | None = None, clusters: dict | None = None) -> Estimate:
    """The stratified mean of unit differences and its variance.

    ``units``: stratum (experiment) -> per-seed differences (a Series indexed by seed, or an
    array). ``clusters``: stratum -> cluster (its source corpus); strata of one cluster share
    each seed's source model, so their differences are averaged per seed into one unit, and a
    cluster weighs as many strata as it holds. Without ``clusters`` every stratum is its own.
    A cluster with one unit has no variance to show and is left out (``dropped``). ``boot``:
    the effect on each test-example replicate (seeds held), or None.
    """
    series = {}
    for k, v in units.items():
        v = v if isinstance(v, pd.Series) else pd.Series(np.asarray(v, float))
        v = v[np.isfinite(v.to_numpy(float))]
        if len(v):
            series[k] = v.astype(float)
    groups: dict = {}
    for k, v in series.items():
        groups.setdefault(clusters.get(k, k) if clusters else k, []).append(v)
    cells = {
        g: (pd.concat(vs, axis=1).mean(axis=1) if len(vs) > 1 else vs[0], len(vs))
        for g, vs in groups.items()
    }
    kept = {g: c for g, c in cells.items() if len(c[0]) > 1}
    dropped = len(cells) - len(kept)
    if not kept:  # nothing with a variance: a single unit's value, untestable
        flat = np.concatenate([c.to_numpy() for c, _ in cells.values()]) if cells else np.empty(0)
        effect = float(flat.mean()) if len(flat) else float("nan")
        return Estimate(effect, float("nan"), 0.0, float("nan"), flat, len(series))
    total = sum(m for _, m in kept.values())
    w = {g: m / total for g, (_, m) in kept.items()}
    effect = float(sum(w[g] * c.mean() for g, (c, _) in kept.items()))
    parts = {g: w[g] ** 2 * c.var(ddof=1) / len(c) for g, (c, _) in kept.items()}
    var_seed = float(sum(parts.values()))
    var_test = float(np.nanvar(boot, ddof=1)) if boot is not None and len(boot) > 1 else 0.0
    dof = sum(parts[g] ** 2 / (len(c) - 1) for g, (c, _) in kept.items())
    df = (var_seed + var_test) ** 2 / dof if dof > 0 else float("inf")
    df = max(df, min(len(c) - 1 for c, _ in kept.values()))
    values = np.concatenate([c.to_numpy() for c, _ in kept.values()])
    weights = np.concatenate([np.full(len(c), w[g] / len(c)) for g, (c, _) in kept.items()])
    strata = sum(m for _, m in kept.values())
    return Estimate(effect, var_seed, var_test, df, values, strata, weights, dropped)


def sign_flip(diffs: np.ndarray, side: int = 0, weights: np.ndarray | None = None) -> float:
    """Exact sign-flip permutation p of the (weighted) mean of ``diffs`` = 0: all 2^n sign
    patterns (scipy's permutation_test agrees on equal weights)."""
    diffs = np.asarray(diffs, float)
    w = np.full(len(diffs), 1.0 / len(diffs)) if weights is None else np.asarray(weights, float)
    observed = float(w @ diffs)
    flips = np.array(list(itertools.product((1.0, -1.0), repeat=len(diffs))))
    means = flips @ (w * diffs)
    tol = 1e-12 * max(1.0, abs(observed))
    if side == 0:
        return float(np.mean(np.abs(means) >= abs(observed) - tol))
    return float(np.mean(side * means >= side * observed - tol))


def tost(est: Estimate, margin: float) -> float:
    """p of two one-sided tests against +-margin (small: the effect lies within the margin)."""
    return max(est.p_value(-margin, side=+1), est.p_value(margin, side=-1))


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values (statsmodels); NaN entries stay NaN and do not count."""
    p = np.asarray(p_values, float)
    out = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        out[finite] = multipletests(p[finite], alpha=ALPHA, method="holm")[1]
    return out


@dataclass(frozen=True)
class Heterogeneity:
    """Between-domain spread of an effect: tau with a Q-profile interval, and its tests.

    ``v``: each domain's sampling variance, or their covariance matrix (domains that share a
    source model per seed are correlated; generalised least squares then)."""

    tau: float
    low: float
    high: float
    q: float
    k: int

    def p_below(self, margin: float, y, v) -> float:
        """p of H0: tau >= margin (small: the domains agree within the margin)."""
        return float(stats.chi2.cdf(_q(margin**2, y, v), self.k - 1))

    def p_above(self, margin: float, y, v) -> float:
        """p of H0: tau <= margin (small: they differ by more than the margin)."""
        return float(stats.chi2.sf(_q(margin**2, y, v), self.k - 1))


def _q(tau2: float, y: np.ndarray, v: np.ndarray) -> float:
    """The generalised Q statistic at between-domain variance ``tau2``: r' (V + tau2 I)^-1 r,
    r the residuals from the generalised least-squares mean (V diagonal: the usual Q)."""
    y = np.asarray(y, float)
    cov = np.diag(v) if np.ndim(v) == 1 else np.asarray(v, float)
    inv = np.linalg.inv(cov + tau2 * np.eye(len(y)))
    ones = np.ones(len(y))
    mean = (ones @ inv @ y) / (ones @ inv @ ones)
    r = y - mean
    return float(r @ inv @ r)


def heterogeneity(y, v, level: float = 1 - ALPHA) -> Heterogeneity:
    """tau from per-domain effects ``y`` with sampling variances (or covariance) ``v``:
    Paule-Mandel point, Q-profile interval (the tau^2 at which Q meets the chi-square quantiles,
    k - 1 df; the variances are treated as known, though estimated from the seeds)."""
    y, v = np.asarray(y, float), np.asarray(v, float)
    k = len(y)
    scale = float(np.max(np.diag(v) if v.ndim == 2 else v))

    def solve(target: float) -> float:
        if _q(0.0, y, v) <= target:
            return 0.0
        hi = max(1e-8, float(np.var(y)) * 10 + scale * 10)
        while _q(hi, y, v) > target:
            hi *= 10
        return float(optimize.brentq(lambda t: _q(t, y, v) - target, 0.0, hi))

    point = solve(k - 1.0)
    lo = solve(stats.chi2.ppf(1 - (1 - level) / 2, k - 1))
    hi = solve(stats.chi2.ppf((1 - level) / 2, k - 1))
    return Heterogeneity(np.sqrt(point), np.sqrt(lo), np.sqrt(hi), _q(0.0, y, v), k)


VERDICTS = ("supported", "contradicted", "equivalent", "inconclusive")


def holm_family(primary, secondary) -> tuple[np.ndarray, np.ndarray]:
    """Holm over every hypothesis a table tests: each row's claim (``primary``) and the one
    its opposite verdict rests on (``secondary``: equivalence, "beats", "near", "differ"), one
    family, so every verdict word is family-wise controlled. Returns both adjusted."""
    primary, secondary = np.asarray(primary, float), np.asarray(secondary, float)
    adjusted = holm(np.concatenate([primary, secondary]))
    return adjusted[: len(primary)], adjusted[len(primary) :]


def interval_level(p: float, p_adjusted: float) -> float:
    """The level of the interval that agrees with an adjusted p: alpha * p / p_adjusted (a t
    interval at it excludes the null exactly when p_adjusted < alpha)."""
    if not (np.isfinite(p) and np.isfinite(p_adjusted)) or p_adjusted <= 0:
        return float("nan")
    return float(min(ALPHA, ALPHA * p / p_adjusted))


def difference_verdict(est: Estimate, p_adjusted: float, p_tost_adjusted: float) -> str:
    """The verdict on "a beats b" from its difference: supported / contradicted when the
    adjusted p of no difference clears ``ALPHA`` (by the effect's sign), equivalent when the
    adjusted p of the two one-sided tests against the margin does, inconclusive otherwise."""
    if p_adjusted < ALPHA:
        return "supported" if est.effect > 0 else "contradicted"
    return "equivalent" if p_tost_adjusted < ALPHA else "inconclusive"
