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

import csv
import functools
import hashlib
import html
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd

from helpers.download import read_sources
from helpers.errors import UserError, unknown_name
from helpers.paths import data_root as resolve_data_root

TASKS: dict[str, tuple[str, ...]] = {
    "sentiment": ("negative", "positive"),
    "hate": ("not_hate", "hate"),
    "offensive": ("not_offensive", "offensive"),
}
SPLITS = ("train", "validation", "test")        # also the order of overlap removal
SPLIT_ALIASES = {"val": "validation"}
SPLIT_PERCENT = {"train": 80, "validation": 10, "test": 10}   # for corpora without official splits
COLUMNS = ["id", "text", "label", "source"]
CUSTOM_TASK = "custom"                           # task of a table whose labels match no TASKS entry
DROPS = ("blank_dropped", "duplicate_dropped", "conflicting_duplicate_dropped", "overlap_dropped")


class MissingFile(Exception):
    """Raised by a loader for an absent file; turned into a UserError naming the fix."""


class CorruptFile(Exception):
    """Raised by a loader for a truncated or malformed file: (path, line, problem)."""


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
    split: str = "hash"                     # "official" or "hash"
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


# ---------------------------------------------------------------- text cleaning

_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MENTION = re.compile(r"(?<![\w@])@[A-Za-z0-9_]+")
_RETWEET = re.compile(r"(?:\bRT\s+)+(?=@)")   # "RT RT @a" happens too


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
    return replaced.strip(), {"html_unescaped": unescaped != text,
                              "control_char_replaced": replaced != unescaped}


def normalise_tweet(text: str) -> tuple[str, dict[str, bool]]:
    """Anonymise @handles as TweetEval does and drop the retweet marker before a mention."""
    anonymised = _MENTION.sub("@user", text)
    no_rt = _RETWEET.sub("", anonymised)
    return no_rt.strip(), {"mention_anonymised": anonymised != text,
                           "retweet_marker_removed": no_rt != anonymised}


def hash_split(key: str) -> str:
    """Deterministic split of a key: SHA-256 into 100 buckets, cut at SPLIT_PERCENT."""
    bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % 100
    edge = 0
    for split in SPLITS:
        edge += SPLIT_PERCENT[split]
        if bucket < edge:
            return split
    return SPLITS[-1]


# ---------------------------------------------------------------- loaders (published layouts)

def _read_text(path: Path) -> str:
    if not path.is_file():
        raise MissingFile(path)
    return path.read_bytes().decode("utf-8", errors="replace")


def _to_int(value: str, path: Path, line: int, allowed) -> int:
    try:
        label = int(value.strip())
    except ValueError:
        raise CorruptFile(path, line, f"label {value.strip()!r} is not an integer") from None
    if label not in allowed:
        raise CorruptFile(path, line, f"label {label} is not one of {sorted(allowed)}")
    return label


_REVIEW_TAG = re.compile(r"<(/?)review>")
_FIELD = re.compile(r"<([a-z_]+)>(.*?)</\1>", re.S)


def _reviews(text: str, path: Path):
    """Yield (line number, body) of each <review>...</review>; tolerant of any root element."""
    line, pos, opened = 1, 0, None
    for m in _REVIEW_TAG.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        if not m.group(1):
            if opened is not None:
                raise CorruptFile(path, opened[0], "<review> is not closed before the next one")
            opened = (line, m.end())
        elif opened is None:
            raise CorruptFile(path, line, "</review> without a matching <review>")
        else:
            yield opened[0], text[opened[1]:m.start()]
            opened = None
    if opened is not None:
        raise CorruptFile(path, opened[0], "<review> is never closed (file truncated?)")


def read_amazon(folder: Path, domain: str, subdir: str) -> pd.DataFrame:
    """One Multi-Domain Sentiment domain: negative.review and positive.review (pseudo-XML)."""
    rows, seen = [], {}
    for polarity in ("negative", "positive"):
        path = folder / "sorted_data_acl" / subdir / f"{polarity}.review"
        for line, body in _reviews(_read_text(path), path):
            fields = {}
            for m in _FIELD.finditer(body):
                fields.setdefault(m.group(1), m.group(2).strip())
            if "<review_text>" in body and "review_text" not in fields:
                raise CorruptFile(path, line, "<review_text> is not closed")
            uid = fields.get("unique_id") or f"{polarity}.review:{line}"
            key = f"{domain}:{uid}"
            # A repeated unique_id gets a '#n' suffix in file order, so ids stay unique and stable.
            seen[key] = seen.get(key, 0) + 1
            rows.append({"id": key if seen[key] == 1 else f"{key}#{seen[key]}",
                         "text": fields.get("review_text", ""), "raw_label": polarity,
                         "q_duplicate_id_suffixed": seen[key] > 1})
    return pd.DataFrame(rows)


