"""Corpus files checked where they are read: each against its known SHA-256, cheaply.

Known digests come from ``data/sources.toml``; a data root's own ``SHA256SUMS`` (lines
``<sha256>  ./<folder>/<path>``, the format of ``../shared/data/SHA256SUMS``; a folder digest
as ``./<folder>/<path>/``) takes precedence for the files it lists. That file is how a user
accepts a changed upstream file on purpose, and how the team's fixture corpora verify.

Digests are cached in memory by path, size and modification time (``helpers.files``), so a
corpus is hashed once per process, and again only when a file changes.

Row counts back the digests up: a corpus whose bytes are not the published ones (no digest, or
one the data root accepts) must hold nearly the rows its authors document, or those its data
root's ``ROWCOUNTS`` (lines ``<rows>  <corpus>``) accepts for a sample on purpose.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from helpers.data.sources import Source, read_sources
from helpers.errors import UserError
from helpers.files import sha256_cached, sha256_folder_cached, sha256_text
from helpers.paths import SOURCES_FILE, inside

SUMS = "SHA256SUMS"  # a data root's own digests, taking precedence over data/sources.toml


@dataclass(frozen=True)
class Known:
    """The digest a file or folder must have, and where that digest comes from."""

    sha256: str
    origin: str  # the file that lists it
    count: int | None = None  # folders: how many files (None: not listed)
    suffix: str = ".txt"  # folders: which files count


def _two_field_lines(path: Path):
    """(line number, first field, the rest, the line) of each non-blank line of a data root's
    list file (SHA256SUMS, ROWCOUNTS); nothing when the file is absent."""
    if not path.is_file():
        return
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            first, _, rest = line.strip().partition(" ")
            yield n, first, rest, line.strip()


def read_sums(root: Path) -> dict[str, str]:
    """``root/SHA256SUMS`` as {path under the root: digest}; empty when the file is absent."""
    path = inside(root, SUMS)
    sums = {}
    for n, digest, name, line in _two_field_lines(path):
        name = name.strip().lstrip("*").removeprefix("./")
        if len(digest) != 64 or not name:
            raise UserError(
                f"{path}, line {n}: expected '<sha256>  ./<path>', got {line!r}; "
                "fix the line (`sha256sum ./<path>` writes it)"
            )
        sums[name] = digest.lower()
    return sums


def known_digests(source: Source, root: Path) -> dict[str, Known]:
    """Every file and folder of ``source`` (relative to its folder) with the digest it must have."""
    sums = read_sums(root)
    local = str(inside(root, SUMS))
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
    return f"`{digest}  ./{rel}` in {inside(root, SUMS)}"


@dataclass(frozen=True)
class Check:
    """What verifying a corpus found: a fingerprint of its bytes, and whether they are the
    published ones."""

    fingerprint: str
    # Every file it reads is present with the digest data/sources.toml publishes. A digest a
    # data root's SHA256SUMS accepts instead vouches for the bytes, not for their row count.
    published: bool


def verify_corpus(name: str, root: Path) -> Check:
    """Check every present file of a corpus against its known digest; refuse a changed one.

    Absent files are left to the loader, which names them and how to fetch them. Returns the
    corpus's fingerprint: a digest of the digests of every file it is read from.
    """
    source = read_sources().get(name)
    if source is None:
        return Check(sha256_text(f"{name}:unregistered"), False)
    base = inside(root, source.folder)
    parts, published = [], True
    public = {**source.files, **{f"{r}/": f.sha256 for r, f in source.folders.items()}}
    for rel, want in sorted(known_digests(source, root).items()):
        path = inside(base, rel.rstrip("/"))
        if not path.exists():
            published = False
            continue
        got, count = digest_of(path, rel, want)
        parts.append(f"{rel}={got}")
        published = published and got == public[rel]
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
        published = False
    return Check(sha256_text("\n".join([name, *parts])), published)


def fingerprint(name: str, root) -> str:
    """A digest of the bytes a corpus is read from, for the keys of stored runs.

    Raises the same error as loading when a file with a known digest was changed.
    """
    return verify_corpus(name, Path(root).resolve()).fingerprint


ROWS = "ROWCOUNTS"  # a data root's accepted row counts, taking precedence over sources.toml


def read_rowcounts(root: Path) -> dict[str, int]:
    """``root/ROWCOUNTS`` (lines ``<rows>  <corpus>``) as {corpus: rows}; empty when absent."""
    path = inside(root, ROWS)
    counts = {}
    for n, rows, name, line in _two_field_lines(path):
        if not rows.isdigit() or not name.strip():
            raise UserError(
                f"{path}, line {n}: expected '<rows>  <corpus>', got {line!r}; fix the line"
            )
        counts[name.strip()] = int(rows)
    return counts


def check_rows(name: str, rows: int, check: Check, root: Path) -> None:
    """Refuse a corpus whose bytes are not the published ones (no digest, or one a data root
    accepted) when it holds far fewer rows than its authors document, or than the data root's
    ROWCOUNTS accepts; the refusal says how to accept a smaller corpus on purpose."""
    source = read_sources().get(name)
    if check.published or source is None:
        return
    accepted = read_rowcounts(root).get(name)
    expected = accepted if accepted is not None else source.rows
    if expected is None or rows >= MIN_ROWS_SHARE * expected:
        return
    whose = f"{inside(root, ROWS)} accepts" if accepted is not None else "its authors document"
    raise UserError(
        f"corpus {name!r}: {inside(root, source.folder)} holds {rows:,} rows, far fewer than "
        f"the {expected:,} {whose}; a file looks truncated: re-download it with `python -m "
        f"helpers download --corpora {name} --data-dir {shlex.quote(str(root))}`, or, if it "
        f"is meant to be smaller (a sample), accept its count by listing `{rows}  {name}` in "
        f"{inside(root, ROWS)}"
    )


MIN_ROWS_SHARE = 0.9  # a corpus must hold this share of its documented (or accepted) rows
