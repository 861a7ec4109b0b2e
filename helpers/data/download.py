"""Fetch the corpora from their public homes into the data root, checking every file's SHA-256.

The registry is ``data/sources.toml``: for each corpus its address, format ("file", "tar.gz" or
"zip"), folder under the data root, and the digest of every file it provides. Files land in the
corpus's published layout, the same tree as ``../shared/data``. A file is written to a staging
folder inside the data root, checked, and only then moved into place with ``os.replace``, so a
failed check leaves nothing half-written. Files already present with the right digest are not
fetched again.

Mirror rule (``base_url``, the CLI's ``--base-url``): a "file" source's ``path`` is fetched from
``{base_url}/{folder}/{path}``, and an archive from ``{base_url}/{folder}/{name}`` where ``name``
is the last segment of its public address (``domain_sentiment_data.tar.gz``, ``master.zip``).
"""

from __future__ import annotations

import os
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from helpers.data.sources import FolderDigest, Source, read_sources
from helpers.errors import UserError, unknown_name
from helpers.files import copy_hashed, sha256_file, sha256_folder
from helpers.paths import data_root as resolve_data_root

TIMEOUT_S = 60  # per network operation; a stalled server fails instead of hanging
USER_AGENT = "cbv-helpers-download"  # some hosts refuse urllib's default agent


def _file_ok(path: Path, sha256: str) -> bool:
    return path.is_file() and sha256_file(path) == sha256


def _folder_ok(path: Path, want: FolderDigest) -> bool:
    return path.is_dir() and sha256_folder(path, want.suffix) == (want.sha256, want.count)


def missing_paths(source: Source, root: Path) -> tuple[list[str], list[str]]:
    """The files and folders of ``source`` absent from ``root`` or with the wrong digest."""
    base = root / source.folder
    files = [p for p, d in source.files.items() if not _file_ok(base / p, d)]
    folders = [p for p, d in source.folders.items() if not _folder_ok(base / p, d)]
    return files, folders


def _check(label: str, expected: str, actual: str) -> None:
    if expected != actual:
        raise UserError(
            f"{label}: SHA-256 mismatch, expected {expected}, got {actual}; the "
            "download is corrupt or the source changed, so it was not written; "
            "retry, or check --base-url"
        )


def _fetch(url: str, dest: Path) -> str:
    """Stream ``url`` into ``dest`` and return the SHA-256 of what arrived."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:
            return copy_hashed(resp, dest)
    except urllib.error.HTTPError as e:
        raise UserError(
            f"could not fetch {url}: HTTP {e.code} {e.reason}; check the address "
            "(and --base-url if you gave one)"
        ) from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise UserError(
            f"could not fetch {url}: {reason}; check the network connection "
            "(or use --base-url to fetch from a mirror)"
        ) from e


def _place(staged: Path, dest: Path, staging: Path) -> None:
    """Move a checked file or folder into place; an old folder is swapped out, then removed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_dir():
        # os.replace cannot overwrite a non-empty folder: move the old one into staging first.
        old = Path(tempfile.mkdtemp(dir=staging)) / dest.name
        os.replace(dest, old)
    os.replace(staged, dest)


def _download_files(
    source: Source, paths: list[str], root: Path, staging: Path, base_url: str | None
) -> list[Path]:
    """Fetch the named files of a "file" source one by one, each checked before it is placed."""
    written = []
    for path in paths:
        url = source.address(path, base_url)
        print(f"[{source.name}] {path}: fetching {url}", flush=True)
        staged = staging / "files" / source.folder / path
        staged.parent.mkdir(parents=True, exist_ok=True)
        _check(f"{url} (for {source.folder}/{path})", source.files[path], _fetch(url, staged))
        dest = root / source.folder / path
        _place(staged, dest, staging)
        print(f"[{source.name}] {path}: ok", flush=True)
        written.append(dest)
    return written


def _archive_members(archive: Path, fmt: str):
    """Yield (member name without a leading './', binary file object) for each regular file."""
    if fmt == "zip":
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    with zf.open(info) as f:
                        yield info.filename.removeprefix("./"), f
    else:
        with tarfile.open(archive, "r:gz") as tf:
            for info in tf:
                if info.isfile():
                    yield info.name.removeprefix("./"), tf.extractfile(info)