def _lines(path: Path) -> list[str]:
    """Lines split on '\\n' only: a tweet may hold other Unicode line breaks."""
    text = _read_text(path)
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def read_tweeteval(folder: Path, task_dir: str) -> pd.DataFrame:
    """A TweetEval task: line i of {split}_text.txt pairs with line i of {split}_labels.txt."""
    frames = []
    for split, stem in (("train", "train"), ("validation", "val"), ("test", "test")):
        base = folder / "datasets" / task_dir
        text_path, label_path = base / f"{stem}_text.txt", base / f"{stem}_labels.txt"
        texts, labels = _lines(text_path), _lines(label_path)
        if len(texts) != len(labels):
            short = label_path if len(labels) < len(texts) else text_path
            raise CorruptFile(short, min(len(texts), len(labels)) + 1,
                              f"{label_path.name} has {len(labels)} lines but {text_path.name} "
                              f"has {len(texts)}")
        frames.append(pd.DataFrame({
            "id": [f"{stem}-{i}" for i in range(1, len(texts) + 1)],
            "text": texts,
            "raw_label": [_to_int(v, label_path, i, {0, 1}) for i, v in enumerate(labels, 1)],
            "split": split}))
    return pd.concat(frames, ignore_index=True)


def _csv_rows(path: Path, required: tuple[str, ...]):
    """Yield (line number, {column: value}) of a CSV, checking the header and field counts."""
    if not path.is_file():
        raise MissingFile(path)
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise CorruptFile(path, 1, "the file is empty")
        missing = [c for c in required if c not in header]
        if missing:
            raise CorruptFile(path, 1, f"the header lacks column(s) {', '.join(missing)}")
        for row in reader:
            if len(row) != len(header):
                raise CorruptFile(path, reader.line_num,
                                  f"{len(row)} fields where the header has {len(header)}")
            yield reader.line_num, dict(zip(header, row))


def read_davidson(folder: Path) -> pd.DataFrame:
    """Davidson et al. labeled_data.csv: unnamed index column, 'class' 0/1/2, 'tweet'."""
    path = folder / "data" / "labeled_data.csv"
    rows = [{"id": r[""], "text": r["tweet"], "raw_label": _to_int(r["class"], path, n, {0, 1, 2})}
            for n, r in _csv_rows(path, ("", "class", "tweet"))]
    return pd.DataFrame(rows, columns=["id", "text", "raw_label"])


STORMFRONT_LABELS = {"hate", "noHate", "relation", "idk/skip"}


def read_stormfront(folder: Path) -> pd.DataFrame:
    """de Gibert et al.: annotations_metadata.csv plus one all_files/<file_id>.txt per sentence."""
    path = folder / "annotations_metadata.csv"
    rows = []
    for n, r in _csv_rows(path, ("file_id", "label")):
        if r["label"] not in STORMFRONT_LABELS:
            raise CorruptFile(path, n, f"label {r['label']!r} is not one of "
                                       f"{sorted(STORMFRONT_LABELS)}")
        text = _read_text(folder / "all_files" / f"{r['file_id']}.txt")
        rows.append({"id": r["file_id"], "text": text, "raw_label": r["label"],
                     "group": r["file_id"].split("_")[0]})
    return pd.DataFrame(rows, columns=["id", "text", "raw_label", "group"])


def _amazon(domain: str, subdir: str) -> CorpusSpec:
    return CorpusSpec(folder="amazon_multidomain",
                      loader=functools.partial(read_amazon, domain=domain, subdir=subdir),
                      labels={"sentiment": {"negative": "negative", "positive": "positive"}})


CORPORA: dict[str, CorpusSpec] = {
    "amazon_books": _amazon("books", "books"),
    "amazon_dvd": _amazon("dvd", "dvd"),
    "amazon_electronics": _amazon("electronics", "electronics"),
    "amazon_kitchen": _amazon("kitchen", "kitchen_&_housewares"),
    "tweeteval_hate": CorpusSpec(
        folder="tweeteval", loader=functools.partial(read_tweeteval, task_dir="hate"),
        labels={"hate": {0: "not_hate", 1: "hate"}}, split="official"),
    "tweeteval_offensive": CorpusSpec(
        folder="tweeteval", loader=functools.partial(read_tweeteval, task_dir="offensive"),
        labels={"offensive": {0: "not_offensive", 1: "offensive"}}, split="official"),
    "davidson": CorpusSpec(
        folder="davidson", loader=read_davidson, normalise=normalise_tweet,
        labels={"hate": {0: "hate", 1: "not_hate", 2: "not_hate"},
                "offensive": {0: "offensive", 1: "offensive", 2: "not_offensive"}}),
    "stormfront": CorpusSpec(
        folder="stormfront", loader=read_stormfront,
        labels={"hate": {"hate": "hate", "noHate": "not_hate", "relation": None,
                         "idk/skip": None}}),
}


