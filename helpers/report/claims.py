"""The poster's claims against the stored runs: one row each, from the claim registry.

Torch-free; reads only stored tables. Each row: the effect (a mean over seeds of paired
differences, a distance, or a spread), its number of units, 95% and Holm-level intervals, the
Holm-adjusted p-value of the claim's own test, the smallest effect the design detects at that
level, the margin, and one of four verdicts (``helpers.report.claim_registry`` says how each
form is decided; ``helpers.report.inference`` how the numbers are made). Beside the headline
(``beside``): the effect per task family, without the cells where most runs answer one class,
and in AUROC.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.report.claim_estimates import estimates, one_class_cells
from helpers.report.claim_registry import CLAIMS, Claim, degradation_claims
from helpers.report.comparisons import Paired
from helpers.report.inference import (
    ALPHA,
    Estimate,
    difference_verdict,
    holm_family,
    interval_level,
    tost,
)

# The direction of each form's own test, and of the test its opposite verdict rests on.
SIDE = {"better": 0, "best": +1, "no_better": -1, "farther": +1}
NOT_TESTABLE = "not testable here"


def registry(experiments) -> list[Claim]:
    """Every claim checked on these experiments, in the report's order."""
    return [*degradation_claims(experiments), *CLAIMS]


def claims(
    metrics: pd.DataFrame,
    predictions: pd.DataFrame,
    coefficients: pd.DataFrame | None = None,
    axes: dict | None = None,
    metric: str = "macro_f1",
    seed: int = 0,
) -> pd.DataFrame:
    """Every claim of the registry on the stored runs (numbers; ``claims_markdown`` shows them).

    Each row tests two hypotheses: the claim's own (``p_value``) and the one its opposite verdict
    rests on (``p_other``: equivalence for "better", "a beats b" for "no better", ...). All of
    them form one Holm family, so each verdict word is family-wise controlled at 0.05.
    ``axes``: the design axes' tables ({axis: {table: frame}}, ``analysis.axis_tables``).
    """
    paired = Paired(metrics, predictions, metric, seed)
    paired.flagged = one_class_cells(metrics)
    coefficients = coefficients if coefficients is not None else pd.DataFrame()
    rows, extras = [], []
    checked = registry(paired.experiments())
    for claim in checked:
        found = estimates(claim, paired, axes or {}, coefficients)
        rows.append(_row(claim, found))
        extras.append(found)
    table = pd.DataFrame(rows)
    table["p_holm"], table["p_other_holm"] = holm_family(table["p_value"], table["p_other"])
    tested = int(np.isfinite(table[["p_value", "p_other"]].to_numpy(float)).sum())
    for i, (claim, found) in enumerate(zip(checked, extras)):
        _decide(table, i, claim, found, ALPHA / max(tested, 1))
    return table


def _row(claim: Claim, found: dict) -> dict:
    main = found.get("main")
    row = dict(key=claim.key, claim=claim.text, form=claim.form, margin=claim.margin)
    row.update(compared=compared(claim), note=claim.note)
    nan = float("nan")
    if main is None or (isinstance(main, Estimate) and main.n < 2):
        n = 0 if main is None else main.n
        effect = main.effect if n else nan  # one unit: its value, but no test
        blank = dict(p_value=nan, p_other=nan, test=NOT_TESTABLE)
        return {**row, "units": n, "effect": effect, **blank}
    if isinstance(main, tuple):  # consistency: (Heterogeneity, y, V)
        het, y, v = main
        p, other = het.p_below(claim.margin, y, v), het.p_above(claim.margin, y, v)
        stats = dict(units=het.k, effect=het.tau, ci_low=het.low, ci_high=het.high)
        return {**row, **stats, "p_value": p, "p_other": other, "test": "Q-profile, k - 1 df"}
    low, high = main.interval()
    test = "exact sign-flip" if main.exact else f"t, {main.df:.0f} df"
    if claim.form == "better":
        p, other = main.p_value(0.0), tost(main, claim.margin)
    elif claim.form == "best":  # the binding pair's one-sided p; one of b beating one of a
        pairs = found.get("pairs", {}).values()  # (Bonferroni over the pairs)
        other = min(1.0, len(pairs) * min(e.p_value(0.0, side=-1) for e in pairs))
        p = main.p_value(0.0, side=+1)
    elif claim.form == "no_better":  # below +margin; against it: above +margin
        p, other = main.p_value(claim.margin, side=-1), main.p_value(claim.margin, side=+1)
    else:  # farther: above the margin; against it: within it
        p, other = main.p_value(claim.margin, side=+1), main.p_value(claim.margin, side=-1)
    return {
        **row,
        "units": main.n,
        "strata": main.n_strata,
        "effect": main.effect,
        "ci_low": low,
        "ci_high": high,
        "se": main.se,
        "p_value": p,
        "p_other": other,
        "test": test,
    }


