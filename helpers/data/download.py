"""Fetch the corpora from their public homes into the data root with pooch, checking every digest.

The registry is ``data/sources.toml`` (``helpers.data.sources``); a data root's own
``SHA256SUMS`` takes precedence for the files it lists (``helpers.data.integrity``), which is how
a user accepts a changed upstream file on purpose. pooch does the fetching: known hashes,
retries, a cache (a file present with the right digest is not fetched again) and archive
members. Plain files are fetched by pooch straight into the published layout (it downloads to a
temporary name beside the target and moves it into place only once the digest matches).
Archives go to a staging folder inside the data root; their wanted members are unpacked there,
checked, and only then moved into place with ``os.replace``, so a failed check leaves nothing
half-written.

Mirror rule (``base_url``, the CLI's ``--base-url``): a "file" source's ``path`` is fetched from
``{base_url}/{folder}/{path}``, and an archive from ``{base_url}/{folder}/{name}`` where ``name``
is the last segment of its public address (``domain_sentiment_data.tar.gz``, ``master.zip``).
"""

from __future__ import annotations

import logging
import os
import re
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pooch
import requests

from helpers.config.experiments import load_experiment
from helpers.data.integrity import Known, accept_hint, digest_of, known_digests
from helpers.data.sources import Source, read_sources
from helpers.errors import UserError, unknown_name
from helpers.paths import data_root as resolve_data_root
from helpers.paths import inside

TIMEOUT_S = 60  # per network operation; a stalled server fails instead of hanging
RETRIES = 2  # pooch retries a failed or corrupt download this often (waiting 1 s, then 2 s)
USER_AGENT = "cbv-helpers-download"  # some hosts refuse the default agent

logging.getLogger("pooch").setLevel(logging.WARNING)  # we print one line per file ourselves


def _ok(base: Path, rel: str, want: Known) -> bool:
    got, count = digest_of(base / rel.rstrip("/"), rel, want)
    return got == want.sha256 and (want.count is None or count == want.count)


def missing_paths(source: Source, root: Path) -> tuple[list[str], list[str]]:
    """The files and folders of ``source`` absent from ``root`` or with the wrong digest."""
    base = inside(root, source.folder)
    wrong = [rel for rel, want in known_digests(source, root).items() if not _ok(base, rel, want)]
    return [r for r in wrong if not r.endswith("/")], [r[:-1] for r in wrong if r.endswith("/")]


def _downloader():
    return pooch.HTTPDownloader(
        timeout=TIMEOUT_S, headers={"User-Agent": USER_AGENT}, progressbar=False
    )


def _mismatch(label: str, url: str, error: ValueError, root: Path, shown: str) -> UserError:
    """pooch's digest mismatch as one line: the file, both digests, the source, the way out."""
    digests = re.findall(r"[0-9a-f]{64}", str(error))
    if len(digests) < 2:
        return UserError(f"{label} from {url}: {error}; retry, or check --base-url")
    expected, got = digests[0], digests[1]
    return UserError(
        f"{label}: SHA-256 mismatch, expected {expected}, got {got} (source: {url}); nothing "
        "was written; retry or check --base-url, or, if the source changed on purpose, accept "
        f"it by listing {accept_hint(root, shown, got)}"
    )


def _fetch_error(url: str, error: Exception) -> UserError:
    if isinstance(error, requests.HTTPError) and error.response is not None:
        r = error.response
        return UserError(
            f"could not fetch {url}: HTTP {r.status_code} {r.reason}; check the address "
            "(and --base-url if you gave one)"
        )
    return UserError(
        f"could not fetch {url}: {error}; check the network connection, or use a local copy "
        "of the corpora: make report DATA_DIR=/path/to/corpora (python -m helpers report "
        "--data-dir /path/to/corpora), or --base-url to fetch from a mirror"
    )


def _download_files(source: Source, paths: list[str], root: Path, base_url) -> list[Path]:
    """Fetch the named files of a "file" source; pooch checks each before it is placed."""
    known = known_digests(source, root)
    base = source.address("", base_url).rstrip("/") + "/"
    fetcher = pooch.create(
        path=inside(root, source.folder),
        base_url=base,
        registry={p: f"sha256:{known[p].sha256}" for p in paths},
        retry_if_failed=RETRIES,
    )
    written = []
    for path in paths:
        url = base + path
        print(f"[{source.name}] {path}: fetching {url}", flush=True)
        try:
            fetcher.fetch(path, downloader=_downloader())
        except ValueError as e:
            shown = f"{source.folder}/{path}"
            raise _mismatch(f"{url} (for {shown})", url, e, root, shown) from None
        except requests.RequestException as e:
            raise _fetch_error(url, e) from None
        print(f"[{source.name}] {path}: ok", flush=True)
        written.append(inside(root, source.folder, path))
    return written