# ---------------------------------------------------------------- the shared pipeline

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
                rel = path.relative_to(root / source.folder).as_posix()
            except ValueError:
                rel = None
            url = f" (public source: {source.address(rel if source.format == 'file' else None)})"
        return UserError(f"corpus {name!r}: missing file {path}{url}; fetch it with: {fix}")
    path, line, problem = err.args
    return UserError(f"corpus {name!r}: {path}, line {line}: {problem}; the file looks truncated "
                     f"or corrupt, so re-download it with: {fix}")


def _apply(texts: pd.Series, fn) -> tuple[list[str], pd.DataFrame]:
    out, flags = [], []
    for t in texts:
        cleaned, f = fn(t)
        out.append(cleaned)
        flags.append(f)
    return out, pd.DataFrame(flags, index=texts.index)


def _clean_frame(raw: pd.DataFrame, normalise=None) -> pd.DataFrame:
    """Clean the text column and add one q_<quirk> flag column per change made."""
    df = raw.copy()
    df["text"] = df["text"].fillna("").astype(str)
    steps = [clean_text] + ([normalise] if normalise else [])
    for step in steps:
        texts, flags = _apply(df["text"], step)
        df["text"] = texts
        for col in flags.columns:
            df[f"q_{col}"] = flags[col].astype(bool)
    return df


@functools.lru_cache(maxsize=None)
def _parsed(name: str, root: Path) -> pd.DataFrame:
    """Read and clean a corpus once per process; every row carries its split."""
    spec = CORPORA[name]
    try:
        raw = spec.loader(root / spec.folder)
    except (MissingFile, CorruptFile) as err:
        raise _user_error(name, root, err) from None
    df = _clean_frame(raw, spec.normalise)
    if spec.split == "hash":
        keys = df["group"] if "group" in df else df["id"]
        df["split"] = [hash_split(str(k)) for k in keys]
    return df


def _drop_reasons(df: pd.DataFrame) -> pd.Series:
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
        later = set(df.loc[reason.isna() & df["split"].isin(SPLITS[i + 1:]), "text"])
        reason[reason.isna() & (df["split"] == split) & df["text"].isin(later)] = "overlap_dropped"
    return reason


def _summary(rows: pd.DataFrame, reasons: pd.Series, dropped_labels) -> dict[str, int]:
    summary = {"raw": len(rows)}
    for col in rows.columns:
        if col.startswith("q_"):
            summary[col[2:]] = int(rows[col].sum())
    counts = reasons.value_counts()
    for key in [f"label_dropped:{v}" for v in dropped_labels] + list(DROPS):
        summary[key] = int(counts.get(key, 0))
    summary["kept"] = int(reasons.isna().sum())
    return summary


@functools.lru_cache(maxsize=None)
def _prepared(name: str, task: str, root: Path):
    """All splits of a corpus for a task: (frame with a split column, {split: summary})."""
    spec = CORPORA[name]
    mapping = spec.labels[task]
    df = _parsed(name, root).copy()
    unknown = set(df["raw_label"]) - set(mapping)
    if unknown:
        raise UserError(f"corpus {name!r}: labels {sorted(map(str, unknown))} have no mapping "
                        f"for task {task!r}; re-download with: {_fetch_hint(name, root)}")
    index = {n: i for i, n in enumerate(TASKS[task])}
    df["label"] = df["raw_label"].map(lambda v: index.get(mapping[v]))
    reasons = _drop_reasons(df)
    dropped_labels = [k for k, v in mapping.items() if v is None]
    summaries = {s: _summary(df[df["split"] == s], reasons[df["split"] == s], dropped_labels)
                 for s in SPLITS}
    kept = df[reasons.isna()].assign(label=lambda d: d["label"].astype("int64"), source=name)
    return kept[COLUMNS + ["split"]].reset_index(drop=True), summaries


