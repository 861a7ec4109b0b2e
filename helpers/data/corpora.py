"""Load every corpus from its published layout into one shape: a `Corpus` of one split and task.

A corpus is a name in `CORPORA` (folder, loader, label mapping, split scheme); its files sit under
the data root (`helpers.paths.data_root`) exactly as published, e.g. as ``python -m helpers
download`` or ``../shared/data`` lay them out. Local tables (`load_table`) and hub datasets
(`load_hub`) come out in the same shape.

Label mapping into the shared label spaces of `TASKS`:

- sentiment: amazon_books, amazon_dvd, amazon_electronics, amazon_kitchen: ``positive.review``
  (4-5 stars) -> positive, ``negative.review`` (1-2 stars) -> negative. The text is the review
  body (``<review_text>``); the title is left out.
- hate: tweeteval_hate 1 -> hate, 0 -> not_hate; davidson class 0 (hate speech) -> hate, 1
  (offensive) and 2 (neither) -> not_hate; stormfront hate -> hate, noHate -> not_hate, and
  relation (hateful only with its neighbouring sentences) and idk/skip dropped and counted.
- offensive: tweeteval_offensive 1 -> offensive, 0 -> not_offensive; davidson 0 or 1 ->
  offensive, 2 -> not_offensive.

Splits: TweetEval's official train/val/test. The other corpora: train/validation/test = 80/10/10
by SHA-256 of a stable key, the same for every task: Amazon ``<domain>:<unique_id>``, Davidson
its row index, Stormfront the post id (the file id before the underscore), so no post's
sentences straddle two splits.

Cleaning, in order, counted per split in `Corpus.summary` and `corpus_summary` (counts of
changes are over the rows as read; ``raw`` = ``kept`` + the ``*_dropped`` counts):

- ``html_unescaped``: complete HTML entities (``&amp;``, ``&#8220;``) decoded, twice where a
  text was escaped twice (``&amp;quot;``); a bare ``&`` stays.
- ``control_char_replaced``: control characters (Amazon has ``\\x1a`` where a non-ASCII letter
  was lost) become U+FFFD; leading and trailing whitespace is stripped.
- Davidson only, following the authors' own preprocessing and TweetEval's anonymisation:
  ``mention_anonymised`` (``@handle`` -> ``@user``) and ``retweet_marker_removed`` (the ``RT``
  before a mention is dropped), so handles and retweet markup are not a cue that separates
  corpora.
- Amazon only: ``duplicate_id_suffixed``: a repeated ``unique_id`` gets ``#2``, ``#3`` in file
  order (the published files have none).
- ``label_dropped:<value>``: rows whose label has no place in the task.
- ``blank_dropped``: texts empty after cleaning (TweetEval's anonymisation left some).
- ``duplicate_dropped``: repeats of a text within a split (the first copy stays);
  ``conflicting_duplicate_dropped``: every copy of a text whose copies disagree on the label.
- ``overlap_dropped``: a text that is also in a later split (validation, then test) is dropped
  from the earlier one, so evaluation sets stay whole and nothing leaks from train into them.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from helpers.data.cleaning import (
    clean_frame,
    count_drops,
    drop_reasons,
    hash_split,
    normalise_tweet,
)
from helpers.data.formats import (
    CorruptFile,
    MissingFile,
    read_amazon,
    read_davidson,
    read_stormfront,
    read_tweeteval,
)
from helpers.data.integrity import check_rows, verify_corpus
from helpers.data.integrity import fingerprint as fingerprint
from helpers.data.schema import COLUMNS, SPLITS, TASKS, Corpus, check_split, class_counts
from helpers.data.sources import read_sources
from helpers.errors import UserError, unknown_name
from helpers.paths import data_root as resolve_data_root
from helpers.paths import inside


@dataclass(frozen=True)
class CorpusSpec:
    """One corpus: its folder under the data root, how to read it, and how its labels map.

    loader: reads the corpus folder into a frame with columns id, text, raw_label, and split
    (official splits) or group (key of the hash split; id when absent); extra boolean columns
    named ``q_<quirk>`` are counted into the summary.
    labels: task -> {raw label -> label name in TASKS[task], or None to drop the row}.
    """

    folder: str
    loader: Callable[[Path], pd.DataFrame]
    labels: Mapping[str, Mapping[object, str | None]]
    split: str = "hash"  # "official" or "hash"
    normalise: Callable[[str], tuple[str, dict[str, bool]]] | None = None

    def __post_init__(self):
        if self.split not in ("official", "hash"):
            raise ValueError(f"split scheme {self.split!r} is not 'official' or 'hash'")
        for task, mapping in self.labels.items():
            bad = {v for v in mapping.values() if v is not None} - set(TASKS[task])
            if bad:
                raise ValueError(f"labels {sorted(bad)} are not in task {task!r}")

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.labels)


def _amazon(domain: str, subdir: str) -> CorpusSpec:
    return CorpusSpec(
        folder="amazon_multidomain",
        loader=functools.partial(read_amazon, domain=domain, subdir=subdir),
        labels={"sentiment": {"negative": "negative", "positive": "positive"}},
    )


CORPORA: dict[str, CorpusSpec] = {
    "amazon_books": _amazon("books", "books"),
    "amazon_dvd": _amazon("dvd", "dvd"),
    "amazon_electronics": _amazon("electronics", "electronics"),
    "amazon_kitchen": _amazon("kitchen", "kitchen_&_housewares"),
    "tweeteval_hate": CorpusSpec(
        folder="tweeteval",
        loader=functools.partial(read_tweeteval, task_dir="hate"),
        labels={"hate": {0: "not_hate", 1: "hate"}},
        split="official",
    ),
    "tweeteval_offensive": CorpusSpec(
        folder="tweeteval",
        loader=functools.partial(read_tweeteval, task_dir="offensive"),
        labels={"offensive": {0: "not_offensive", 1: "offensive"}},
        split="official",
    ),
    "davidson": CorpusSpec(
        folder="davidson",
        loader=read_davidson,
        normalise=normalise_tweet,
        labels={
            "hate": {0: "hate", 1: "not_hate", 2: "not_hate"},
            "offensive": {0: "offensive", 1: "offensive", 2: "not_offensive"},
        },
    ),
    "stormfront": CorpusSpec(
        folder="stormfront",
        loader=read_stormfront,
        labels={"hate": {"hate": "hate", "noHate": "not_hate", "relation": None, "idk/skip": None}},
    ),
}


def _fetch_hint(name: str, root: Path) -> str:
    return f"python -m helpers download --corpora {name} --data-dir {shlex.quote(str(root))}"


def _user_error(name: str, root: Path, err: Exception) -> UserError:
    """Turn a loader's MissingFile/CorruptFile into a message naming the file and the fix."""
    fix = _fetch_hint(name, root)
    if isinstance(err, MissingFile):
        path = Path(err.args[0])
        source = read_sources().get(name)
        url = ""
        if source is not None:
            try:
                rel = path.relative_to(inside(root, source.folder)).as_posix()
            except ValueError:
                rel = None
            url = f" (public source: {source.address(rel if source.format == 'file' else None)})"
        return UserError(f"corpus {name!r}: missing file {path}{url}; fetch it with: {fix}")
    path, line, problem = err.args
    return UserError(
        f"corpus {name!r}: {path}, line {line}: {problem}; the file looks truncated "
        f"or corrupt, so re-download it with: {fix}"
    )


