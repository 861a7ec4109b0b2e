"""Tables as a paper prints them: numbers to meaningful digits, no row numbers, long ones folded.

``show`` is what the notebooks display a table through; ``configuration`` is the short table of
what a run is (corpora, model, sizes, seeds), in place of the configs' reprs.
"""

from __future__ import annotations

import html
import math

import pandas as pd

FOLD_AFTER = 15  # rows shown open; a longer table is folded under a one-line summary
# Columns of settings, not measurements: written as given (0.5, 3e-05), never padded to 0.500.
AS_GIVEN = {"delta", "value", "lr", "alpha_lr"}


def number(x) -> str:
    """A number to the digits that mean something here: metrics to three decimals, rates and
    other tiny values to two significant digits, counts and seconds without false precision."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)
    if isinstance(x, int) or float(x).is_integer():
        return f"{int(x):,}"
    if math.isnan(x):
        return ""
    size = abs(x)
    if size < 1e-3:
        return f"{x:.2g}"
    if size < 10:
        return f"{x:.3f}"
    return f"{x:.1f}" if size < 1000 else f"{x:,.0f}"


def tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame's meaningful index as columns, every value as display text."""
    frame = frame.reset_index() if not isinstance(frame.index, pd.RangeIndex) else frame.copy()
    if isinstance(frame.columns, pd.MultiIndex):
        frame.columns = [" ".join(str(p) for p in c if str(p)) for c in frame.columns]
    frame.columns.name = None  # a pivot's column name would shift the header by one
    out = frame.map(number)
    for c in AS_GIVEN & set(frame.columns):
        out[c] = [f"{v:g}" if isinstance(v, float) else number(v) for v in frame[c]]
    return out.rename(columns=str)


class Shown:
    """A table as the notebook and its HTML page show it (``show`` builds it)."""

    def __init__(self, frame: pd.DataFrame, caption: str | None, fold_after: int):
        self.frame, self.caption, self.fold_after = tidy(frame), caption, fold_after

    def _repr_html_(self) -> str:
        table = self.frame.to_html(index=False, border=0, escape=True, classes="cbv-table")
        if self.caption:
            table = f"<p><em>{html.escape(self.caption)}</em></p>\n{table}"
        if len(self.frame) <= self.fold_after:
            return table
        rows = len(self.frame)
        return f"<details><summary>{rows} rows (click to show)</summary>\n{table}\n</details>"

    def __repr__(self) -> str:
        return self.frame.to_string(index=False)


def show(frame: pd.DataFrame, caption: str | None = None, fold_after: int = FOLD_AFTER) -> Shown:
    """Display ``frame`` rounded (``number``), without row numbers, folded when long."""
    return Shown(frame, caption, fold_after)


def configuration(study) -> pd.DataFrame:
    """What a run of this study is, one line per setting that changes its results."""
    e, p = study.experiment, study.profile
    sizes = {"train": p.n_train, "validation": p.n_val}
    t = p.tune
    rates = (
        f"tuned on validation: {t.trials} trials per method on a log ladder (steps of "
        f"{t.step:g}) from {p.train.lr:g} times the method's own scale, each the mean of "
        f"{t.seeds} seeds' fits, by {t.pool}"
        if t
        else None
    )
    rows = [
        ("experiment", f"{e.name} ({e.task})"),
        ("corpus A (source)", e.source),
        ("corpus B (target)", e.target),
        ("profile", p.name),
        ("model", p.model),
        ("seeds", ", ".join(map(str, p.seeds))),
        ("deltas of the main grid", ", ".join(f"{d:g}" for d in p.deltas)),
        ("source model trained on", _size(p.n_source_train, "examples of A")),
        *((f"{split} mixture", _size(n, "examples")) for split, n in sizes.items()),
        ("test", "both whole test pools, weighted by delta"),
        ("tokens per text (at most)", f"{e.max_length}"),
        ("epochs, batch size", f"{p.train.epochs}, {p.train.batch_size}"),
        ("learning rate of the weights", rates or f"{p.train.lr:g}"),
        ("bootstrap replicates", f"{p.n_boot:,}"),
    ]
    return pd.DataFrame(rows, columns=["setting", "value"])


def _size(n: int | None, what: str) -> str:
    return f"{n:,} {what}" if n is not None else f"all {what}"
