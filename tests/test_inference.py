"""Inference with seeds as units, checked against the libraries on flat data and known answers."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_paired

from helpers.report.inference import (
    ALPHA,
    EXACT_UNITS,
    difference_verdict,
    estimate,
    heterogeneity,
    holm,
    holm_family,
    interval_level,
    sign_flip,
    tost,
)
from helpers.report.resampling import ExampleDraws, RunValues, auroc


def test_one_stratum_without_test_sampling_is_the_one_sample_t_test():
    x = np.random.default_rng(0).normal(0.02, 0.03, 10)
    est = estimate({"e": x})
    ref = stats.ttest_1samp(x, 0.0)
    ci = ref.confidence_interval(0.95)
    assert est.effect == pytest.approx(x.mean())
    assert est.df == pytest.approx(9)
    assert est.p_value() == pytest.approx(ref.pvalue)
    assert est.interval() == pytest.approx((ci.low, ci.high))
    one_sided = stats.ttest_1samp(x, 0.01, alternative="greater").pvalue
    assert est.p_value(0.01, side=+1) == pytest.approx(one_sided)


def test_few_units_use_the_exact_sign_flip_test_as_scipy_computes_it():
    x = np.array([0.011, 0.004, 0.023, -0.002, 0.017])
    assert len(x) <= EXACT_UNITS
    ref = stats.permutation_test(
        (x,), np.mean, permutation_type="samples", n_resamples=np.inf, alternative="two-sided"
    )
    est = estimate({"e": x})
    assert est.exact and est.p_value() == pytest.approx(ref.pvalue)
    # three positive seeds cannot go below 2 / 2^3: the floor the old table hid
    assert sign_flip(np.array([1.6e-4, 0.4e-4, 2.3e-4])) == pytest.approx(0.25)
    greater = stats.permutation_test(
        (x,), np.mean, permutation_type="samples", n_resamples=np.inf, alternative="greater"
    )
    assert est.p_value(0.0, side=+1) == pytest.approx(greater.pvalue)


def test_tost_on_flat_data_is_statsmodels_ttost():
    rng = np.random.default_rng(1)
    x = rng.normal(0.001, 0.01, 24)
    est = estimate({"e": x})
    p, _, _ = ttost_paired(x, np.zeros_like(x), -0.01, 0.01)
    assert tost(est, 0.01) == pytest.approx(p)
    assert tost(est, 0.01) < 0.05  # equivalent: a true zero, a tight design
    assert tost(estimate({"e": x + 0.02}), 0.01) > 0.5  # a true 0.02 is not equivalent


def test_holm_is_statsmodels_over_both_tests_of_every_row():
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.005])
    finite = p[np.isfinite(p)]
    expected = multipletests(finite, method="holm")[1]
    got = holm(p)
    assert np.isnan(got[2]) and np.allclose(got[np.isfinite(p)], expected)
    other = np.array([0.5, 0.001, np.nan, 0.2, 0.9])  # the opposite verdicts' tests
    own, opposite = holm_family(p, other)
    both = np.concatenate([p, other])
    ref = multipletests(both[np.isfinite(both)], method="holm")[1]
    assert np.allclose(np.concatenate([own, opposite])[np.isfinite(both)], ref)
    # a p of 0.04 alone would pass; among eight tests it does not
    assert opposite[1] < ALPHA and own[1] > ALPHA


def test_the_shown_interval_agrees_with_the_holm_verdict():
    rng = np.random.default_rng(7)
    ests = [estimate({"e": rng.normal(mu, 0.02, 12)}) for mu in (0.016, 0.017, 0.0)]
    p = np.array([e.p_value() for e in ests])
    adjusted = holm(p)
    for est, raw, adj in zip(ests, p, adjusted):
        low, high = est.interval(interval_level(raw, adj))
        assert (low > 0 or high < 0) == (adj < ALPHA)


def test_a_one_sided_bound_clears_the_margin_exactly_when_its_test_does():
    rng = np.random.default_rng(10)
    for mu in np.linspace(0.0, 0.04, 9):
        est = estimate({"e": rng.normal(mu, 0.02, 12)})
        for level in (0.05, 0.01):
            low, high = est.bound(level, +1)
            assert high == np.inf
            assert (low > 0.01) == (est.p_value(0.01, side=+1) < level)
            _, upper = est.bound(level, -1)
            assert (upper < 0.01) == (est.p_value(0.01, side=-1) < level)


def test_no_variance_gives_the_two_sided_p_of_its_sign():
    est = estimate({"e": np.full(8, 0.03)})
    assert est.p_value() == 0.0 and est.p_value(0.03) == 1.0


def test_verdicts_follow_the_adjusted_tests():
    up = estimate({"e": np.array([0.02, 0.03, 0.025, 0.028, 0.022, 0.031])})
    down = estimate({"e": -np.array([0.02, 0.03, 0.025, 0.028, 0.022, 0.031])})
    assert difference_verdict(up, 0.01, 1.0) == "supported"
    assert difference_verdict(down, 0.01, 1.0) == "contradicted"
    assert difference_verdict(up, 0.2, 0.01) == "equivalent"
    assert difference_verdict(up, 0.2, 0.2) == "inconclusive"


def test_two_strata_have_welchs_degrees_of_freedom_as_scipy_computes_them():
    rng = np.random.default_rng(8)
    a, b = rng.normal(0.0, 0.01, 7), rng.normal(0.0, 0.04, 4)
    est = estimate({"a": a, "b": -b})  # the df of a mean of two strata is Welch's
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert est.df == pytest.approx(ref.df)
    assert est.effect == pytest.approx((a.mean() - b.mean()) / 2)
    assert est.var_seed == pytest.approx((a.var(ddof=1) / 7 + b.var(ddof=1) / 4) / 4)


def test_experiments_sharing_source_models_are_one_unit_per_seed():
    rng = np.random.default_rng(9)
    shared = rng.normal(0.02, 0.03, 10)  # each seed's source model moves both experiments
    x = pd.Series(shared + rng.normal(0, 0.002, 10), index=range(10))
    y = pd.Series(shared + rng.normal(0, 0.002, 10), index=range(10))
    z = pd.Series(rng.normal(0.0, 0.03, 10), index=range(10))
    flat = estimate({"x": x, "y": y, "z": z})
    clustered = estimate({"x": x, "y": y, "z": z}, clusters={"x": "A", "y": "A", "z": "z"})
    assert clustered.effect == pytest.approx(flat.effect)  # the same experiments, weighted
    assert clustered.n == 20 and flat.n == 30  # 10 seeds of A, 10 of z
    assert clustered.var_seed > 1.5 * flat.var_seed  # the shared part is no longer averaged
    one = estimate({"x": x, "y": y}, clusters={"x": "A", "y": "A"})
    ref = stats.ttest_1samp((x + y) / 2, 0.0)
    assert one.p_value() == pytest.approx(ref.pvalue) and one.df == pytest.approx(9)


def test_a_single_seed_stratum_is_left_out_not_counted_without_variance():
    est = estimate({"a": np.full(6, 0.015) + np.arange(6) * 1e-3, "b": np.array([0.2])})
    assert est.dropped == 1 and est.n == 6
    assert est.effect == pytest.approx(0.0175)


def test_the_exact_test_weighs_strata_as_the_effect_does_and_knows_its_floor():
    a, b = np.array([0.01, 0.03, 0.02]), np.array([-0.2, -0.1])  # 3 and 2 seeds
    est = estimate({"a": a, "b": b})
    assert est.exact and est.effect == pytest.approx((a.mean() + b.mean()) / 2)
    w = np.r_[np.full(3, 1 / 6), np.full(2, 1 / 4)]
    ref = stats.permutation_test(
        (np.r_[a, b],),
        lambda x, axis=-1: np.tensordot(x, w, axes=([axis], [0])),
        permutation_type="samples",
        n_resamples=np.inf,
    )
    assert est.p_value() == pytest.approx(ref.pvalue)
    assert est.detectable(0.05) == np.inf  # 2 / 2^5 = 0.0625: no effect reaches 0.05
    assert np.isfinite(estimate({"a": np.arange(6.0)}).detectable(0.05))


def test_strata_weigh_equally_and_their_variances_add():
    a, b = np.array([0.1, 0.2, 0.3]), np.array([0.0, 0.0, 0.1, 0.1, 0.2])
    est = estimate({"a": a, "b": b})
    assert est.effect == pytest.approx((a.mean() + b.mean()) / 2)
    parts = [a.var(ddof=1) / (4 * 3), b.var(ddof=1) / (4 * 5)]
    assert est.var_seed == pytest.approx(sum(parts))
    ws = sum(parts) ** 2 / (parts[0] ** 2 / 2 + parts[1] ** 2 / 4)
    assert est.df == pytest.approx(ws)
    boot = np.random.default_rng(0).normal(0, 0.01, 4000)
    with_test = estimate({"a": a, "b": b}, boot)
    assert with_test.var_test == pytest.approx(boot.var(ddof=1))
    assert with_test.se > est.se  # test sampling widens, never narrows


def test_heterogeneity_known_answers():
    v = np.full(3, 0.01**2)
    same = heterogeneity([0.02, 0.02, 0.02], v)
    assert same.tau == 0 and same.low == 0
    assert same.p_below(0.03, np.full(3, 0.02), v) < 0.05  # agree well within a 0.03 margin
    y = np.array([0.0, 0.05, 0.10])
    # equal sampling variances: the Paule-Mandel tau^2 is the sample variance less v, and the
    # Q-profile bounds are S / chi2 quantiles less v (S: the sum of squared deviations)
    spread = heterogeneity(y, v)
    assert spread.tau == pytest.approx(np.sqrt(y.var(ddof=1) - v[0]))
    squares = ((y - y.mean()) ** 2).sum()
    low = squares / stats.chi2.ppf(0.975, 2) - v[0]
    high = squares / stats.chi2.ppf(0.025, 2) - v[0]
    assert spread.low == pytest.approx(np.sqrt(low))
    assert spread.high == pytest.approx(np.sqrt(high))
    assert spread.p_above(0.01, y, v) < 0.05 and spread.low > 0.01
    # coverage of a true tau = 0 by the 95% Q-profile interval
    rng = np.random.default_rng(2)
    covered = [heterogeneity(rng.normal(0, 0.01, 3), v).low == 0 for _ in range(400)]
    assert 0.92 < np.mean(covered) <= 1.0


def test_heterogeneity_counts_the_domains_covariance():
    y = np.array([0.0, 0.03, 0.06])
    v = np.full(3, 0.015**2)
    diagonal = heterogeneity(y, np.diag(v))
    assert diagonal.tau == pytest.approx(heterogeneity(y, v).tau)  # a diagonal matrix: the same
    # domains that share a source model move together: their differences are measured better,
    # so the same spread is more heterogeneity than independent errors would say
    shared = np.diag(v) + 0.8 * 0.015**2 * (np.ones((3, 3)) - np.eye(3))
    correlated = heterogeneity(y, shared)
    assert correlated.tau > diagonal.tau and correlated.q > diagonal.q

    def whitened_q(cov):  # Q as weighted least squares after whitening, computed apart
        chol = np.linalg.cholesky(cov)
        ones, yw = np.linalg.solve(chol, np.ones(3)), np.linalg.solve(chol, y)
        mean = np.linalg.lstsq(ones[:, None], yw, rcond=None)[0]
        return float(((yw - ones * mean) ** 2).sum())

    assert correlated.q == pytest.approx(whitened_q(shared))
    # the Paule-Mandel tau^2 is where Q falls to its expectation, k - 1
    assert whitened_q(shared + correlated.tau**2 * np.eye(3)) == pytest.approx(2.0)


def pool(n_pos: int, n_neg: int, weight: float | None = None) -> pd.DataFrame:
    ids = [f"x{i:04d}" for i in range(n_pos + n_neg)]
    frame = pd.DataFrame({"id": ids, "label": [1] * n_pos + [0] * n_neg})
    return frame if weight is None else frame.assign(weight=weight)


def test_the_test_resampling_matches_scipy_on_one_class_and_the_formula_on_two():
    # one class: accuracy is a plain mean of correct answers, as scipy's bootstrap sees it
    frame = pool(400, 0)
    correct = (np.random.default_rng(3).random(400) < 0.7).astype(int)
    preds = frame.assign(source="p", pred=correct)  # label 1: correct when pred is 1
    draws = ExampleDraws({"p": frame}, n_draws=4000)
    point, boot = RunValues(draws, preds, 2).metric("accuracy", {"p": 1.0})
    ref = stats.bootstrap((correct,), np.mean, n_resamples=4000, random_state=0)
    assert point == pytest.approx(correct.mean())
    assert boot.std(ddof=1) == pytest.approx(ref.standard_error, rel=0.08)
    # two classes resampled within class: the stratified variance of accuracy
    frame = pool(100, 300)
    rng = np.random.default_rng(4)
    labels = frame["label"].to_numpy()
    pred = np.where(rng.random(400) < 0.8, labels, 1 - labels)
    preds = frame.assign(source="p", pred=pred)
    _, boot = RunValues(ExampleDraws({"p": frame}, 4000), preds, 2).metric("accuracy", {"p": 1.0})
    acc = [(pred[labels == c] == c).mean() for c in (0, 1)]
    sizes = [300, 100]
    var = sum((n / 400) ** 2 * a * (1 - a) / n for a, n in zip(acc, sizes))
    assert boot.var(ddof=1) == pytest.approx(var, rel=0.1)


def test_auroc_is_sklearns_with_weights_and_ties():
    rng = np.random.default_rng(5)
    y = rng.random(300) < 0.3
    s = np.round(rng.random(300) * 4) / 4 + y * 0.2  # coarse scores: many ties
    w = rng.uniform(0.5, 3, 300)
    assert auroc(s, y, w[None, :])[0] == pytest.approx(roc_auc_score(y, s, sample_weight=w))


def test_capped_pools_weigh_back_to_the_whole_pool():
    from helpers.data.mixing import capped_weights

    labels = np.array([0] * 2356 + [1] * 133)
    w = capped_weights(labels, 1000, "davidson")
    assert (w > 0).sum() == 1000 and (w[labels == 1] == 1).all()  # every rare example kept
    assert w[labels == 0].sum() == pytest.approx(2356) and w.sum() == pytest.approx(len(labels))
    assert np.array_equal(w, capped_weights(labels, 1000, "davidson"))  # the same every run
    assert not np.array_equal(w, capped_weights(labels, 1000, "other pool"))
    assert (capped_weights(labels, None, "davidson") == 1).all()
    # right on every rare example, wrong on most of the common class: weighted and unweighted
    # accuracy of the kept examples differ by far more than any tolerance, and the point is
    # exactly the weighted one
    rng = np.random.default_rng(6)
    pred = np.where(labels == 1, 1, (rng.random(len(labels)) < 0.8).astype(int))
    frame = pd.DataFrame({"id": [f"x{i:05d}" for i in range(len(labels))], "label": labels})
    kept = frame.assign(weight=w)[w > 0]
    preds = kept.assign(source="p", pred=pred[w > 0])
    draws = ExampleDraws({"p": kept}, 500)
    point, _ = RunValues(draws, preds, 2).metric("accuracy", {"p": 1.0})
    correct = (preds["pred"] == preds["label"]).to_numpy()
    weighted = np.average(correct, weights=preds["weight"])
    assert abs(weighted - correct.mean()) > 0.05
    assert point == pytest.approx(weighted)
