"""Each claim's estimate from the stored runs (torch-free): paired differences over seeds, the
Amazon domains' spread, the axes' comparisons, coefficient distances and movements."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from helpers.report.claim_registry import CBV, Claim
from helpers.report.comparisons import Paired, run_table
from helpers.report.inference import Estimate, estimate, heterogeneity
from helpers.report.one_class import ONE_CLASS
from helpers.spec.experiments import load_experiment

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
        return {"main": _embedding_focus(claim, coefficients)}
    if claim.scope == "axis":
        return _axis(claim, axes, paired)
    if claim.scope == "amazon":
        return {
            "main": _consistency(claim, paired, [e for e in exps if e.startswith(AMAZON_PREFIX)])
        }
    out = {"main": paired.compare(exps, claim.a, claim.b, claim.deltas)}
    out["auroc"] = paired.compare(exps, claim.a, claim.b, claim.deltas, metric="auroc")
    for fam, members in families(exps).items():
        out[fam] = paired.compare(members, claim.a, claim.b, claim.deltas)
    out["sensitivity"] = paired.compare(exps, claim.a, claim.b, claim.deltas, skip=paired.flagged)
    return out


def _consistency(claim: Claim, paired: Paired, domains: list[str]):
    ests = [paired.compare([e], claim.a, claim.b, claim.deltas) for e in domains]
    ests = [e for e in ests if e.n > 1]
    if len(ests) < 2:
        return None
    y = np.array([e.effect for e in ests])
    v = np.array([e.se**2 for e in ests])
    return (heterogeneity(y, v), y, v)


def _embedding_focus(claim: Claim, coefficients: pd.DataFrame) -> Estimate | None:
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
    return estimate({e: g.to_numpy() for e, g in units.groupby(level="experiment")})


def _axis(claim: Claim, axes: dict, paired: Paired) -> dict:
    if claim.key == "III:largest":
        return _largest(claim, axes.get("train_size") or {}, paired)
    return _alpha_distance(claim, axes.get("alpha_rate") or {})


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
    return {"main": top.compare(top.experiments(), claim.a, claim.b), "n_train": axis_top}


def _alpha_distance(claim: Claim, tables: dict) -> dict:
    """Per seed at the usual rate (the axis's smallest: 1e-4 in the reference profile): mean
    over groups of |alpha after the budget - alpha fitted to convergence|."""
    metrics, coef = tables.get("metrics"), tables.get("coefficients")
    if metrics is None or coef is None or not len(coef):
        return {}
    runs = run_table(metrics)
    rates = {k: _coefficient_rate(t) for k, t in zip(runs["run_key"], runs["train"])}
    plain = runs[runs["method"] == claim.a[0]]["run_key"].map(rates).dropna()
    if plain.empty:
        return {}
    rate = float(plain.min())
    out = {}
    for method in (claim.a[0], f"{claim.a[0]}_free"):
        conv = f"{method}_converged"
        end = coef[coef["method"] == method].assign(rate=lambda f: f["run_key"].map(rates))
        end = end[np.isclose(end["rate"], rate)]
        done = coef[coef["method"] == conv]
        pairs = end.merge(done, on=["experiment", "delta", "seed", "group"], suffixes=("", "_c"))
        if pairs.empty:
            continue
        dist = (
            (pairs["alpha"] - pairs["alpha_c"])
            .abs()
            .groupby([pairs["experiment"], pairs["seed"]])
            .mean()
        )
        out["main" if method == claim.a[0] else "free"] = estimate(
            {e: g.to_numpy() for e, g in dist.groupby(level=0)}
        )
    return out


def _coefficient_rate(train_json: str) -> float:
    t = json.loads(train_json) or {}  # a source run has no training settings of its own
    return t["alpha_lr"] if t.get("alpha_lr") is not None else t.get("lr", float("nan"))
