"""Shifted data sets: p_delta = (1 - delta) p_A + delta p_B as exact, seeded, stratified samples.

A mixture of size n takes round(delta * n) examples from B and the rest from A. Within each
corpus the sample keeps that corpus's own label proportions (largest-remainder allocation), so the
mixture's label distribution is exactly the delta-mixture of A's and B's. Train, validation and
test mixtures are drawn from the corpora's own disjoint splits, so they are disjoint too; every
row keeps the corpus it came from in ``source``.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from helpers.errors import UserError


def check_delta(delta: float) -> float:
    """Return delta as a float, or raise when it is outside [0, 1]."""
    try:
        delta = float(delta)
    except (TypeError, ValueError):
        raise UserError(f"delta must be a number in [0, 1], got {delta!r}") from None
    if not 0.0 <= delta <= 1.0 or np.isnan(delta):
        raise UserError(
            f"delta must lie in [0, 1] (0 = all corpus A, 1 = all corpus B), got {delta}"
        )
    return delta


def allocate(total: int, weights: np.ndarray) -> np.ndarray:
    """Split an integer total proportionally to weights, exactly (largest remainder)."""
    share = total * weights / weights.sum()
    counts = np.floor(share).astype(int)
    short = total - counts.sum()
    counts[np.argsort(-(share - counts), kind="stable")[:short]] += 1
    return counts


def stratified_sample(pool: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Draw exactly n rows without replacement, keeping the pool's label proportions."""
    labels, sizes = np.unique(pool["label"].to_numpy(), return_counts=True)
    picks = []
    for label, k in zip(labels, allocate(n, sizes.astype(float))):
        rows = np.flatnonzero(pool["label"].to_numpy() == label)
        picks.append(rng.choice(rows, size=k, replace=False))
    return pool.iloc[np.sort(np.concatenate(picks))]


def split_counts(n: int, delta: float) -> tuple[int, int]:
    """How many examples come from A and from B in a mixture of size n."""
    n_b = int(round(check_delta(delta) * n))
    return n - n_b, n_b


def sample_mixture(
    pool_a: pd.DataFrame, pool_b: pd.DataFrame, delta: float, n: int, seed: int, stream: str = ""
) -> pd.DataFrame:
    """An exact, seeded, label-stratified sample of size n from (1 - delta) A + delta B.

    ``stream`` separates independent draws with the same seed (e.g. the split name).
    """
    if n < 1:
        raise UserError(f"mixture size n must be at least 1, got {n}")
    n_a, n_b = split_counts(n, delta)
    for name, pool, need in (("A", pool_a, n_a), ("B", pool_b, n_b)):
        if need > len(pool):
            raise UserError(
                f"mixture needs {need} examples from corpus {name} "
                f"({pool['source'].iat[0] if len(pool) else 'empty'}), but its pool "
                f"holds {len(pool)}; lower n to at most "
                f"{_max_n(len(pool_a), len(pool_b), delta)} for delta={delta}"
            )
    # One generator per (seed, delta, stream): reproducible, and independent across streams.
    rng = np.random.default_rng([seed, int(round(delta * 1e6)), zlib.crc32(stream.encode())])
    parts = [stratified_sample(pool, k, rng) for pool, k in ((pool_a, n_a), (pool_b, n_b)) if k]
    mixed = pd.concat(parts, ignore_index=True)
    return mixed.iloc[rng.permutation(len(mixed))].reset_index(drop=True)


def _max_n(size_a: int, size_b: int, delta: float) -> int:
    """The largest n whose mixture both pools can supply (for error messages)."""
    best = 0
    for n in range(1, size_a + size_b + 1):
        n_a, n_b = split_counts(n, delta)
        if n_a <= size_a and n_b <= size_b:
            best = n
    return best


def check_label_spaces(a, b) -> None:
    """Raise unless two corpora share one label space (same names in the same order)."""
    if tuple(a.label_names) != tuple(b.label_names):
        raise UserError(
            f"corpora {a.name!r} and {b.name!r} have different label spaces "
            f"{tuple(a.label_names)} vs {tuple(b.label_names)}; load both with the "
            f"same task so they map into one label space"
        )


def capped_weights(labels: np.ndarray, cap: int | None, stream: str) -> np.ndarray:
    """Inclusion weights of a test pool capped at ``cap`` examples (the same for every run).

    The cap is shared out over the classes smallest first, each taking what it holds up to an
    equal share of what is left, so every example of a rare class is kept; within a class the
    kept examples are a seeded simple random sample. A kept example weighs its class's size
    over its kept count (others 0), so weighted counts estimate the whole pool's without bias.
    Without a cap, or a pool within it, every weight is 1.
    """
    labels = np.asarray(labels)
    weights = np.ones(len(labels))
    if cap is None or len(labels) <= cap:
        return weights
    rng = np.random.default_rng([zlib.crc32(f"test-cap:{stream}".encode()), cap])
    classes, sizes = np.unique(labels, return_counts=True)
    left, kept = cap, {}
    for i, c in enumerate(classes[np.argsort(sizes, kind="stable")]):
        size = int(sizes[classes == c][0])
        kept[c] = min(size, left // (len(classes) - i))
        left -= kept[c]
    weights[:] = 0.0
    for c in classes:
        rows = np.flatnonzero(labels == c)
        chosen = rng.choice(rows, size=kept[c], replace=False)
        weights[chosen] = len(rows) / kept[c]
    return weights
