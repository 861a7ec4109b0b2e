"""The one shape every corpus is loaded into: a ``Corpus`` of one split and one task.

Built-in corpora (``helpers.data.corpora``), local tables and hub datasets
(``helpers.data.tables``) all come out as frames with columns id, text, label, source, labels
indexed into one task's label names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from helpers.errors import unknown_name

TASKS: dict[str, tuple[str, ...]] = {
    "sentiment": ("negative", "positive"),
    "hate": ("not_hate", "hate"),
    "offensive": ("not_offensive", "offensive"),
}
SPLITS = ("train", "validation", "test")  # also the order of overlap removal
SPLIT_ALIASES = {"val": "validation"}
COLUMNS = ["id", "text", "label", "source"]
CUSTOM_TASK = "custom"  # task of a table whose labels match no TASKS entry


# Corpus is frozen but holds a DataFrame: eq=False keeps identity hashing and avoids
# element-wise DataFrame comparison in ==.
@dataclass(frozen=True, eq=False)
class Corpus:
    """One split of one corpus for one task: a frame with columns id, text, label, source."""

    name: str
    split: str
    task: str
    label_names: tuple[str, ...]
    frame: pd.DataFrame
    summary: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        if list(self.frame.columns) != COLUMNS:
            raise ValueError(f"corpus frame columns {list(self.frame.columns)} != {COLUMNS}")
        labels = self.frame["label"]
        if len(labels) and not labels.between(0, len(self.label_names) - 1).all():
            raise ValueError(f"labels outside 0..{len(self.label_names) - 1} in {self.name}")
        if not self.frame["id"].is_unique:
            raise ValueError(f"ids are not unique in {self.name} {self.split}")


def class_counts(labels: pd.Series, label_names) -> dict[str, int]:
    """Rows per class as {"class:<name>": count}, every class listed (zero where absent)."""
    counts = labels.value_counts()
    return {f"class:{n}": int(counts.get(i, 0)) for i, n in enumerate(label_names)}


def check_split(split: str) -> str:
    """The canonical split name ("val" is "validation"), or an error listing the valid ones."""
    split = SPLIT_ALIASES.get(split, split)
    if split not in SPLITS:
        raise unknown_name("split", split, list(SPLITS) + list(SPLIT_ALIASES))
    return split
