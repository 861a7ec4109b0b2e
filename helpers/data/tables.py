"""Local tables (CSV, TSV, JSON Lines, Parquet) and hub datasets as a ``Corpus``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from helpers.data.cleaning import clean_frame, count_drops, drop_reasons, hash_split
from helpers.data.schema import (
    COLUMNS,
    CUSTOM_TASK,
    SPLIT_ALIASES,
    SPLITS,
    TASKS,
    Corpus,
    check_split,
    class_counts,
)
from helpers.data.table_files import read_table_file
from helpers.errors import UserError
from helpers.paths import data_root as resolve_data_root
from helpers.paths import inside


def _task_for(label_names: tuple[str, ...]) -> str:
    return next((t for t, names in TASKS.items() if names == label_names), CUSTOM_TASK)


def _label_key(value) -> str:
    """A label as text, so that a file's 1, 1.0 and "1" all match ``classes: {1: ...}``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _mapped(values: pd.Series, classes, label_names, where: str):
    """Label index per row by ``classes`` (NaN: dropped), the class names, the dropped labels."""
    names = tuple(label_names or dict.fromkeys(n for _, n in classes if n is not None))
    index = {n: i for i, n in enumerate(names)}
    unknown = [n for _, n in classes if n is not None and n not in index]
    if unknown:
        raise UserError(f"{where}: classes maps to {unknown[0]!r}, not one of {names}")
    keyed = {_label_key(k): index.get(n) for k, n in classes}
    keys = values.map(_label_key)
    dropped = sorted(set(keys[keys.map(keyed.get).isna()]))
    return keys.map(keyed.get).astype("float64"), names, dropped


def _labels_to_index(values: pd.Series, label_names, threshold, where: str):
    """Integer label per row: a threshold on a number, a label name, or an integer index."""
    if threshold is not None:
        numbers = pd.to_numeric(values, errors="coerce")
        bad = numbers.isna()
        if bad.any():
            raise UserError(
                f"{where}: data row {bad.idxmax() + 1} has label "
                f"{values[bad.idxmax()]!r}, not a number; fix the file or drop "
                "the threshold"
            )
        return (numbers >= threshold).astype("int64"), tuple(label_names or ("0", "1"))
    if label_names is not None and values.map(lambda v: isinstance(v, str)).all():
        index = {n: i for i, n in enumerate(label_names)}
        labels = values.map(index)
    else:
        labels = pd.to_numeric(values, errors="coerce")
        labels = labels.where(labels == labels.round())
    bad = labels.isna()
    if bad.any():
        raise UserError(
            f"{where}: data row {bad.idxmax() + 1} has label {values[bad.idxmax()]!r}, "
            "not an integer index or label name; fix the file or pass threshold="
        )
    labels = labels.astype("int64")
    names = tuple(label_names) if label_names else tuple(str(i) for i in range(labels.max() + 1))
    out = ~labels.between(0, len(names) - 1)
    if out.any():
        row = out.idxmax()
        raise UserError(
            f"{where}: data row {row + 1} has label {labels[row]}, outside "
            f"0..{len(names) - 1} for labels {names}"
        )
    return labels, names


def frame_to_corpus(
    df: pd.DataFrame,
    name: str,
    split: str | None,
    text_col: str,
    label_col: str,
    label_names=None,
    threshold=None,
    id_col=None,
    where: str = "",
    classes=None,
) -> Corpus:
    """Clean a frame of texts and labels into a Corpus, splitting by hash when it has no split.

    Without ``id_col`` ids are row numbers and the hash split uses the text, so repeated texts
    share a split. With a ``split`` column its values choose the rows; split=None keeps all.
    ``classes`` ((file label, class name or None), ...) maps labels; rows whose label it does
    not map are dropped and counted (``label_dropped:<label>``).
    """
    where = where or name
    missing = [c for c in (text_col, label_col, id_col) if c and c not in df.columns]
    if missing:
        raise UserError(
            f"{where}: no column(s) {', '.join(missing)}; columns are "
            f"{', '.join(map(str, df.columns))}"
        )
    if df.empty:
        raise UserError(f"{where}: the table has no rows")
    values, dropped = df[label_col].reset_index(drop=True), []
    if classes is not None:
        labels, names, dropped = _mapped(values, classes, label_names, where)
    else:
        labels, names = _labels_to_index(values, label_names, threshold, where)
    rows = pd.DataFrame(
        {
            "id": df[id_col].astype(str).to_numpy() if id_col else [str(i) for i in range(len(df))],
            "text": df[text_col].to_numpy(),
            "raw_label": (values.map(_label_key) if classes is not None else labels).to_numpy(),
        }
    )
    if not rows["id"].is_unique:
        raise UserError(f"{where}: column {id_col!r} has repeated ids; pass a unique id_col")
    rows = clean_frame(rows)
    if "split" in df.columns:
        rows["split"] = [SPLIT_ALIASES.get(str(s), str(s)) for s in df["split"]]
        bad = set(rows["split"]) - set(SPLITS)
        if bad:
            raise UserError(f"{where}: split values {sorted(bad)} are not {', '.join(SPLITS)}")
    else:
        keys = rows["id"] if id_col else rows["text"]
        rows["split"] = [hash_split(k) for k in keys]
    rows["label"] = labels.to_numpy()
    reasons = drop_reasons(rows)
    splits = [check_split(split)] if split else list(SPLITS)
    chosen = rows["split"].isin(splits)
    summary = count_drops(rows[chosen], reasons[chosen], dropped)
    kept = rows[chosen & reasons.isna()].assign(source=name)[COLUMNS].reset_index(drop=True)
    kept["label"] = kept["label"].astype("int64")
    summary.update(class_counts(kept["label"], names))
    _check_kept(kept, summary, names, where, split)
    return Corpus(
        name=name,
        split=splits[0] if split else "all",
        task=_task_for(names),
        label_names=names,
        frame=kept,
        summary=summary,
    )


