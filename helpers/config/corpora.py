"""A researcher's own corpora, declared in experiments.yaml: a local table or a hub dataset.

An experiment's ``source`` or ``target`` is a built-in corpus name (``helpers.data.corpora``) or
a mapping, resolved by ``helpers.data.pools``:

- a local file: ``{path, text, label}`` plus optional ``label_names``, ``threshold``,
  ``classes`` (file label -> class name; unlisted labels are dropped), ``id``, ``split`` (column
  names), ``sep`` (a CSV's separator; default: read from its header) and ``name``; CSV, TSV,
  JSON Lines or Parquet by extension; a relative path is taken from the repository root.
- a hub dataset: ``{hub, config, text, label}`` plus optional ``label_names`` and ``name``.

Both validate themselves here (torch-free, no file is read); the data layer checks the file.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

from helpers.errors import UserError
from helpers.paths import ROOT

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".pq")  # see data/tables.py
SEPARATED = (".csv", ".tsv")  # the formats a ``sep`` applies to


def _names(value, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list | tuple)
        or len(value) < 2
        or not all(isinstance(v, str) and v for v in value)
        or len(set(value)) != len(value)
    ):
        raise UserError(
            f"{where}.label_names: expected a list of two or more distinct names, got {value!r}; "
            "list the class names in label-index order, e.g. [negative, positive]"
        )
    return tuple(value)


def _column(value, key: str, where: str, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise UserError(
            f"{where}.{key}: expected a column name, got {value!r}; name the column of the file"
        )
    return value


@dataclass(frozen=True)
class TableCorpus:
    """A local CSV, TSV, JSON Lines or Parquet file of texts and labels."""

    path: str  # relative to the repository root, or absolute
    text: str  # column of texts
    label: str  # column of labels: integer indices, label names, or numbers (with threshold)
    label_names: tuple[str, ...] | None = None  # class names in index order
    threshold: float | None = None  # labels >= threshold are class 1, others class 0
    # file label -> class name (null: dropped); labels not listed are dropped too, and counted.
    # YAML gives a mapping; it is kept as ((label, name), ...) so the declaration stays hashable.
    classes: tuple[tuple[str | int, str | None], ...] | None = None
    id: str | None = None  # column of unique ids (default: row numbers)
    split: str | None = None  # column of train/validation/test (default: 80/10/10 by hash)
    name: str | None = None  # name in tables and figures (default: the file's stem)
    sep: str | None = None  # a CSV's field separator (default: the one its header splits by)
    where: str = ""  # where it was declared, for messages

    def __post_init__(self):
        w = self.where or "table corpus"
        if not isinstance(self.path, str) or not self.path:
            raise UserError(f"{w}.path: expected a file path, got {self.path!r}")
        suffix = Path(self.path.removesuffix(".gz")).suffix
        if suffix not in TABLE_SUFFIXES:
            raise UserError(
                f"{w}.path: {self.path!r} is not a table file; use one of "
                f"{', '.join(TABLE_SUFFIXES)} (optionally .gz)"
            )
        for key in ("text", "label"):
            _column(getattr(self, key), key, w)
        for key in ("id", "split", "name"):
            _column(getattr(self, key), key, w, required=False)
        object.__setattr__(self, "label_names", _names(self.label_names, w))
        if self.threshold is not None:
            t = self.threshold
            if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
                raise UserError(f"{w}.threshold: expected a number, got {t!r}")
            if self.label_names is not None and len(self.label_names) != 2:
                raise UserError(f"{w}: a threshold makes two classes; give two label_names")
        if self.classes is not None:
            object.__setattr__(self, "classes", _classes(self, w))
        if self.sep is not None:
            if not isinstance(self.sep, str) or len(self.sep) != 1 or self.sep in '"\r\n':
                raise UserError(
                    f"{w}.sep: expected one separating character such as ';' or '\\t', got "
                    f"{self.sep!r}"
                )
            if suffix not in SEPARATED:
                raise UserError(f"{w}.sep: only a CSV or TSV file has a separator; remove sep:")

    @property
    def file(self) -> Path:
        """The file, a relative path taken from the repository root."""
        p = Path(self.path).expanduser()
        return p if p.is_absolute() else ROOT / p

    @property
    def corpus_name(self) -> str:
        return self.name or Path(self.path.removesuffix(".gz")).stem


def _classes(decl: TableCorpus, w: str) -> tuple[tuple[str | int, str | None], ...]:
    """A declaration's ``classes`` checked: labels to class names (or null), two names or more."""
    value = decl.classes
    pairs = list(value.items()) if isinstance(value, dict) else value
    fix = "map the file's labels to class names, e.g. {neg: negative, pos: positive}"
    if not isinstance(pairs, list | tuple) or not all(
        isinstance(p, list | tuple) and len(p) == 2 for p in pairs
    ):
        raise UserError(f"{w}.classes: expected a mapping, got {value!r}; {fix}")
    for label, name in pairs:
        if isinstance(label, bool) or not isinstance(label, str | int):
            raise UserError(f"{w}.classes: label {label!r} is not text or a whole number; {fix}")
        if name is not None and (not isinstance(name, str) or not name):
            raise UserError(f"{w}.classes: {label!r} maps to {name!r}, not a class name; {fix}")
    names = {n for _, n in pairs if n is not None}
    if len(names) < 2:
        raise UserError(f"{w}.classes: maps to {len(names)} class(es); a classifier needs two")
    if decl.threshold is not None:
        raise UserError(f"{w}: give classes: or threshold:, not both")
    if decl.label_names is not None and not names <= set(decl.label_names):
        extra = sorted(names - set(decl.label_names))
        raise UserError(
            f"{w}.classes: {extra[0]!r} is not in label_names {list(decl.label_names)}; "
            "map to those names"
        )
    return tuple((label, name) for label, name in pairs)


