"""Text cleaning, the hash split and the drop rules every corpus goes through, counted.

The order and meaning of each step is documented in ``helpers.data.corpora``; every change and
every dropped row is counted per split so the report can show what cleaning did.
"""

from __future__ import annotations

import hashlib
import html
import re

import pandas as pd

from helpers.data.schema import SPLITS

SPLIT_PERCENT = {"train": 80, "validation": 10, "test": 10}  # for corpora without official splits
DROPS = ("blank_dropped", "duplicate_dropped", "conflicting_duplicate_dropped", "overlap_dropped")

_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MENTION = re.compile(r"(?<![\w@])@[A-Za-z0-9_]+")
_RETWEET = re.compile(r"(?:\bRT\s+)+(?=@)")  # "RT RT @a" happens too


def unescape_entities(text: str, passes: int = 3) -> str:
    """Decode complete HTML entities only, so a bare '&' or 'AT&T' is left as written.

    Repeats while something changes (at most ``passes`` times): a few published texts are
    escaped twice (``&amp;quot;``).
    """
    for _ in range(passes):
        decoded = _ENTITY.sub(lambda m: html.unescape(m.group(0)), text)
        if decoded == text:
            break
        text = decoded
    return text


def clean_text(text: str) -> tuple[str, dict[str, bool]]:
    """Unescape entities, replace control characters, strip; flags say what changed."""
    unescaped = unescape_entities(text)
    replaced = _CONTROL.sub("\ufffd", unescaped)
    return replaced.strip(), {
        "html_unescaped": unescaped != text,
        "control_char_replaced": replaced != unescaped,
    }


def normalise_tweet(text: str) -> tuple[str, dict[str, bool]]:
    """Anonymise @handles as TweetEval does and drop the retweet marker before a mention."""
    anonymised = _MENTION.sub("@user", text)
    no_rt = _RETWEET.sub("", anonymised)
    return no_rt.strip(), {
        "mention_anonymised": anonymised != text,
        "retweet_marker_removed": no_rt != anonymised,
    }


def hash_split(key: str) -> str:
    """Deterministic split of a key: SHA-256 into 100 buckets, cut at SPLIT_PERCENT."""
    bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % 100
    edge = 0
    for split in SPLITS:
        edge += SPLIT_PERCENT[split]
        if bucket < edge:
            return split
    return SPLITS[-1]


def _apply_step(texts: pd.Series, fn) -> tuple[list[str], pd.DataFrame]:
    out, flags = [], []
    for t in texts:
        cleaned, f = fn(t)
        out.append(cleaned)
        flags.append(f)
    return out, pd.DataFrame(flags, index=texts.index)


def clean_frame(raw: pd.DataFrame, normalise=None) -> pd.DataFrame:
    """Clean the text column and add one q_<quirk> flag column per change made."""
    df = raw.copy()
    df["text"] = df["text"].fillna("").astype(str)
    steps = [clean_text] + ([normalise] if normalise else [])
    for step in steps:
        texts, flags = _apply_step(df["text"], step)
        df["text"] = texts
        for col in flags.columns:
            df[f"q_{col}"] = flags[col].astype(bool)
    return df


def drop_reasons(df: pd.DataFrame) -> pd.Series:
    """Why each row is dropped (None = kept), applying the cleaning steps in documented order."""
    reason = pd.Series([None] * len(df), index=df.index, dtype=object)
    unmapped = df["label"].isna()
    reason[unmapped] = "label_dropped:" + df.loc[unmapped, "raw_label"].astype(str)
    reason[reason.isna() & (df["text"] == "")] = "blank_dropped"

    live = df[reason.isna()]
    n_labels = live.groupby(["split", "text"])["label"].transform("nunique")
    reason[live.index[n_labels > 1]] = "conflicting_duplicate_dropped"
    live = df[reason.isna()]
    reason[live.index[live.duplicated(["split", "text"])]] = "duplicate_dropped"

    for i, split in enumerate(SPLITS[:-1]):
        later = set(df.loc[reason.isna() & df["split"].isin(SPLITS[i + 1 :]), "text"])
        reason[reason.isna() & (df["split"] == split) & df["text"].isin(later)] = "overlap_dropped"
    return reason


def count_drops(rows: pd.DataFrame, reasons: pd.Series, dropped_labels) -> dict[str, int]:
    """Counts of every quirk flag and drop reason in ``rows``, with the raw and kept totals."""
    summary = {"raw": len(rows)}
    for col in rows.columns:
        if col.startswith("q_"):
            summary[col[2:]] = int(rows[col].sum())
    counts = reasons.value_counts()
    for key in [f"label_dropped:{v}" for v in dropped_labels] + list(DROPS):
        summary[key] = int(counts.get(key, 0))
    summary["kept"] = int(reasons.isna().sum())
    return summary