def _download_archive(
    wanted: list[tuple[Source, list[str], list[str]]],
    root: Path,
    staging: Path,
    base_url: str | None,
) -> list[Path]:
    """Fetch one archive, unpack the wanted files and folders, check all, then place all."""
    first = wanted[0][0]
    url = first.address(base_url=base_url)
    archive = staging / url.rsplit("/", 1)[-1]
    print(f"[{', '.join(s.name for s, _, _ in wanted)}] fetching {url}", flush=True)
    _fetch(url, archive)  # archives are not checked: GitHub rebuilds its zips, files are stable

    # member name -> (source, path) for files; member folder -> (source, path) for folders
    files = {s.member_prefix + p: (s, p) for s, ps, _ in wanted for p in ps}
    folders = {s.member_prefix + p + "/": (s, p) for s, _, ps in wanted for p in ps}
    digests = {}
    try:
        for member, f in _archive_members(archive, first.format):
            if member in files:
                s, p = files[member]
                digests[member] = copy_hashed(f, staging / "files" / s.folder / p)
                continue
            head, _, tail = member.rpartition("/")
            if head + "/" in folders:
                s, p = folders[head + "/"]
                if tail.endswith(s.folders[p].suffix):
                    copy_hashed(f, staging / "files" / s.folder / p / tail)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise UserError(
            f"{url} is not a readable {first.format} archive ({e}); the download is "
            "corrupt or the address serves something else; nothing was written; "
            "retry, or check --base-url"
        ) from e

    to_place = []
    for member, (s, p) in files.items():
        if member not in digests:
            raise UserError(f"{url} has no member {member}; check the address or --base-url")
        _check(f"{member} in {url}", s.files[p], digests[member])
        to_place.append((s, p))
    for member, (s, p) in folders.items():
        staged = staging / "files" / s.folder / p
        want = s.folders[p]
        got = sha256_folder(staged, want.suffix) if staged.is_dir() else ("(no files)", 0)
        if got[1] != want.count:
            raise UserError(
                f"{member} in {url}: expected {want.count} {want.suffix} files, "
                f"found {got[1]}; nothing was written; retry, or check --base-url"
            )
        _check(f"{member}*{want.suffix} in {url}", want.sha256, got[0])
        to_place.append((s, p))

    written = []
    for s, p in to_place:
        dest = root / s.folder / p
        _place(staging / "files" / s.folder / p, dest, staging)
        print(f"[{s.name}] {p}: ok", flush=True)
        written.append(dest)
    return written


def download_corpora(names=None, data_root=None, base_url: str | None = None) -> list[Path]:
    """Fetch the named corpora (default: all) into the data root; return the paths written.

    Files already there with the right digest are kept, so a second run writes nothing and
    returns an empty list. ``base_url`` fetches from a mirror (rule in the module docstring).
    """
    sources = read_sources()
    names = list(names) if names else list(sources)
    for n in names:
        if n not in sources:
            raise unknown_name("corpus", n, sources)
    root = resolve_data_root(data_root)
    root.mkdir(parents=True, exist_ok=True)

    plain, archives = [], {}
    for n in dict.fromkeys(names):  # keeps order, drops repeats
        s = sources[n]
        files, folders = missing_paths(s, root)
        for p in sorted(set(s.files) - set(files)) + sorted(set(s.folders) - set(folders)):
            print(f"[{n}] {p}: already present, digest ok", flush=True)
        if not files and not folders:
            continue
        if s.format == "file":
            plain.append((s, files))
        else:
            # Corpora sharing one archive (the four Amazon domains) fetch it once.
            archives.setdefault(s.address(base_url=base_url), []).append((s, files, folders))

    written = []
    # Staging inside the data root keeps os.replace on one file system, hence atomic.
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
        staging = Path(tmp)
        for s, files in plain:
            written += _download_files(s, files, root, staging, base_url)
        for wanted in archives.values():
            written += _download_archive(wanted, root, staging, base_url)
    if not written:
        print("nothing to download: every file is present with the right digest", flush=True)
    return written