def compared(claim: Claim) -> str:
    """What a claim compares, in words: side a minus side b, or the quantity it is about."""

    def side(s):
        return s if isinstance(s, str) else " + ".join(s) if len(s) > 1 else s[0]

    if claim.form in ("farther",):
        return f"{side(claim.a)}: alpha distance"
    if not claim.b:
        return side(claim.a)
    if claim.form == "best":
        return f"each of {', '.join(claim.a)} - each of {', '.join(claim.b)}"
    a, b = side(claim.a), side(claim.b)
    if isinstance(claim.a, tuple) and len(claim.a) > 1:
        a = f"mean({a})"
    if isinstance(claim.b, tuple) and len(claim.b) > 1:
        b = f"mean({b})"
    return f"{a} - {b}"


def _decide(table: pd.DataFrame, i: int, claim: Claim, found: dict, design: float) -> None:
    """The verdict of row ``i`` from its two Holm-adjusted p-values, the interval at the level
    that agrees with them, and the smallest effect detectable at the design level ``design``
    (alpha over the family's size: the strictest step Holm can take)."""
    row = table.loc[i]
    main = found.get("main")
    if not np.isfinite(row["p_value"]):
        table.loc[i, "verdict"] = NOT_TESTABLE
        return
    claimed = row["p_holm"] < ALPHA
    opposite = bool(np.isfinite(row["p_other_holm"]) and row["p_other_holm"] < ALPHA)
    if isinstance(main, tuple):
        table.loc[i, "detectable"] = np.nan
        verdict = "supported" if claimed else "contradicted" if opposite else "inconclusive"
        table.loc[i, "verdict"] = verdict
        return
    level = interval_level(row["p_value"], row["p_holm"])
    if np.isfinite(level) and not main.exact:  # an exact row's p is no t interval's
        side = SIDE[claim.form]
        low, high = main.interval(level) if side == 0 else main.bound(level, side)
        table.loc[i, ["holm_low", "holm_high"]] = [low, high]
    sides = 2 if claim.form == "better" else 1
    table.loc[i, "detectable"] = main.detectable(design, sides)
    if claim.form == "better":
        verdict = difference_verdict(main, row["p_holm"], row["p_other_holm"])
    else:
        verdict = "supported" if claimed else "contradicted" if opposite else "inconclusive"
    table.loc[i, "verdict"] = verdict
    _beside(table, i, found)


def _beside(table: pd.DataFrame, i: int, found: dict) -> None:
    """Per family, without one-class cells, in AUROC, and the claim's companions (an alpha
    distance's cost in macro-F1): effect and 95% interval strings."""
    for name, est in found.items():
        if name == "main" or not isinstance(est, Estimate) or est.n < 2:
            continue
        low, high = est.interval()
        table.loc[i, f"{name}"] = f"{est.effect:+.3f} [{low:+.3f}, {high:+.3f}] (n={est.n})"


def claims_markdown(table: pd.DataFrame) -> pd.DataFrame:
    """The claims table as strings, for the README, the index and notebook 04 alike."""

    def num(x, sign="+"):
        if np.isinf(x):
            return "+inf" if x > 0 else "-inf"
        return "-" if not np.isfinite(x) else f"{x:{sign}.3f}"

    def interval(lo, hi):
        return "-" if not (np.isfinite(lo) or np.isfinite(hi)) else f"[{num(lo)}, {num(hi)}]"

    get = lambda col: table[col] if col in table else pd.Series(np.nan, index=table.index)  # noqa: E731
    return pd.DataFrame(
        {
            "poster claim": table["claim"],
            "compared": table["compared"],
            "units": table["units"].astype(int).astype(str),
            "effect": table["effect"].map(num),
            "95% interval": [interval(a, b) for a, b in zip(get("ci_low"), get("ci_high"))],
            "Holm-level interval": [
                interval(a, b) for a, b in zip(get("holm_low"), get("holm_high"))
            ],
            "Holm p": table["p_holm"].map(_p),
            "Holm p, opposite": get("p_other_holm").map(_p),
            "margin": table["margin"].map(lambda m: f"{m:g}"),
            "detectable": get("detectable").map(lambda x: "inf" if x == np.inf else num(x, "")),
            "test": table["test"],
            "verdict": table["verdict"],
        }
    )


def _p(p: float) -> str:
    return "-" if not np.isfinite(p) else f"{p:.2g}"


def beside_markdown(table: pd.DataFrame) -> pd.DataFrame:
    """What a reviewer asks beside the headline: per task family, without one-class cells, in
    AUROC (effect [95% interval] (units))."""
    cols = [
        c
        for c in ("reviews", "tweets", "sensitivity", "auroc", "cost", "free", "free cost")
        if c in table
    ]
    out = table[["claim", *cols]].dropna(subset=cols, how="all").fillna("-")
    return out.rename(
        columns={
            "claim": "poster claim",
            "sensitivity": "without one-class cells",
            "auroc": "AUROC",
            "cost": "macro-F1 cost of stopping at the budget",
            "free": "without the normalisation",
            "free cost": "its cost without the normalisation",
        }
    )
