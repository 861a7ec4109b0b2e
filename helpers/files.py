"""Files written whole or not at all, and their SHA-256 digests: one home for both jobs.

Every writer in the project (the result store, checkpoints, downloads, reports) goes through
``atomic_write`` (a file) or ``staged_folder`` (a folder): the content is written to a unique
temporary name beside the target and renamed into place, so a crash or a second process never
leaves half a file, and two writers never share a temporary name. A write that fails removes its
temporary file or folder, and a full disk is one ``DiskFull`` line, never a traceback. A table
kept outside a run's manifest is written with ``write_checked_table``: its digest beside it.
Files get the mode ``open`` would give them (0o666 less the umask), not the temporary file's
private 0o600: reports and tables are read by others too.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers.errors import UserError

CHUNK = 1 << 20  # bytes per read while hashing large files
FULL = (errno.ENOSPC, errno.EDQUOT)  # a full disk, or a full quota on it


class DiskFull(UserError):
    """A write failed for want of space; what was stored before is whole and kept."""


def _is_full(e: BaseException) -> bool:
    if isinstance(e, OSError) and e.errno in FULL:
        return True
    # safetensors and Arrow word an OS error in exceptions of their own; what they all keep is
    # the C library's text for it ("No space left on device").
    return any(os.strerror(n) in str(e) for n in FULL)


@contextmanager
def full_disk_named(path: Path) -> Iterator[None]:
    """Turn a full disk met inside the block into one ``DiskFull`` line naming ``path``."""
    try:
        yield
    except Exception as e:
        if isinstance(e, DiskFull) or not _is_full(e):
            raise
        raise DiskFull(
            f"no space left on the disk holding {path}; free space there (or point the command "
            "at another folder) and run the same command again: what was stored is kept and "
            "unfinished runs resume"
        ) from None


def new_file_mode() -> int:
    """The mode ``open`` gives a new file: 0o666 less the umask (read without changing it where
    the system says it; setting it to read it back would race with other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: Path, write: Callable[[Path], object], suffix: str = ".tmp") -> None:
    """Call ``write(tmp_path)``, then rename into place; a crash leaves the old file or none.

    ``suffix``: the temporary name's ending, for writers that go by it (papermill, nbformat).
    """
    path = Path(path)
    with full_disk_named(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
        os.close(fd)
        try:
            write(Path(tmp))
            os.chmod(tmp, new_file_mode())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


@contextmanager
def staged_folder(folder: Path) -> Iterator[Path]:
    """A fresh staging folder beside ``folder``, put in its place when the block ends.

    Should the block fail (a full disk, Ctrl-C), the staging folder is removed and ``folder``
    keeps what it held. Each call has its own staging name: two processes never share one.
    """
    folder = Path(folder)
    with full_disk_named(folder):
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
        try:
            yield tmp
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def write_text(path: Path, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    atomic_write(path, lambda t: t.write_text(text, encoding="utf-8"))


def write_json(path: Path, obj) -> None:
    """Write indented, key-sorted JSON atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str))


def write_table(path: Path, frame) -> None:
    """Write a DataFrame as Parquet atomically."""
    atomic_write(path, lambda t: frame.to_parquet(t, index=False))


def digest_file(path: Path) -> Path:
    """The sidecar holding a checked table's SHA-256, in ``sha256sum`` format."""
    path = Path(path)
    return path.with_name(f"{path.name}.sha256")


def write_checked_table(path: Path, frame) -> None:
    """Write a DataFrame as Parquet atomically, then its SHA-256 beside it (``digest_file``).

    For tables outside a run's manifest (the tuning table): ``read_checked_table`` then knows a
    damaged one from a good one. A crash between the two writes leaves a table whose digest
    does not match, which reads as damaged: redone, never trusted.
    """
    write_table(path, frame)
    write_text(digest_file(path), f"{sha256_file(path)}  {Path(path).name}\n")


def read_checked_table(path: Path):
    """A table written by ``write_checked_table``, or None when it is absent or damaged.

    A damaged table (its bytes not those of its digest, or not a whole Parquet file) is reported
    in one line on stderr, and the caller redoes what it holds. A table from before digests
    were kept (no sidecar) is trusted when it reads whole.
    """
    import pandas as pd  # pandas loads only where a table is read

    path, sidecar = Path(path), digest_file(path)
    if not path.is_file():
        return None
    why = None
    if sidecar.is_file():
        want, got = sidecar.read_text(encoding="utf-8").partition(" ")[0], sha256_file(path)
        why = None if got == want else f"SHA-256 {got}, but {sidecar.name} lists {want}"
    if why is None:
        try:
            return pd.read_parquet(path)
        except Exception as e:  # Arrow raises several types; each means "not a whole table"
            why = f"not a whole Parquet file: {type(e).__name__}"
    print(f"table {path} fails verification ({why}); redoing it", file=sys.stderr)
    return None


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
