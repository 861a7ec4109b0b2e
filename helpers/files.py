"""Files written whole or not at all, and their SHA-256 digests: one home for both jobs.

Every writer in the project (the result store, checkpoints, downloads, reports) goes through
``atomic_write``: the content is written to a unique temporary name beside the target and renamed
into place, so a crash or a second process never leaves half a file, and two writers never share
a temporary name.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

CHUNK = 1 << 20  # bytes per read while hashing large files


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)``, then rename into place; a crash leaves the old file or none."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path: Path, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    atomic_write(path, lambda t: t.write_text(text, encoding="utf-8"))


def write_json(path: Path, obj) -> None:
    """Write indented, key-sorted JSON atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str))


def write_table(path: Path, frame) -> None:
    """Write a DataFrame as Parquet atomically."""
    atomic_write(path, lambda t: frame.to_parquet(t, index=False))


def sha256_text(text: str) -> str:
    """SHA-256 of a string's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def copy_hashed(source, dest: Path) -> str:
    """Stream a binary file object into ``dest`` (parents made) and return its SHA-256."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    with open(dest, "wb") as out:
        while chunk := source.read(CHUNK):
            h.update(chunk)
            out.write(chunk)
    return h.hexdigest()


def sha256_folder(path: Path, suffix: str = ".txt") -> tuple[str, int]:
    """SHA-256 of a folder's ``*suffix`` files concatenated in sorted name order; their count."""
    h = hashlib.sha256()
    names = sorted(p.name for p in Path(path).iterdir() if p.name.endswith(suffix) and p.is_file())
    for n in names:
        h.update((Path(path) / n).read_bytes())
    return h.hexdigest(), len(names)


# Digests keyed by path and stat (size, mtime_ns, inode, ctime_ns), in memory for the life of
# the process. Not on disk: data roots are often read-only mirrors, and an on-disk cache could
# itself go stale or be edited; hashing every corpus once per process costs far less than
# parsing it (README, Data).
_DIGESTS: dict[tuple, object] = {}


def _stat_key(path: Path) -> tuple:
    # Inode and change time beside size and mtime: a file replaced by rename (as every atomic
    # writer here does) gets a new key even within one tick of the file system's clock.
    st = os.stat(path)
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def sha256_cached(path: Path) -> str:
    """``sha256_file``, computed again only when the file's stat (size, times, inode) changed."""
    key = ("file", *_stat_key(Path(path).resolve()))
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key]


def sha256_folder_cached(path: Path, suffix: str = ".txt") -> tuple[str, int]:
    """``sha256_folder``, computed again only when a file was added, removed or changed."""
    path = Path(path).resolve()
    with os.scandir(path) as entries:
        stats = sorted(
            (e.name, e.stat().st_size, e.stat().st_mtime_ns, e.inode(), e.stat().st_ctime_ns)
            for e in entries
            if e.name.endswith(suffix) and e.is_file()
        )
    key = ("folder", str(path), suffix, hashlib.sha256(repr(stats).encode()).hexdigest())
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_folder(path, suffix)
    return _DIGESTS[key]