@functools.cache
def _parsed(name: str, root: Path, stamp: str) -> pd.DataFrame:
    """Read and clean a corpus once per process and fingerprint; every row carries its split."""
    spec = CORPORA[name]
    try:
        raw = spec.loader(inside(root, spec.folder))
    except (MissingFile, CorruptFile) as err:
        raise _user_error(name, root, err) from None
    check_rows(name, len(raw), verify_corpus(name, root), root)
    df = clean_frame(raw, spec.normalise)
    if spec.split == "hash":
        keys = df["group"] if "group" in df else df["id"]
        df["split"] = [hash_split(str(k)) for k in keys]
    return df


@functools.cache
def _prepared(name: str, task: str, root: Path, stamp: str):
    """All splits of a corpus for a task: (frame with a split column, {split: summary})."""
    spec = CORPORA[name]
    mapping = spec.labels[task]
    df = _parsed(name, root, stamp).copy()
    unknown = set(df["raw_label"]) - set(mapping)
    if unknown:
        raise UserError(
            f"corpus {name!r}: labels {sorted(map(str, unknown))} have no mapping "
            f"for task {task!r}; re-download with: {_fetch_hint(name, root)}"
        )
    index = {n: i for i, n in enumerate(TASKS[task])}
    df["label"] = df["raw_label"].map(lambda v: index.get(mapping[v]))
    reasons = drop_reasons(df)
    dropped_labels = [k for k, v in mapping.items() if v is None]
    summaries = {
        s: count_drops(df[df["split"] == s], reasons[df["split"] == s], dropped_labels)
        for s in SPLITS
    }
    kept = df[reasons.isna()].assign(label=lambda d: d["label"].astype("int64"), source=name)
    for s in SPLITS:
        counts = class_counts(kept.loc[kept["split"] == s, "label"], TASKS[task])
        summaries[s].update(counts)
        empty = [k.removeprefix("class:") for k, v in counts.items() if v == 0]
        if empty:
            raise UserError(
                f"corpus {name!r} ({task}), {s} split: no {' or '.join(empty)} rows "
                f"({summaries[s]['kept']} kept of {summaries[s]['raw']}); the files under "
                f"{inside(root, spec.folder)} look damaged: re-download with "
                f"{_fetch_hint(name, root)}"
            )
    return kept[COLUMNS + ["split"]].reset_index(drop=True), summaries


