"""The write layer: whole files or none, a full disk as one line, tables checked by digest.

A full disk is injected at the write itself, in the two shapes it reaches us: an ``OSError``
with ``errno.ENOSPC`` (Python's own writes) and a library's exception that only words it
(safetensors, Arrow). ``test_faults.py`` fills a real tmpfs where the machine allows it.
"""

from __future__ import annotations

import errno
import os

import pandas as pd
import pytest

from helpers.errors import UserError
from helpers.files import (
    DiskFull,
    atomic_write,
    digest_file,
    read_checked_table,
    staged_folder,
    write_checked_table,
)


class LibraryError(Exception):
    """How safetensors reports a full disk: its own type, the OS's words."""


FULL = [
    pytest.param(lambda: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), id="oserror"),
    pytest.param(lambda: OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)), id="quota"),
    pytest.param(
        lambda: LibraryError("I/O error: No space left on device (os error 28)"), id="library"
    ),
]


def fill_then_fail(error):
    def write(tmp):
        tmp.write_bytes(b"half a table")
        raise error()

    return write


@pytest.mark.parametrize("error", FULL)
def test_a_full_disk_while_writing_a_file_is_one_line_and_leaves_the_old_file(tmp_path, error):
    target = tmp_path / "runs" / "metrics.parquet"
    target.parent.mkdir()
    target.write_bytes(b"the old table")
    with pytest.raises(DiskFull) as e:
        atomic_write(target, fill_then_fail(error))
    message = str(e.value)
    assert isinstance(e.value, UserError) and "\n" not in message
    assert f"no space left on the disk holding {target}" in message and "resume" in message
    assert target.read_bytes() == b"the old table"
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.parquet"]


@pytest.mark.parametrize("error", FULL)
def test_a_full_disk_while_staging_a_folder_removes_the_staging_folder(tmp_path, error):
    model = tmp_path / "run" / "model"
    with pytest.raises(DiskFull, match="no space left"):
        with staged_folder(model) as tmp:
            (tmp / "config.json").write_text("{}")
            raise error()
    assert list((tmp_path / "run").iterdir()) == []  # no .model.*.tmp left for good


def test_other_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(PermissionError):
        atomic_write(tmp_path / "x", fill_then_fail(lambda: PermissionError(errno.EACCES, "no")))
    with pytest.raises(KeyboardInterrupt):
        with staged_folder(tmp_path / "model"):
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_staged_folder_replaces_the_old_one_whole(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "old.bin").write_text("old")
    with staged_folder(model) as tmp:
        (tmp / "new.bin").write_text("new")
        assert (model / "old.bin").exists()  # the old folder stays until the block ends
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert [p.name for p in model.iterdir()] == ["new.bin"]


# ------------------------------------------------------------------ checked tables

TABLE = pd.DataFrame(
    {"method": ["head", "all"], "value": [1.0e-3, 3.0e-5], "chosen": [True, False]}
)


def flip_a_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), ["SHA-256"]),
        (flip_a_byte, ["SHA-256", "tuning.parquet.sha256 lists"]),
        (lambda p: p.write_bytes(b""), ["SHA-256"]),
        (lambda p: digest_file(p).write_text("0" * 64 + "  tuning.parquet\n"), ["lists 0000"]),
    ],
)
def test_a_damaged_checked_table_reads_as_none_with_one_line(tmp_path, capsys, damage, words):
    path = tmp_path / "tuning.parquet"
    write_checked_table(path, TABLE)
    pd.testing.assert_frame_equal(read_checked_table(path), TABLE)
    damage(path)
    assert read_checked_table(path) is None
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"table {path} fails verification" in err
    assert all(w in err for w in words), err


def test_a_checked_table_and_its_digest(tmp_path):
    path = tmp_path / "tuning.parquet"
    assert read_checked_table(path) is None  # absent: nothing to report
    write_checked_table(path, TABLE)
    digest, _, name = digest_file(path).read_text().strip().partition("  ")
    assert len(digest) == 64 and name == "tuning.parquet"  # `sha256sum -c` reads it


def test_a_table_from_before_digests_is_read_when_whole_and_refused_when_cut(tmp_path, capsys):
    path = tmp_path / "tuning.parquet"
    TABLE.to_parquet(path, index=False)  # as written before digests were kept
    pd.testing.assert_frame_equal(read_checked_table(path), TABLE)
    path.write_bytes(path.read_bytes()[:-20])
    assert read_checked_table(path) is None
    assert "not a whole Parquet file" in capsys.readouterr().err
