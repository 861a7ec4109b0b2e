"""Inference with seeds as the units: effects, intervals, tests and verdicts (torch-free).

A unit is one seed of one experiment: its source model, its data samples and its fine-tuning
stream. A claim's effect is the mean over units of a paired difference (each unit's computed on
the whole, or capped and weighted, test pools), averaged over experiments with equal weight (the
experiments are strata). Its variance has two parts, added:

- between seeds: the stratified sample variance of the unit differences, ``sum_e s_e^2 / (E^2
  n_e)`` (experiments are fixed strata, seeds random within them);
- test sampling: the finite test pools are shared by every seed, so their sampling error does
  not average out over seeds; its variance is that of the effect over test-example bootstrap
  replicates with the seeds held (``helpers.report.resampling``). Counting it in full beside the
  seeds' variance, which already holds each seed's own share of it, errs on the wide side.

The interval and p-value are t-based, with Welch-Satterthwaite degrees of freedom from the strata
(the test part counted as known). With five units or fewer the p-value is the exact sign-flip
permutation test over units instead (every sign pattern enumerated; it cannot go below
2 / 2^n) and the report says so. Multiplicity: Holm over the claims table (statsmodels), each
row's interval at the level Holm tested it at. Equivalence and "no better than": one-sided t
tests against the claim's margin (TOST). Consistency across domains: the between-domain standard
deviation of the effect, tau, with a Q-profile interval that counts each domain's own sampling
error (random-effects meta-analysis: Viechtbauer 2007).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats
from statsmodels.stats.multitest import multipletests

ALPHA = 0.05
EXACT_UNITS = 5  # at most this many units: the exact sign-flip test, not the t distribution
POWER = 0.8  # of "smallest detectable"


@dataclass(frozen=True)
class Estimate:
    """A mean difference over units with its two variance parts and degrees of freedom."""

    effect: float
    var_seed: float
    var_test: float
    df: float
    units: np.ndarray  # the unit differences (for the exact test)
    n_strata: int

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
        """p of H0: effect = null (side 0, two-sided), <= null (side +1) or >= null (side -1)."""
        if self.n < 2 or not np.isfinite(self.se):
            return float("nan")
        if self.exact:
            return sign_flip(self.units - null, side)
        if self.se == 0:
            return 1.0 if self.effect == null or side * (self.effect - null) <= 0 else 0.0
        t = (self.effect - null) / self.se
        if side == 0:
            return float(2 * stats.t.sf(abs(t), self.df))
        return float(stats.t.sf(side * t, self.df))

    def detectable(self, alpha: float = ALPHA) -> float:
        """The smallest true effect this design finds with 80% power at level ``alpha``."""
        if self.n < 2:
            return float("nan")
        return float((stats.t.ppf(1 - alpha / 2, self.df) + stats.t.ppf(POWER, self.df)) * self.se)


def estimate(units: dict[str, np.ndarray], boot: np.ndarray | None = None) -> Estimate:
    """The stratified mean of unit differences (stratum -> per-seed differences) and its
    variance. ``boot``: the effect on each test-example replicate (seeds held), or None."""
    strata = {k: np.asarray(v, float)[np.isfinite(v)] for k, v in units.items()}
    strata = {k: v for k, v in strata.items() if len(v)}
    if not strata:
        return Estimate(float("nan"), float("nan"), 0.0, float("nan"), np.empty(0), 0)
    e = len(strata)
    effect = float(np.mean([v.mean() for v in strata.values()]))
    parts = [v.var(ddof=1) / (e**2 * len(v)) if len(v) > 1 else np.nan for v in strata.values()]
    var_seed = float(np.nansum(parts)) if np.isfinite(parts).any() else float("nan")
    var_test = float(np.nanvar(boot, ddof=1)) if boot is not None and len(boot) > 1 else 0.0
    dof = [(p**2) / (len(v) - 1) for p, v in zip(parts, strata.values()) if len(v) > 1]
    df = (var_seed + var_test) ** 2 / sum(dof) if dof and sum(dof) > 0 else float("inf")
    df = max(df, min(len(v) - 1 for v in strata.values()) or 1)
    return Estimate(effect, var_seed, var_test, df, np.concatenate(list(strata.values())), e)


def sign_flip(diffs: np.ndarray, side: int = 0) -> float:
    """Exact sign-flip permutation p of mean(diffs) = 0 (all 2^n patterns; scipy agrees)."""
    diffs = np.asarray(diffs, float)
    observed = diffs.mean()
    flips = np.array(list(itertools.product((1.0, -1.0), repeat=len(diffs))))
    means = flips @ diffs / len(diffs)
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


def holm_levels(p_values) -> np.ndarray:
    """The level Holm tests each row at: alpha / (m - rank + 1), rank by raw p (NaN: NaN)."""
    p = np.asarray(p_values, float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    for rank, j in enumerate(order):
        out[j] = ALPHA / (len(order) - rank)
    return out


@dataclass(frozen=True)
class Heterogeneity:
    """Between-domain spread of an effect: tau with a Q-profile interval, and its tests."""

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
    """The generalised Q statistic at between-domain variance ``tau2``."""
    w = 1.0 / (v + tau2)
    mean = (w * y).sum() / w.sum()
    return float((w * (y - mean) ** 2).sum())


def heterogeneity(y, v, level: float = 1 - ALPHA) -> Heterogeneity:
    """tau from per-domain effects ``y`` with sampling variances ``v``: Paule-Mandel point,
    Q-profile interval (the tau^2 at which Q meets the chi-square quantiles, k - 1 df)."""
    y, v = np.asarray(y, float), np.asarray(v, float)
    k = len(y)

    def solve(target: float) -> float:
        if _q(0.0, y, v) <= target:
            return 0.0
        hi = max(1e-8, float(np.var(y)) * 10 + v.max() * 10)
        while _q(hi, y, v) > target:
            hi *= 10
        return float(optimize.brentq(lambda t: _q(t, y, v) - target, 0.0, hi))

    point = solve(k - 1.0)
    lo = solve(stats.chi2.ppf(1 - (1 - level) / 2, k - 1))
    hi = solve(stats.chi2.ppf((1 - level) / 2, k - 1))
    return Heterogeneity(np.sqrt(point), np.sqrt(lo), np.sqrt(hi), _q(0.0, y, v), k)


VERDICTS = ("supported", "contradicted", "equivalent", "inconclusive")


def difference_verdict(est: Estimate, p_adjusted: float, level: float, margin: float) -> str:
    """The verdict on "a beats b" from its difference: supported / contradicted when the
    adjusted p clears ``ALPHA`` (by the effect's sign), equivalent when the difference lies
    within +-margin at ``level`` (TOST), inconclusive otherwise."""
    if p_adjusted < ALPHA:
        return "supported" if est.effect > 0 else "contradicted"
    return "equivalent" if tost(est, margin) < level else "inconclusive"