@dataclass(frozen=True)
class HubCorpus:
    """A Hugging Face hub dataset (downloads cached under <data root>/hub)."""

    hub: str  # dataset id, e.g. "imdb"
    config: str | None = None
    text: str = "text"
    label: str = "label"
    label_names: tuple[str, ...] | None = None  # renames the dataset's classes, in index order
    name: str | None = None  # default: the dataset id's last part
    where: str = ""

    def __post_init__(self):
        w = self.where or "hub corpus"
        _column(self.hub, "hub", w)
        for key in ("text", "label"):
            _column(getattr(self, key), key, w)
        for key in ("config", "name"):
            _column(getattr(self, key), key, w, required=False)
        object.__setattr__(self, "label_names", _names(self.label_names, w))

    @property
    def corpus_name(self) -> str:
        return self.name or self.hub.rsplit("/", 1)[-1]


Declared = TableCorpus | HubCorpus


def declaration(value, where: str) -> str | Declared:
    """A built-in corpus name as given, or a mapping as a TableCorpus (``path``) or HubCorpus."""
    if isinstance(value, str) and value:
        return value
    if not isinstance(value, dict):
        raise UserError(
            f"{where}: expected a corpus name or a mapping with path: or hub:, got {value!r}; "
            "see the README's 'Your own data'"
        )
    kind = TableCorpus if "path" in value else HubCorpus if "hub" in value else None
    if kind is None:
        raise UserError(
            f"{where}: a declared corpus needs path: (a local file) or hub: (a dataset id); "
            f"got keys {', '.join(map(str, value))}"
        )
    known = [f.name for f in fields(kind) if f.name != "where"]
    unknown = [k for k in value if k not in known]
    if unknown:
        raise UserError(
            f"{where}: unknown key {unknown[0]!r}; a {kind.__name__} takes {', '.join(known)}"
        )
    missing = [f.name for f in fields(kind) if f.default is MISSING and f.name not in value]
    if missing:
        raise UserError(f"{where}: missing key {missing[0]!r}; add {missing[0]}: (a column name)")
    return kind(**value, where=where)


def corpus_name(corpus: str | Declared) -> str:
    """The name a corpus goes by in tables and figures."""
    return corpus if isinstance(corpus, str) else corpus.corpus_name


def to_config(corpus: str | Declared):
    """JSON form for a run's configuration: the name, or the declaration's settings."""
    if isinstance(corpus, str):
        return corpus
    out = {k: v for k, v in asdict(corpus).items() if k != "where" and v is not None}
    if isinstance(corpus, TableCorpus):
        out["path"] = str(corpus.file)
    return out
