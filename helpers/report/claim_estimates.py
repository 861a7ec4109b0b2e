"""Each claim's estimate from the stored runs (torch-free): paired differences over seeds, the
Amazon domains' spread, the axes' comparisons, coefficient distances and movements."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from helpers.config.experiments import load_experiment
from helpers.report.claim_registry import CBV, Claim
from helpers.report.comparisons import Paired, run_table
from helpers.report.inference import Estimate, estimate, heterogeneity
from helpers.report.one_class import ONE_CLASS

AMAZON_PREFIX = "books_to_"


def one_class_cells(metrics: pd.DataFrame, share: float = ONE_CLASS) -> set[tuple]:
    """(experiment, delta) cells where most runs answer one class (a sensitivity check)."""
    test = metrics[(metrics["split"] == "test") & (metrics["metric"] == "top_class_share")]
    test = test[test["method"] != "source"]
    flagged = test.groupby(["experiment", "delta"])["value"].apply(lambda v: (v > share).mean())
    return {(e, float(d)) for (e, d), f in flagged.items() if f > 0.5}


def families(experiments) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in experiments:
        out.setdefault(load_experiment(e).group, []).append(e)
    return out


def estimates(claim: Claim, paired: Paired, axes: dict, coefficients) -> dict:
    """The claim's estimate under "main" and, where they apply, per task family, without the
    one-class cells ("sensitivity"), in AUROC, at the largest size ("n_train"), and without the
    study's normalisation ("free"). A consistency claim's "main" is (Heterogeneity, y, v)."""
    exps = paired.experiments()
    if claim.scope == "experiment":
        est = paired.compare([claim.experiment], claim.a, claim.b, claim.deltas, at=1.0)
        return {"main": est} if claim.experiment in exps else {}
    if claim.key == "III:embeddings":
        return {"main": _embedding_focus(claim, coefficients, paired.clusters)}
    if claim.scope == "axis":
        return _axis(claim, axes, paired)
    if claim.scope == "amazon":
        return {
            "main": _consistency(claim, paired, [e for e in exps if e.startswith(AMAZON_PREFIX)])
        }
    a, b = claim.a, claim.b
    if claim.form == "best":  # intersection-union: every winner against every other choice
        pairs = {(w, o): paired.compare(exps, (w,), (o,), claim.deltas) for w in a for o in b}
        testable = {k: e for k, e in pairs.items() if e.n > 1}
        if len(testable) < len(pairs):  # every pair must be tested, or the claim is not
            return {}
        (a, b), _ = max(testable.items(), key=lambda kv: kv[1].p_value(0.0, side=+1))
        a, b = (a,), (b,)  # the binding pair: its p is the test's
    out = {"main": paired.compare(exps, a, b, claim.deltas)}
    if claim.form == "best":
        out["pairs"] = testable
    out["auroc"] = paired.compare(exps, a, b, claim.deltas, metric="auroc")
    for fam, members in families(exps).items():
        out[fam] = paired.compare(members, a, b, claim.deltas)
    out["sensitivity"] = paired.compare(exps, a, b, claim.deltas, skip=paired.flagged)
    return out


def _consistency(claim: Claim, paired: Paired, domains: list[str]):
    """(Heterogeneity, y, V): the domains' effects and their covariance, seed-to-seed from
    the seeds all domains hold (the domains share each seed's source model) plus each domain's
    test-sampling variance (their B pools differ, so those errors are independent)."""
    found = {}
    for e in domains:
        est = paired.compare([e], claim.a, claim.b, claim.deltas)
        diffs, _ = paired.units(e, claim.a, claim.b, claim.deltas or [1.0])
        if est.n > 1:
            found[e] = (est, diffs)
    if len(found) < 2:
        return None
    y = np.array([est.effect for est, _ in found.values()])
    common = pd.concat([d for _, d in found.values()], axis=1).dropna()
    if len(common) < 3:  # no covariance to count: the domains' agreement cannot be judged
        return None
    # Cov(mean_i, mean_j) = s_ij n_shared / (n_i n_j): the seed covariance from the shared seeds;
    # each domain's own variance on its diagonal, then its test sampling
    n = np.array([len(d) for _, d in found.values()], float)
    cov = np.cov(common.to_numpy(), rowvar=False) * len(common) / np.outer(n, n)
    np.fill_diagonal(cov, [est.var_seed for est, _ in found.values()])
    v = cov + np.diag([est.var_test for est, _ in found.values()])
    return (heterogeneity(y, v), y, v)


def _by_seed(units: pd.Series) -> dict[str, pd.Series]:
    """An (experiment, seed)-indexed Series as experiment -> Series by seed."""
    return {e: g.droplevel(0) for e, g in units.groupby(level=0)}


def _embedding_focus(claim: Claim, coefficients: pd.DataFrame, clusters) -> Estimate | None:
    """Per (experiment, seed): |alpha_embeddings - start| minus the layers' mean, over deltas."""
    c = coefficients
    if len(c):  # the claims' units: every seed at the full shift
        c = c[(c["method"] == CBV) & c["delta"].isin(claim.deltas or c["delta"].unique())]
    if c is None or c.empty or "embeddings" not in set(c["group"]):
        return None
    moved = c.assign(moved=(c["alpha"] - 0.5).abs())
    layers = moved[moved["group"].str.startswith("layer.")]
    emb = moved[moved["group"] == "embeddings"].set_index("run_key")["moved"]
    per_run = emb - layers.groupby("run_key")["moved"].mean()
    runs = moved.drop_duplicates("run_key").set_index("run_key")
    frame = runs.assign(focus=per_run).dropna(subset=["focus"])
    units = frame.groupby(["experiment", "seed"])["focus"].mean()
    return estimate(_by_seed(units), clusters=clusters)


def _axis(claim: Claim, axes: dict, paired: Paired) -> dict:
    if claim.key == "III:largest":
        return _largest(claim, axes.get("train_size") or {}, paired)
    return _alpha_distance(claim, axes.get("alpha_rate") or {}, paired.clusters)


def _largest(claim: Claim, sizes: dict, paired: Paired) -> dict:
    """cbv - all at the largest training size of the axis, or of the main grid when that is
    the largest (the axis leaves the main grid's own size to the main grid's runs)."""
    metrics, preds = sizes.get("metrics"), sizes.get("predictions")
    if metrics is None or not len(metrics):
        return {}
    runs = run_table(metrics)
    axis_top = runs["n_train"].max()
    on_axis = sorted(set(runs["experiment"]))
    main = run_table(paired.metrics)
    main_top = main[main["experiment"].isin(on_axis)]["n_train"].max()
    delta = float(runs["delta"].max())
    if main_top >= axis_top:
        est = paired.compare(on_axis, claim.a, claim.b, [delta])
        return {"main": est, "n_train": main_top}
    keep = set(runs[runs["n_train"] == axis_top]["run_key"])
    top = Paired(metrics[metrics["run_key"].isin(keep)], preds, "macro_f1")
    top.clusters = paired.clusters  # the axis holds no source runs of its own
    return {"main": top.compare(top.experiments(), claim.a, claim.b), "n_train": axis_top}


def _alpha_distance(claim: Claim, tables: dict, clusters=None) -> dict:
    """Per seed at the usual rate (the axis's smallest: 1e-4 in the reference profile): mean
    over groups of |alpha after the budget - alpha fitted to convergence from that run's end
    point| ("main"; "free": without the study's normalisation), and what stopping there costs:
    test macro-F1 of the converged run minus the run's ("cost", "free cost")."""
    metrics, coef = tables.get("metrics"), tables.get("coefficients")
    if metrics is None or coef is None or not len(coef):
        return {}
    runs = run_table(metrics)
    rates = {k: _coefficient_rate(t) for k, t in zip(runs["run_key"], runs["train"])}
    plain = runs[runs["method"] == claim.a[0]]["run_key"].map(rates).dropna()
    if plain.empty:
        return {}
    rate = float(plain.min())
    configs = metrics.drop_duplicates("run_key").set_index("run_key")["config"]
    base = {k: json.loads(c).get("base_run") for k, c in configs.items()}
    test = metrics[(metrics["split"] == "test") & (metrics["metric"] == "macro_f1")]
    score = test.groupby("run_key")["value"].mean()  # a run's test macro-F1 at its delta
    out = {}
    for method in (claim.a[0], f"{claim.a[0]}_free"):
        conv = f"{method}_converged"
        end = coef[coef["method"] == method].assign(rate=lambda f: f["run_key"].map(rates))
        end = end[np.isclose(end["rate"], rate)]
        done = coef[coef["method"] == conv]
        done = done.assign(base=done["run_key"].map(base))  # the run each one converges from
        pairs = end.merge(
            done[["base", "group", "alpha", "run_key"]],
            left_on=["run_key", "group"],
            right_on=["base", "group"],
            suffixes=("", "_c"),
        )
        if pairs.empty:
            continue
        by = [pairs["experiment"], pairs["seed"]]
        dist = (pairs["alpha"] - pairs["alpha_c"]).abs().groupby(by).mean()
        name = "main" if method == claim.a[0] else "free"
        out[name] = estimate(_by_seed(dist), clusters=clusters)
        runs_c = pairs.drop_duplicates("run_key")
        cost = (
            (runs_c["run_key_c"].map(score) - runs_c["run_key"].map(score))
            .groupby([runs_c["experiment"], runs_c["seed"]])
            .mean()
        )
        out["cost" if name == "main" else "free cost"] = estimate(
            _by_seed(cost.dropna()), clusters=clusters
        )
    return out


def _coefficient_rate(train_json: str) -> float:
    t = json.loads(train_json) or {}  # a source run has no training settings of its own
    return t["alpha_lr"] if t.get("alpha_lr") is not None else t.get("lr", float("nan"))