def clear_caches() -> None:
    """Forget parsed corpora, e.g. after files under a data root were replaced."""
    _parsed.cache_clear()
    _prepared.cache_clear()


def _check_split(split: str) -> str:
    split = SPLIT_ALIASES.get(split, split)
    if split not in SPLITS:
        raise unknown_name("split", split, list(SPLITS) + list(SPLIT_ALIASES))
    return split


def _resolve(name: str, task: str | None, data_root) -> tuple[CorpusSpec, str, Path]:
    if name not in CORPORA:
        raise unknown_name("corpus", name, CORPORA)
    spec = CORPORA[name]
    task = task or spec.tasks[0]
    if task not in spec.tasks:
        raise unknown_name(f"task for corpus {name!r}", task, spec.tasks)
    return spec, task, resolve_data_root(data_root).resolve()


def load_corpus(name: str, split: str, task: str | None = None, data_root=None) -> Corpus:
    """One split of a registered corpus, labels mapped into the task (default: its first task).

    split: "train", "validation" (or "val") or "test". data_root: default $CBV_DATA_DIR, else
    data/raw/. The corpus is parsed once per process and data root.
    """
    split = _check_split(split)
    spec, task, root = _resolve(name, task, data_root)
    frame, summaries = _prepared(name, task, root)
    rows = frame[frame["split"] == split].drop(columns="split").reset_index(drop=True)
    return Corpus(name=name, split=split, task=task, label_names=TASKS[task], frame=rows,
                  summary=dict(summaries[split]))


def corpus_summary(name: str, data_root=None, task: str | None = None) -> pd.DataFrame:
    """Tidy table of cleaning counts: one row per corpus x split x quirk."""
    spec, task, root = _resolve(name, task, data_root)
    _, summaries = _prepared(name, task, root)
    rows = [{"corpus": name, "split": s, "quirk": q, "count": c}
            for s in SPLITS for q, c in summaries[s].items()]
    return pd.DataFrame(rows, columns=["corpus", "split", "quirk", "count"])


# ---------------------------------------------------------------- local tables and the hub

def _task_for(label_names: tuple[str, ...]) -> str:
    return next((t for t, names in TASKS.items() if names == label_names), CUSTOM_TASK)


def _labels_to_index(values: pd.Series, label_names, threshold, where: str):
    """Integer label per row: a threshold on a number, a label name, or an integer index."""
    if threshold is not None:
        numbers = pd.to_numeric(values, errors="coerce")
        bad = numbers.isna()
        if bad.any():
            raise UserError(f"{where}: data row {bad.idxmax() + 1} has label "
                            f"{values[bad.idxmax()]!r}, not a number; fix the file or drop "
                            "the threshold")
        return (numbers >= threshold).astype("int64"), tuple(label_names or ("0", "1"))
    if label_names is not None and values.map(lambda v: isinstance(v, str)).all():
        index = {n: i for i, n in enumerate(label_names)}
        labels = values.map(index)
    else:
        labels = pd.to_numeric(values, errors="coerce")
        labels = labels.where(labels == labels.round())
    bad = labels.isna()
    if bad.any():
        raise UserError(f"{where}: data row {bad.idxmax() + 1} has label {values[bad.idxmax()]!r}, "
                        "not an integer index or label name; fix the file or pass threshold=")
    labels = labels.astype("int64")
    names = tuple(label_names) if label_names else tuple(str(i) for i in range(labels.max() + 1))
    out = ~labels.between(0, len(names) - 1)
    if out.any():
        row = out.idxmax()
        raise UserError(f"{where}: data row {row + 1} has label {labels[row]}, outside "
                        f"0..{len(names) - 1} for labels {names}")
    return labels, names


