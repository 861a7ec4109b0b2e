"""Mixture sampling: exact counts, stratification, determinism, disjointness, clear errors."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.data.corpora import load_corpus
from helpers.data.mixing import allocate, check_label_spaces, sample_mixture
from helpers.errors import UserError


def pool(name, n, pos_share, start=0):
    labels = (np.arange(n) < int(n * pos_share)).astype(int)
    return pd.DataFrame(
        {
            "id": [f"{name}{i + start}" for i in range(n)],
            "text": [f"text {name} {i}" for i in range(n)],
            "label": labels,
            "source": name,
        }
    )


@settings(max_examples=60, deadline=None)
@given(
    delta=st.floats(0, 1),
    n=st.integers(1, 150),
    seed=st.integers(0, 2**31),
    share_a=st.floats(0.05, 0.95),
    share_b=st.floats(0.05, 0.95),
)
def test_exact_counts_and_stratification(delta, n, seed, share_a, share_b):
    a, b = pool("a", 200, share_a), pool("b", 180, share_b)
    mix = sample_mixture(a, b, delta, n, seed)
    n_b = int(round(delta * n))
    assert len(mix) == n and mix["id"].is_unique
    assert (mix["source"] == "b").sum() == n_b
    for name, src, k in (("a", a, n - n_b), ("b", b, n_b)):
        part = mix[mix["source"] == name]
        # Each corpus keeps its own label proportions to within one example.
        expected = k * src["label"].mean()
        assert abs(part["label"].sum() - expected) <= 1
    assert mix.equals(sample_mixture(a, b, delta, n, seed))  # deterministic


def test_allocate_is_exact():
    assert allocate(10, np.array([1.0, 1.0, 1.0])).sum() == 10
    assert list(allocate(5, np.array([3.0, 1.0]))) == [4, 1]


def test_streams_differ_and_seeds_differ():
    a, b = pool("a", 300, 0.5), pool("b", 300, 0.5)
    assert not sample_mixture(a, b, 0.5, 50, 0, "train")["id"].equals(
        sample_mixture(a, b, 0.5, 50, 0, "test")["id"]
    )
    assert not sample_mixture(a, b, 0.5, 50, 0)["id"].equals(sample_mixture(a, b, 0.5, 50, 1)["id"])


@pytest.mark.parametrize("delta", [-0.1, 1.5, float("nan"), "half"])
def test_delta_out_of_range(delta):
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        sample_mixture(pool("a", 10, 0.5), pool("b", 10, 0.5), delta, 5, 0)


def test_too_large_n_says_what_the_pools_hold():
    with pytest.raises(UserError, match="holds 10; lower n to at most 20"):
        sample_mixture(pool("a", 10, 0.5), pool("b", 10, 0.5), 0.5, 30, 0)


def test_corpus_mixtures_are_disjoint_across_splits(fixture_data):
    frames = {}
    for split in ("train", "validation", "test"):
        a = load_corpus("amazon_books", split, "sentiment", fixture_data)
        b = load_corpus("amazon_dvd", split, "sentiment", fixture_data)
        check_label_spaces(a, b)
        frames[split] = sample_mixture(a.frame, b.frame, 0.3, 40, 0, split)
        assert set(frames[split]["source"]) == {"amazon_books", "amazon_dvd"}
    ids = [set(f["id"]) for f in frames.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])


def test_label_spaces_must_match(fixture_data):
    a = load_corpus("amazon_books", "test", "sentiment", fixture_data)
    b = load_corpus("davidson", "test", "hate", fixture_data)
    with pytest.raises(UserError, match="different label spaces"):
        check_label_spaces(a, b)
