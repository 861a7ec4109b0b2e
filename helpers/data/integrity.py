"""Corpus files checked where they are read: each against its known SHA-256, cheaply.

Known digests come from ``data/sources.toml``; a data root's own ``SHA256SUMS`` (lines
``<sha256>  ./<folder>/<path>``, the format of ``../shared/data/SHA256SUMS``; a folder digest
as ``./<folder>/<path>/``) takes precedence for the files it lists. That file is how a user
accepts a changed upstream file on purpose, and how the team's fixture corpora verify.

Digests are cached in memory by path, size and modification time (``helpers.files``), so a
corpus is hashed once per process, and again only when a file changes.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from helpers.data.sources import Source, read_sources
from helpers.errors import UserError
from helpers.files import sha256_cached, sha256_folder_cached, sha256_text
from helpers.paths import SOURCES_FILE

SUMS = "SHA256SUMS"  # a data root's own digests, taking precedence over data/sources.toml


@dataclass(frozen=True)
class Known:
    """The digest a file or folder must have, and where that digest comes from."""

    sha256: str
    origin: str  # the file that lists it
    count: int | None = None  # folders: how many files (None: not listed)
    suffix: str = ".txt"  # folders: which files count


def read_sums(root: Path) -> dict[str, str]:
    """``root/SHA256SUMS`` as {path under the root: digest}; empty when the file is absent."""
    path = Path(root) / SUMS
    if not path.is_file():
        return {}
    sums = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        digest, _, name = line.strip().partition(" ")
        name = name.strip().lstrip("*").removeprefix("./")
        if len(digest) != 64 or not name:
            raise UserError(
                f"{path}, line {n}: expected '<sha256>  ./<path>', got {line.strip()!r}; "
                "fix the line (`sha256sum ./<path>` writes it)"
            )
        sums[name] = digest.lower()
    return sums


def known_digests(source: Source, root: Path) -> dict[str, Known]:
    """Every file and folder of ``source`` (relative to its folder) with the digest it must have."""
    sums = read_sums(root)
    local = str(Path(root) / SUMS)
    known: dict[str, Known] = {}
    for rel, digest in source.files.items():
        own = sums.get(f"{source.folder}/{rel}")
        known[rel] = Known(own, local) if own else Known(digest, str(SOURCES_FILE))
    for rel, want in source.folders.items():
        own = sums.get(f"{source.folder}/{rel}/")
        known[rel + "/"] = (
            Known(own, local, None, want.suffix)
            if own
            else Known(want.sha256, str(SOURCES_FILE), want.count, want.suffix)
        )
    return known


def digest_of(path: Path, rel: str, want: Known) -> tuple[str, int | None]:
    """The digest of a file, or of a folder's ``want.suffix`` files (``rel`` ends in '/')."""
    if rel.endswith("/"):
        return sha256_folder_cached(path, want.suffix) if path.is_dir() else ("(absent)", 0)
    return (sha256_cached(path) if path.is_file() else "(absent)"), None


def accept_hint(root: Path, rel: str, digest: str) -> str:
    """The line a user adds to a data root's SHA256SUMS to accept a changed file on purpose."""
    return f"`{digest}  ./{rel}` in {Path(root) / SUMS}"


@dataclass(frozen=True)
class Check:
    """What verifying a corpus found: a fingerprint of its bytes, and whether all were known."""

    fingerprint: str
    verified: bool  # every file it reads had a known digest, and matched it


def verify_corpus(name: str, root: Path) -> Check:
    """Check every present file of a corpus against its known digest; refuse a changed one.

    Absent files are left to the loader, which names them and how to fetch them. Returns the
    corpus's fingerprint: a digest of the digests of every file it is read from.
    """
    source = read_sources().get(name)
    if source is None:
        return Check(sha256_text(f"{name}:unregistered"), False)
    base = Path(root) / source.folder
    parts, verified = [], True
    for rel, want in sorted(known_digests(source, root).items()):
        path = base / rel.rstrip("/")
        if not path.exists():
            verified = False
            continue
        got, count = digest_of(path, rel, want)
        parts.append(f"{rel}={got}")
        shown = f"{source.folder}/{rel}"
        if got != want.sha256 or (want.count is not None and count != want.count):
            counted = "" if want.count is None else f" ({count} files, expected {want.count})"
            raise UserError(
                f"corpus {name!r}: {base / rel} has SHA-256 {got}{counted}, expected "
                f"{want.sha256} (from {want.origin}); re-download it with `python -m helpers "
                f"download --corpora {name} --data-dir {shlex.quote(str(root))}`, or, if you "
                f"changed it on purpose, accept it by listing {accept_hint(root, shown, got)}"
            )
    if not source.files and not source.folders:
        verified = False
    return Check(sha256_text("\n".join([name, *parts])), verified)


def fingerprint(name: str, root) -> str:
    """A digest of the bytes a corpus is read from, for the keys of stored runs.

    Raises the same error as loading when a file with a known digest was changed.
    """
    return verify_corpus(name, Path(root).resolve()).fingerprint


def check_rows(name: str, rows: int, check: Check, where: Path) -> None:
    """Refuse a corpus without digests that holds far fewer rows than its authors document."""
    source = read_sources().get(name)
    if check.verified or source is None or source.rows is None:
        return
    if rows < MIN_ROWS_SHARE * source.rows:
        raise UserError(
            f"corpus {name!r}: {where} holds {rows:,} rows, far fewer than the "
            f"{source.rows:,} its authors document; a file looks truncated: re-download it "
            f"with `python -m helpers download --corpora {name} --data-dir "
            f"{shlex.quote(str(where.parent))}`"
        )


MIN_ROWS_SHARE = 0.9  # a corpus without digests must hold this share of its documented rows
