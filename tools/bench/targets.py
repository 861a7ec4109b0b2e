"""The issue's performance targets: thresholds, and a PASS or MISS row with its margin for each."""

from __future__ import annotations

from tools.bench.config import TRAINER


def target(
    name: str,
    measured: float | None,
    limit: float,
    at_most: bool = True,
    unit: str = "x",
    note: str = "",
    per_repeat=None,
) -> dict:
    """One target row: met, and the margin (positive: room to spare; negative: missed by)."""
    row = {
        "name": name,
        "measured": None,
        "target": limit,
        "at_most": at_most,
        "unit": unit,
        "met": None,
        "margin": None,
        "relative_margin": None,
        "note": note,
        "per_repeat": None if per_repeat is None else [float(x) for x in per_repeat],
    }
    if measured is None:
        return row
    margin = (limit - measured) if at_most else (measured - limit)
    return {
        **row,
        "measured": float(measured),
        "met": bool(margin >= 0),
        "margin": float(margin),
        "relative_margin": float(margin / limit),
    }


def _ratios(numerator: list[float], denominator: list[float]) -> list[float]:
    """Ratio within each repeat (runs of one repeat were made back to back)."""
    return [a / b for a, b in zip(numerator, denominator)]


def targets(training: dict, curve: dict, quick: dict | None) -> list[dict]:
    """The issue's targets, each as a ratio of medians measured in this run."""
    t = training
    steps = {k: v["step_s_per_repeat"] for k, v in t.items()}
    last2, full = t["last2"], t["all"]
    return [
        target(
            "CBV weight-space step / full fine-tuning step",
            t["cbv_weight"]["step_s"] / full["step_s"],
            1.15,
            per_repeat=_ratios(steps["cbv_weight"], steps["all"]),
        ),
        target(
            "CBV output-space step / full fine-tuning step",
            t["cbv_output"]["step_s"] / full["step_s"],
            2.1,
            per_repeat=_ratios(steps["cbv_output"], steps["all"]),
        ),
        target(
            "full fine-tuning throughput / Trainer throughput",
            full["examples_per_s"] / t[TRAINER]["examples_per_s"],
            0.95,
            at_most=False,
            per_repeat=_ratios(steps[TRAINER], steps["all"]),
        ),
        target(
            "last-two epoch / full fine-tuning epoch (steady state, prefix cached)",
            last2["steady_epoch_s"] / full["steady_epoch_s"],
            0.4,
            note=f"first epoch incl. computing the prefix: "
            f"{last2['first_epoch_s'] / full['first_epoch_s']:.2f}x",
            per_repeat=_ratios(
                last2["steady_epoch_s_per_repeat"], full["steady_epoch_s_per_repeat"]
            ),
        ),
        target(
            "11-point degradation curve cost",
            curve["ours"]["evaluations"],
            2.0,
            unit=" evaluations",
            note=f"naive: {curve['naive']['evaluations']:g} evaluations",
        ),
        target(
            "one quick-profile experiment (four notebooks)",
            None if quick is None else quick["minutes"],
            15.0,
            unit=" min",
            note="not run (--skip-experiment)"
            if quick is None
            else ("a notebook FAILED" if quick["failed"] else quick["experiment"]),
        ),
    ]
