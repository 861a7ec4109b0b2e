"""Parsers of the corpora's published file formats: each reads one corpus folder into a frame.

A parser returns columns id, text, raw_label and either split (official splits) or group (the
key of the hash split); boolean ``q_<quirk>`` columns are counted into the corpus summary. An
absent file raises ``MissingFile`` and a malformed one ``CorruptFile``; ``helpers.data.corpora``
turns both into one-line errors that name the fix.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path

import pandas as pd


class MissingFile(Exception):
    """Raised by a loader for an absent file; turned into a UserError naming the fix."""


class CorruptFile(Exception):
    """Raised by a loader for a truncated or malformed file: (path, line, problem)."""


_WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def decode_utf8(data: bytes, path: Path) -> str:
    """Bytes as strict UTF-8 text (a UTF-8 byte order mark dropped), or ``CorruptFile``.

    Bytes in another encoding are an error, never U+FFFD, and so are NUL bytes, which no text
    holds (a binary file, or UTF-16 without its byte order mark). The error names the line and
    the byte offset in the file, counted from 0.
    """

    def line(at: int) -> int:
        return data.count(b"\n", 0, at) + 1

    if data.startswith(_WIDE_BOMS):
        problem = "a UTF-16 or UTF-32 byte order mark at byte offset 0 is not valid UTF-8"
        raise CorruptFile(path, 1, problem)
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[start:].decode("utf-8")
    except UnicodeDecodeError as e:
        at = start + e.start
        problem = f"byte 0x{data[at]:02x} at byte offset {at} is not valid UTF-8"
        problem += " (another encoding?)"
        raise CorruptFile(path, line(at), problem) from None
    at, nul = data.find(b"\0"), b"\0"
    if at >= 0:
        raise CorruptFile(
            path,
            line(at),
            f"{data.count(nul)} NUL byte(s), the first at byte offset {at} (no text holds one: "
            "a binary file, or UTF-16 without its byte order mark?)",
        )
    return text


def _read_text(path: Path) -> str:
    """The file decoded strictly as UTF-8 (``decode_utf8``)."""
    if not path.is_file():
        raise MissingFile(path)
    return decode_utf8(path.read_bytes(), path)


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
            yield opened[0], text[opened[1] : m.start()]
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
            rows.append(
                {
                    "id": key if seen[key] == 1 else f"{key}#{seen[key]}",
                    "text": fields.get("review_text", ""),
                    "raw_label": polarity,
                    "q_duplicate_id_suffixed": seen[key] > 1,
                }
            )
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
            raise CorruptFile(
                short,
                min(len(texts), len(labels)) + 1,
                f"{label_path.name} has {len(labels)} lines but {text_path.name} has {len(texts)}",
            )
        frames.append(
            pd.DataFrame(
                {
                    "id": [f"{stem}-{i}" for i in range(1, len(texts) + 1)],
                    "text": texts,
                    "raw_label": [
                        _to_int(v, label_path, i, {0, 1}) for i, v in enumerate(labels, 1)
                    ],
                    "split": split,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _csv_rows(path: Path, required: tuple[str, ...]):
    """Yield (line number, {column: value}) of a CSV, checking the header and field counts."""
    with io.StringIO(_read_text(path), newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise CorruptFile(path, 1, "the file is empty")
        missing = [c for c in required if c not in header]
        if missing:
            raise CorruptFile(path, 1, f"the header lacks column(s) {', '.join(missing)}")
        for row in reader:
            if len(row) != len(header):
                raise CorruptFile(
                    path, reader.line_num, f"{len(row)} fields where the header has {len(header)}"
                )
            yield reader.line_num, dict(zip(header, row))


def read_davidson(folder: Path) -> pd.DataFrame:
    """Davidson et al. labeled_data.csv: unnamed index column, 'class' 0/1/2, 'tweet'."""
    path = folder / "data" / "labeled_data.csv"
    rows = [
        {"id": r[""], "text": r["tweet"], "raw_label": _to_int(r["class"], path, n, {0, 1, 2})}
        for n, r in _csv_rows(path, ("", "class", "tweet"))
    ]
    return pd.DataFrame(rows, columns=["id", "text", "raw_label"])


STORMFRONT_LABELS = {"hate", "noHate", "relation", "idk/skip"}


def read_stormfront(folder: Path) -> pd.DataFrame:
    """de Gibert et al.: annotations_metadata.csv plus one all_files/<file_id>.txt per sentence."""
    path = folder / "annotations_metadata.csv"
    rows = []
    for n, r in _csv_rows(path, ("file_id", "label")):
        if r["label"] not in STORMFRONT_LABELS:
            raise CorruptFile(
                path, n, f"label {r['label']!r} is not one of {sorted(STORMFRONT_LABELS)}"
            )
        text = _read_text(folder / "all_files" / f"{r['file_id']}.txt")
        rows.append(
            {
                "id": r["file_id"],
                "text": text,
                "raw_label": r["label"],
                "group": r["file_id"].split("_")[0],
            }
        )
    return pd.DataFrame(rows, columns=["id", "text", "raw_label", "group"])