def clear_caches() -> None:
    """Forget parsed corpora, e.g. after files under a data root were replaced."""
    _parsed.cache_clear()
    _prepared.cache_clear()


def _resolve(name: str, task: str | None, data_root) -> tuple[str, Path, str]:
    """(task, data root, fingerprint); verifying the files first, so a changed one is refused."""
    if name not in CORPORA:
        raise unknown_name("corpus", name, CORPORA)
    spec = CORPORA[name]
    task = task or spec.tasks[0]
    if task not in spec.tasks:
        raise unknown_name(f"task for corpus {name!r}", task, spec.tasks)
    root = resolve_data_root(data_root).resolve()
    return task, root, verify_corpus(name, root).fingerprint


def load_corpus(name: str, split: str, task: str | None = None, data_root=None) -> Corpus:
    """One split of a registered corpus, labels mapped into the task (default: its first task).

    split: "train", "validation" (or "val") or "test". data_root: default $CBV_DATA_DIR, else
    data/raw/. Files are checked against their known digests first (``integrity``), then the
    corpus is parsed once per process and fingerprint. ``summary`` holds the cleaning counts and
    ``class:<label>`` counts; a split missing a class is refused.
    """
    split = check_split(split)
    task, root, stamp = _resolve(name, task, data_root)
    frame, summaries = _prepared(name, task, root, stamp)
    rows = frame[frame["split"] == split].drop(columns="split").reset_index(drop=True)
    return Corpus(
        name=name,
        split=split,
        task=task,
        label_names=TASKS[task],
        frame=rows,
        summary=dict(summaries[split]),
    )


def corpus_summary(name: str, data_root=None, task: str | None = None) -> pd.DataFrame:
    """Tidy table of cleaning counts: one row per corpus x split x quirk."""
    task, root, stamp = _resolve(name, task, data_root)
    _, summaries = _prepared(name, task, root, stamp)
    rows = [
        {"corpus": name, "split": s, "quirk": q, "count": c}
        for s in SPLITS
        for q, c in summaries[s].items()
    ]
    return pd.DataFrame(rows, columns=["corpus", "split", "quirk", "count"])
