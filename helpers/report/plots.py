"""Figures that read on their own: each takes a tidy DataFrame and returns a Figure; ``save``
(``helpers.report.figure_files``, the one writer of figures) is reachable as ``plots.save``."""

from __future__ import annotations

import functools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from helpers.config.methods import method_order
from helpers.report.figure_files import save

__all__ = ["save"]  # the rest are the figures themselves

METRIC_LABELS = {"accuracy": "accuracy", "macro_f1": "macro-F1"}


def styled(draw):
    """Draw a figure in the project's style, changing no other matplotlib setting.

    seaborn's style contexts restore only the settings they set. ``plt.rc_context`` restores
    all of them, ``interactive`` too, which Jupyter's inline backend turns on when the first
    figure of a kernel activates it: a first figure drawn inside ``rc_context`` turned off the
    automatic display of every later figure of that kernel.
    """

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with sns.axes_style("whitegrid"), sns.plotting_context("notebook"):
            return draw(*args, **kwargs)

    return wrapper


def _label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


@styled
def degradation(curve: pd.DataFrame, metrics=("accuracy", "macro_f1")) -> plt.Figure:
    """Source model under shift: exact expected curve and sampled mixtures with 95% CIs."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    title = f"{curve['experiment'].iat[0]}: source model (trained on A) as delta grows"
    for ax, metric in zip(axes[0], metrics):
        exp = curve[(curve["estimate"] == "expected") & (curve["metric"] == metric)]
        smp = curve[(curve["estimate"] == "sampled") & (curve["metric"] == metric)]
        n = exp["seed"].nunique()
        # Seeds as one mean line and the band they span: identical per-seed lines tell no one apart.
        band = exp.groupby("delta")["value"].agg(["mean", "min", "max"]).reset_index()
        label = f"expected, mean of {n} seeds" if n > 1 else "expected"
        ax.plot(band["delta"], band["mean"], "-", color="C0", label=label)
        if n > 1:
            ax.fill_between(
                band["delta"],
                band["min"],
                band["max"],
                color="C0",
                alpha=0.2,
                lw=0,
                label=f"expected, range over the {n} seeds",
            )
        seeds = sorted(smp["seed"].unique())
        for i, seed in enumerate(seeds):
            g = smp[smp["seed"] == seed]
            ax.errorbar(
                g["delta"] + 0.012 * (i - (len(seeds) - 1) / 2),  # side by side, not on top
                g["value"],
                yerr=[g["value"] - g["ci_low"], g["ci_high"] - g["value"]],
                fmt="o",
                color="C1",
                capsize=3,
                label=None
                if i
                else "sampled test mixture, 95% CI" + (" (a seed each)" if len(seeds) > 1 else ""),
            )
        floor = curve[(curve["estimate"] == "majority") & (curve["metric"] == metric)]
        floor = floor[floor["seed"] == floor["seed"].min()]  # the same for every seed
        ax.plot(floor["delta"], floor["value"], "--", color="0.5", label="majority class of A")
        ax.set(
            xlabel="delta (share of corpus B in the test mixture)",
            ylabel=f"test {_label(metric)}",
            xlim=(-0.03, 1.03),
        )
        ax.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


@styled
def methods(summary: pd.DataFrame, title: str, order=None) -> plt.Figure:
    """Mean test metric per method, a marker per delta, with 95% intervals (``summarise``)."""
    metric = summary["metric"].iat[0]
    order = [m for m in (order or summary["method"].unique()) if m in set(summary["method"])]
    deltas = sorted(summary["delta"].unique())
    fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * len(order) + 2.5), 4.2))
    offset = 0.6 / max(1, len(deltas))
    for j, d in enumerate(deltas):
        g = summary[summary["delta"] == d].set_index("method").reindex(order)
        x = np.arange(len(order)) + (j - (len(deltas) - 1) / 2) * offset
        ax.errorbar(
            x,
            g["mean"],
            yerr=[g["mean"] - g["ci_low"], g["ci_high"] - g["mean"]],
            fmt="o",
            color=f"C{j}",
            capsize=3,
            label=f"delta = {d:g}",
        )
    ax.set_xticks(np.arange(len(order)), order, rotation=30, ha="right")
    ax.set(ylabel=f"test {_label(metric)} on the delta-mixture", title=title)
    ax.legend(title="shift (share of B)", fontsize="small")
    fig.tight_layout()
    return fig


@styled
def coefficient_trajectories(history: pd.DataFrame, title: str) -> plt.Figure:
    """Coefficient alpha of each layer group over training: a row per method, a column per delta."""
    alphas = history[history["metric"].str.startswith("alpha/")].copy()
    alphas["group"] = alphas["metric"].str.removeprefix("alpha/")
    methods_, deltas = sorted(alphas["method"].unique()), sorted(alphas["delta"].unique())
    fig, axes = plt.subplots(
        max(1, len(methods_)),
        max(1, len(deltas)),
        squeeze=False,
        figsize=(4.2 * max(1, len(deltas)) + 1.5, 2.6 * max(1, len(methods_))),
        sharey=True,
    )
    for (i, method), (j, delta) in ((m, d) for m in enumerate(methods_) for d in enumerate(deltas)):
        ax = axes[i][j]
        g = alphas[(alphas["method"] == method) & (alphas["delta"] == delta)]
        sns.lineplot(
            g,
            x="step",
            y="value",
            hue="group",
            ax=ax,
            legend=False,
            marker="o" if g["step"].nunique() < 20 else None,
            palette="viridis",
            errorbar=("pi", 100),  # the seeds' range: no bootstrap (slow, random) over 3 seeds
            hue_order=sorted(g["group"].unique(), key=_group_order),
        )
        ax.set(
            title=f"{method}, delta = {delta:g}",
            xlabel="optimiser step" if i == len(methods_) - 1 else "",
            ylabel="alpha" if j == 0 else "",
            ylim=(-0.02, 1.02),
        )
    groups = sorted(alphas["group"].unique(), key=_group_order)
    colors = sns.color_palette("viridis", len(groups))
    handles = [plt.Line2D([], [], color=c, label=g) for g, c in zip(groups, colors)]
    fig.legend(handles=handles, title="layer group", loc="center right")
    fig.suptitle(
        f"{title}\n(alpha = share of the fine-tuned copy; 0 = frozen source; "
        "line: mean over seeds, band: their range)"
    )
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    return fig


@styled
def coefficient_heatmap(coefficients: pd.DataFrame, title: str) -> plt.Figure:
    """Final alpha per layer group (rows) and run (columns: experiment, delta), a panel per
    method."""
    frame = coefficients.copy()
    frame["run"] = frame["experiment"] + ", d=" + frame["delta"].map("{:g}".format)
    methods_ = sorted(frame["method"].unique())
    runs = sorted(frame["run"].unique())
    groups = sorted(frame["group"].unique(), key=_group_order)
    fig, axes = plt.subplots(
        len(methods_),
        1,
        squeeze=False,
        figsize=(2.5 + 0.9 * len(runs), 0.8 + (0.35 * len(groups) + 0.9) * len(methods_)),
    )
    for ax, method in zip(axes[:, 0], methods_):
        wide = frame[frame["method"] == method].pivot_table(
            index="group", columns="run", values="alpha"
        )
        wide = wide.reindex(index=groups, columns=runs)
        sns.heatmap(
            wide,
            vmin=0,
            vmax=1,
            cmap="viridis",
            annot=True,
            fmt=".2f",
            annot_kws={"size": 7},
            cbar=False,
            ax=ax,
        )
        last = ax is axes[-1, 0]
        ax.set(title=method, xlabel="", ylabel="layer group")
        ax.tick_params(axis="x", labelbottom=last, labelsize=8)
        plt.setp(ax.get_xticklabels(), rotation=35, ha="right", rotation_mode="anchor")
    fig.colorbar(
        axes[0, 0].collections[0],
        ax=axes[:, 0],
        fraction=0.02,
        label="alpha (1 = fine-tuned copy, 0 = source)",
    )
    fig.suptitle(title, y=1.0)
    return fig


def _group_order(name: str):
    if name == "embeddings":
        return (-1, 0)
    if name.startswith("layer."):
        return (0, int(name.split(".")[1]))
    return (1, name)


@styled
def methods_grid(summary: pd.DataFrame, title: str) -> plt.Figure:
    """One panel per experiment: mean test metric per method, a line per delta, with 95% CIs."""
    metric = summary["metric"].iat[0]
    experiments = sorted(summary["experiment"].unique())
    cols = min(3, len(experiments))
    rows = -(-len(experiments) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False, sharey=True
    )
    order = method_order(summary["method"].unique())
    for ax, name in zip(axes.flat, experiments):
        g = summary[summary["experiment"] == name]
        for j, (delta, d) in enumerate(g.groupby("delta")):
            d = d.set_index("method").reindex(order)
            x = np.arange(len(order)) + 0.1 * j
            ax.errorbar(
                x,
                d["mean"],
                yerr=[d["mean"] - d["ci_low"], d["ci_high"] - d["mean"]],
                fmt="o",
                capsize=2,
                color=f"C{j}",
                label=f"delta = {delta:g}",
            )
        ax.set_xticks(np.arange(len(order)), order, rotation=45, ha="right", fontsize="small")
        ax.set(title=name, ylabel=f"test {_label(metric)}")
        ax.legend(fontsize="x-small")
    for ax in list(axes.flat)[len(experiments) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


@styled
def paired_differences(differences: pd.DataFrame, title: str) -> plt.Figure:
    """A panel per experiment: method - reference with its 95% paired interval, a marker per
    reference and delta (``comparisons.paired_differences``); 0 is no difference (with one
    seed, no interval: the figure says so)."""
    if differences.empty:
        fig, ax = plt.subplots(figsize=(6, 1.6))
        ax.axis("off"), ax.set_title(title), ax.text(0.5, 0.5, "two seeds needed", ha="center")
        return fig
    experiments = sorted(differences["experiment"].unique())
    cols = min(3, len(experiments))
    rows = -(-len(experiments) // cols)
    order = method_order(differences["method"].unique())
    series = sorted({(r, d) for r, d in zip(differences["reference"], differences["delta"])})
    fig, axes = plt.subplots(
        rows, cols, figsize=(5.2 * cols, 0.3 * len(order) + 2.2 * rows + 1), squeeze=False
    )
    step = 0.7 / max(1, len(series))
    for ax, name in zip(axes.flat, experiments):
        g = differences[differences["experiment"] == name]
        for j, (ref, delta) in enumerate(series):
            d = g[(g["reference"] == ref) & (g["delta"] == delta)].set_index("method")
            d = d.reindex([m for m in order if m in d.index])
            y = np.array([order.index(m) for m in d.index]) + (j - (len(series) - 1) / 2) * step
            ax.errorbar(
                d["effect"],
                y,
                xerr=[d["effect"] - d["ci_low"], d["ci_high"] - d["effect"]],
                fmt="os"[j % 2],
                capsize=2,
                color=f"C{j}",
                label=f"vs {ref}, delta = {delta:g}",
            )
        ax.axvline(0, color="0.3", lw=1)
        ax.set_yticks(np.arange(len(order)), order, fontsize="small")
        ax.invert_yaxis()
        metric = _label(str(g["metric"].iat[0])) if "metric" in g else "metric"
        ax.set(title=name, xlabel=f"difference in test {metric} (method - reference)")
    for ax in list(axes.flat)[len(experiments) :]:
        ax.set_visible(False)
    # one legend for every panel, below them, so that no interval is hidden behind it
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize="small")
    fig.suptitle(f"{title}\n(points: mean over seeds; bars: 95% paired bootstrap interval)")
    fig.tight_layout(rect=(0, 0.06 + 0.02 * (len(labels) > 4), 1, 1))
    return fig