def _place(staged: Path, dest: Path, staging: Path) -> None:
    """Move a checked file or folder into place; an old folder is swapped out, then removed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_dir():
        # os.replace cannot overwrite a non-empty folder: move the old one into staging first.
        old = Path(tempfile.mkdtemp(dir=staging)) / dest.name
        os.replace(dest, old)
    os.replace(staged, dest)


def _download_archive(
    wanted: list[tuple[Source, list[str], list[str]]], root: Path, staging: Path, base_url
) -> list[Path]:
    """Fetch one archive, unpack the wanted members, check all, then place all."""
    first = wanted[0][0]
    url = first.address(base_url=base_url)
    name = url.rsplit("/", 1)[-1]
    print(f"[{', '.join(s.name for s, _, _ in wanted)}] fetching {url}", flush=True)
    members = [s.member_prefix + p for s, files, folders in wanted for p in [*files, *folders]]
    unpack = (pooch.Unzip if first.format == "zip" else pooch.Untar)(
        members=members, extract_dir="unpacked"
    )
    # Archives carry no known hash (GitHub rebuilds its zips); every member is checked instead.
    fetcher = pooch.create(
        path=staging,
        base_url=url.rsplit("/", 1)[0] + "/",
        registry={name: None},
        retry_if_failed=RETRIES,
    )
    try:
        fetcher.fetch(name, processor=unpack, downloader=_downloader())
    except requests.RequestException as e:
        raise _fetch_error(url, e) from None
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise UserError(
            f"{url} is not a readable {first.format} archive ({e}); the download is "
            "corrupt or the address serves something else; nothing was written; "
            "retry, or check --base-url"
        ) from None

    unpacked, to_place = staging / "unpacked", []
    for s, files, folders in wanted:
        known = known_digests(s, root)
        for rel in [*files, *(f + "/" for f in folders)]:
            member = s.member_prefix + rel
            path = unpacked / member.rstrip("/")
            if not path.exists():
                raise UserError(f"{url} has no member {member}; check the address or --base-url")
            want = known[rel]
            got, count = digest_of(path, rel, want)
            if want.count is not None and count != want.count:
                raise UserError(
                    f"{member} in {url}: expected {want.count} {want.suffix} files, found "
                    f"{count}; nothing was written; retry, or check --base-url"
                )
            if got != want.sha256:
                shown = f"{s.folder}/{rel}"
                err = ValueError(f"expected {want.sha256} but got {got}")
                raise _mismatch(f"{member} in {url}", url, err, root, shown)
            to_place.append((s, rel.rstrip("/"), path))
    written = []
    for s, rel, path in to_place:
        dest = inside(root, s.folder, rel)
        _place(path, dest, staging)
        print(f"[{s.name}] {rel}: ok", flush=True)
        written.append(dest)
    return written


def corpora_for(experiments) -> list[str]:
    """The registered corpora that the named experiments read (their sources and targets)."""
    names = list(experiments)
    if not names:
        raise UserError("--experiments needs at least one experiment name")
    sources = read_sources()
    wanted = []
    for name in names:
        e = load_experiment(name)
        wanted += [c for c in (e.source, e.target) if c in sources]
    return list(dict.fromkeys(wanted))


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
    if root.exists() and not root.is_dir():
        raise UserError(f"data root {root} is a file, not a folder; pass a folder to --data-dir")
    fresh = not root.exists()
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
    before = {p for p in root.rglob("*") if p.is_dir()}
    try:
        for s, files in plain:
            written += _download_files(s, files, root, base_url)
    except UserError:
        _remove_new_empty_folders(root, before)  # a failed fetch leaves the root as it was
        if fresh and not any(root.iterdir()):
            root.rmdir()
        raise
    if archives:
        # Staging inside the data root keeps os.replace on one file system, hence atomic.
        with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
            for i, wanted in enumerate(archives.values()):
                written += _download_archive(wanted, root, Path(tmp) / str(i), base_url)
    if not written:
        print("nothing to download: every file is present with the right digest", flush=True)
    return written


def _remove_new_empty_folders(root: Path, before: set[Path]) -> None:
    """Remove the folders a failed download made that are still empty (deepest first)."""
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if folder not in before and not any(folder.iterdir()):
            folder.rmdir()
