"""The registry of where each corpus comes from: ``data/sources.toml`` read into ``Source``s.

For each corpus: its public home, address, format ("file", "tar.gz" or "zip"), folder under the
data root, and the SHA-256 of every file it provides. Read by the downloader (what to fetch and
check) and by the corpus loaders (where a missing file can be fetched from).
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from helpers.errors import UserError
from helpers.paths import SOURCES_FILE

FORMATS = ("file", "tar.gz", "zip")


@dataclass(frozen=True)
class FolderDigest:
    """One digest for many small files: their bytes concatenated in sorted file-name order."""

    sha256: str
    count: int
    suffix: str = ".txt"


@dataclass(frozen=True)
class Source:
    """Where one corpus comes from and what it provides (one table of data/sources.toml)."""

    name: str
    home: str
    url: str
    format: str
    folder: str
    files: dict[str, str]
    folders: dict[str, FolderDigest] = field(default_factory=dict)
    member_prefix: str = ""
    rows: int | None = None  # rows the authors document (checked when a file has no digest)

    def __post_init__(self):
        if self.format not in FORMATS:
            raise UserError(
                f"{SOURCES_FILE}: [{self.name}] format {self.format!r} is not one of "
                f"{', '.join(FORMATS)}"
            )
        if self.format == "file" and self.folders:
            raise UserError(f"{SOURCES_FILE}: [{self.name}] folders need an archive format")

    def address(self, path: str | None = None, base_url: str | None = None) -> str:
        """The address of ``path`` (a "file" source) or of the archive, public or mirrored."""
        if self.format == "file":
            base = f"{base_url.rstrip('/')}/{self.folder}" if base_url else self.url
            return f"{base}/{path}"
        if base_url:
            return f"{base_url.rstrip('/')}/{self.folder}/{self.url.rsplit('/', 1)[-1]}"
        return self.url


@functools.cache
def read_sources(path: Path = SOURCES_FILE) -> dict[str, Source]:
    """Parse data/sources.toml into {corpus name: Source}."""
    with open(path, "rb") as f:
        tables = tomllib.load(f)
    sources = {}
    for name, t in tables.items():
        folders = {p: FolderDigest(**d) for p, d in t.get("folders", {}).items()}
        sources[name] = Source(
            name=name,
            home=t["home"],
            url=t["url"],
            format=t["format"],
            folder=t["folder"],
            files=dict(t.get("files", {})),
            folders=folders,
            member_prefix=t.get("member_prefix", ""),
            rows=t.get("rows"),
        )
    return sources