def _check_kept(kept: pd.DataFrame, summary: dict, names, where: str, split) -> None:
    """Refuse a result no classifier can learn from: no rows left, or a single class."""
    part = f"split {split!r} of " if split else ""
    if summary["raw"] == 0:
        raise UserError(f"{where}: {part}the table has no rows; check the split column")
    if kept.empty:
        drops = {k: v for k, v in summary.items() if k.endswith("_dropped") and v}
        raise UserError(
            f"{where}: all {summary['raw']} rows of {part}the table were dropped "
            f"({', '.join(f'{k} {v}' for k, v in drops.items())}); check the text column "
            "(it must hold non-empty strings) and the labels"
        )
    present = sorted(set(kept["label"]))
    if len(present) < 2:
        raise UserError(
            f"{where}: {part}the table holds one class only ({names[present[0]]!r}, "
            f"{len(kept)} rows); check label_col, label_names, classes or threshold"
        )


def load_table(
    path, text_col: str, label_col: str, label_names=None, threshold=None, id_col=None, split=None
) -> Corpus:
    """A local CSV, TSV, JSON Lines or Parquet file (by extension) as a Corpus.

    threshold: labels >= threshold become 1, others 0 (for fractional scores). label_names:
    names of the label indices, also used to map string labels. split: one split of the file's
    own "split" column, else of the 80/10/10 hash split; None keeps every row.
    """
    path = Path(path)
    return frame_to_corpus(
        read_table_file(path, columns=[c for c in (text_col, label_col, id_col) if c]),
        path.stem,
        split,
        text_col,
        label_col,
        label_names,
        threshold,
        id_col,
        where=str(path),
    )


def load_hub(
    dataset_id: str,
    split: str,
    text_col: str = "text",
    label_col: str = "label",
    config: str | None = None,
    data_root=None,
) -> Corpus:
    """A Hugging Face hub dataset (or a local dataset folder) split as a Corpus.

    Uses the dataset's own split ("validation" also finds "val" or "dev"); a dataset with only
    a train split is cut 80/10/10 by hash of the text. Downloads are cached under
    <data root>/hub. Label names come from a ClassLabel feature when there is one.
    """
    import datasets  # slow import; only this function needs it

    split = check_split(split)
    cache = inside(resolve_data_root(data_root), "hub")
    try:
        dsd = datasets.load_dataset(dataset_id, config, cache_dir=str(cache))
    except Exception as e:  # the library raises many types; all mean "cannot load this id"
        raise UserError(
            f"could not load hub dataset {dataset_id!r} (config {config!r}): {e}; "
            "check the id and config, and the network or HF_HUB_OFFLINE"
        ) from e
    candidates = {"validation": ("validation", "val", "dev")}.get(split, (split,))
    found = next((c for c in candidates if c in dsd), None)
    if set(dsd) == {"train"}:
        found = None  # train only: frame_to_corpus cuts it by hash
    elif found is None:
        raise UserError(
            f"hub dataset {dataset_id!r} has no {split!r} split; it has {', '.join(dsd)}"
        )
    ds = dsd[found or "train"]
    feature = ds.features.get(label_col)
    names = tuple(feature.names) if isinstance(feature, datasets.ClassLabel) else None
    df = ds.to_pandas()
    if found is not None:
        df = df.drop(columns="split", errors="ignore").assign(split=split)
    return frame_to_corpus(
        df,
        dataset_id,
        split,
        text_col,
        label_col,
        label_names=names,
        where=f"hub dataset {dataset_id!r}",
    )