def frame_to_corpus(df: pd.DataFrame, name: str, split: str | None, text_col: str,
                    label_col: str, label_names=None, threshold=None, id_col=None,
                    where: str = "") -> Corpus:
    """Clean a frame of texts and labels into a Corpus, splitting by hash when it has no split.

    Without ``id_col`` ids are row numbers and the hash split uses the text, so repeated texts
    share a split. With a ``split`` column its values choose the rows; split=None keeps all.
    """
    where = where or name
    missing = [c for c in (text_col, label_col, id_col) if c and c not in df.columns]
    if missing:
        raise UserError(f"{where}: no column(s) {', '.join(missing)}; columns are "
                        f"{', '.join(map(str, df.columns))}")
    if df.empty:
        raise UserError(f"{where}: the table has no rows")
    labels, names = _labels_to_index(df[label_col].reset_index(drop=True), label_names,
                                     threshold, where)
    rows = pd.DataFrame({"id": df[id_col].astype(str).to_numpy() if id_col
                         else [str(i) for i in range(len(df))],
                         "text": df[text_col].to_numpy(), "raw_label": labels.to_numpy()})
    if not rows["id"].is_unique:
        raise UserError(f"{where}: column {id_col!r} has repeated ids; pass a unique id_col")
    rows = _clean_frame(rows)
    if "split" in df.columns:
        rows["split"] = [SPLIT_ALIASES.get(str(s), str(s)) for s in df["split"]]
        bad = set(rows["split"]) - set(SPLITS)
        if bad:
            raise UserError(f"{where}: split values {sorted(bad)} are not {', '.join(SPLITS)}")
    else:
        keys = rows["id"] if id_col else rows["text"]
        rows["split"] = [hash_split(k) for k in keys]
    rows["label"] = rows["raw_label"]
    reasons = _drop_reasons(rows)
    splits = [_check_split(split)] if split else list(SPLITS)
    chosen = rows["split"].isin(splits)
    summary = _summary(rows[chosen], reasons[chosen], [])
    kept = rows[chosen & reasons.isna()].assign(source=name)[COLUMNS].reset_index(drop=True)
    return Corpus(name=name, split=splits[0] if split else "all", task=_task_for(names),
                  label_names=names, frame=kept, summary=summary)


def _read_table(path: Path) -> pd.DataFrame:
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    readers = {".csv": pd.read_csv, ".tsv": functools.partial(pd.read_csv, sep="\t"),
               ".jsonl": functools.partial(pd.read_json, lines=True),
               ".ndjson": functools.partial(pd.read_json, lines=True),
               ".parquet": pd.read_parquet, ".pq": pd.read_parquet}
    base = suffix.removesuffix(".gz")
    if base not in readers:
        raise UserError(f"{path}: unknown table format {suffix!r}; use one of "
                        f"{', '.join(readers)}")
    if not path.is_file():
        raise UserError(f"missing file {path}; check the path")
    try:
        return readers[base](path)
    except (ValueError, OSError) as e:
        raise UserError(f"{path}: could not be read as {base} ({e}); check the file") from e


def load_table(path, text_col: str, label_col: str, label_names=None, threshold=None,
               id_col=None, split=None) -> Corpus:
    """A local CSV, TSV, JSON Lines or Parquet file (by extension) as a Corpus.

    threshold: labels >= threshold become 1, others 0 (for fractional scores). label_names:
    names of the label indices, also used to map string labels. split: one split of the file's
    own "split" column, else of the 80/10/10 hash split; None keeps every row.
    """
    path = Path(path)
    return frame_to_corpus(_read_table(path), path.stem, split, text_col, label_col,
                           label_names, threshold, id_col, where=str(path))


def load_hub(dataset_id: str, split: str, text_col: str = "text", label_col: str = "label",
             config: str | None = None, data_root=None) -> Corpus:
    """A Hugging Face hub dataset (or a local dataset folder) split as a Corpus.

    Uses the dataset's own split ("validation" also finds "val" or "dev"); a dataset with only
    a train split is cut 80/10/10 by hash of the text. Downloads are cached under
    <data root>/hub. Label names come from a ClassLabel feature when there is one.
    """
    import datasets   # slow import; only this function needs it

    split = _check_split(split)
    cache = resolve_data_root(data_root) / "hub"
    try:
        dsd = datasets.load_dataset(dataset_id, config, cache_dir=str(cache))
    except Exception as e:   # the library raises many types; all mean "cannot load this id"
        raise UserError(f"could not load hub dataset {dataset_id!r} (config {config!r}): {e}; "
                        "check the id and config, and the network or HF_HUB_OFFLINE") from e
    candidates = {"validation": ("validation", "val", "dev")}.get(split, (split,))
    found = next((c for c in candidates if c in dsd), None)
    if set(dsd) == {"train"}:
        found = None        # train only: frame_to_corpus cuts it by hash
    elif found is None:
        raise UserError(f"hub dataset {dataset_id!r} has no {split!r} split; it has "
                        f"{', '.join(dsd)}")
    ds = dsd[found or "train"]
    feature = ds.features.get(label_col)
    names = tuple(feature.names) if isinstance(feature, datasets.ClassLabel) else None
    df = ds.to_pandas()
    if found is not None:
        df = df.drop(columns="split", errors="ignore").assign(split=split)
    return frame_to_corpus(df, dataset_id, split, text_col, label_col, label_names=names,
                           where=f"hub dataset {dataset_id!r}")
