"""A declared table file read into a raw frame: its format by extension, its text strictly.

CSV, TSV and JSON Lines (optionally gzipped) are decoded here, not by pandas, so a file in
another encoding, or holding NUL bytes, is refused naming the line and its true byte offset
(``formats.decode_utf8``); pandas reads in chunks and would name an offset within a chunk. A
CSV's separator is the declared ``sep``, else the one of comma, semicolon, tab and bar that
splits its header into the columns the declaration names.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from pathlib import Path

import pandas as pd

from helpers.data.formats import CorruptFile, decode_utf8
from helpers.errors import UserError

SEPARATORS = (",", ";", "\t", "|")  # tried in this order on a CSV's header
TEXT_FORMATS = (".csv", ".tsv", ".jsonl", ".ndjson")
PARQUET = (".parquet", ".pq")


def table_format(path: Path) -> str:
    """The format a file is read as, from its extension (``.csv.gz`` reads as ``.csv``)."""
    path = Path(path)
    return Path(path.name.removesuffix(".gz")).suffix


def _bytes(path: Path, at: str) -> bytes:
    data = path.read_bytes()
    if path.suffix != ".gz":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise UserError(f"{at}: not a whole gzip file ({e}); fetch or compress it again") from None


def sniff_separator(text: str, columns) -> str:
    """The separator that splits the header into fields holding every one of ``columns``."""
    header = text.split("\n", 1)[0].rstrip("\r")
    for sep in SEPARATORS:
        fields = next(csv.reader([header], delimiter=sep), [])
        if all(c in fields for c in columns):
            return sep
    return ","  # none fits: the missing-column error then lists what the header holds


def read_table_file(path, where: str = "", sep: str | None = None, columns=()) -> pd.DataFrame:
    """A CSV, TSV, JSON Lines or Parquet file (by extension) as a frame, or one UserError.

    ``where`` names the declaration in messages; ``columns``, the columns it names, choose a
    CSV's separator when ``sep`` is None.
    """
    path = Path(path)
    base = table_format(path)
    at = f"{where} ({path})" if where else str(path)
    if base not in (*TEXT_FORMATS, *PARQUET):
        formats = ", ".join((*TEXT_FORMATS, *PARQUET))
        raise UserError(f"{at}: unknown table format {base!r}; use one of {formats}")
    if not path.is_file():
        raise UserError(f"{at}: missing file {path}; check the path")
    if base in PARQUET:
        try:
            return pd.read_parquet(path)
        except (ValueError, OSError) as e:
            raise UserError(f"{at}: could not be read as Parquet ({e}); check the file") from e
    try:
        text = decode_utf8(_bytes(path, at), path)
    except CorruptFile as e:
        _, line, problem = e.args
        raise UserError(f"{at}, line {line}: {problem}; save the file as UTF-8 text") from None
    try:
        if base in (".jsonl", ".ndjson"):
            return pd.read_json(io.StringIO(text), lines=True)
        chosen = sep or ("\t" if base == ".tsv" else sniff_separator(text, columns))
        return pd.read_csv(io.StringIO(text), sep=chosen)
    except ValueError as e:  # pandas' parser errors are ValueErrors
        problem = " ".join(str(e).split())
        hint = "" if base in (".jsonl", ".ndjson") else f" read with sep {chosen!r}; set sep: or"
        raise UserError(f"{at}: could not be read as {base} ({problem});{hint} fix the file") from e
