"""Names that cannot leave their folder: experiment, profile and axis names are folder names.

A name read from experiments.yaml is refused (one line, exit status 2) unless it matches one
safe pattern, before anything is written; every path under a reports or data root is built by
``helpers.paths.inside``, which refuses a part that is absolute or climbs out with ``..``.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers.errors import UserError
from helpers.paths import EXPERIMENTS_FILE, ROOT, check_name, inside

BASE = yaml.safe_load(EXPERIMENTS_FILE.read_text())


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def rename(kind: str, old: str, new: str):
    def edit(raw):
        if kind == "axis":
            axes = raw["profiles"]["smoke"]["axes"]
            axes[new] = axes.pop(old)
        else:
            table = raw["experiments" if kind == "experiment" else "profiles"]
            table[new] = table.pop(old)

    return edit


@pytest.mark.parametrize(
    "kind, old, new",
    [
        ("experiment", "books_to_dvd", "../x"),
        ("experiment", "books_to_dvd", "/x"),
        ("experiment", "books_to_dvd", "../../escaped"),
        ("experiment", "books_to_dvd", "{absolute}"),
        ("experiment", "books_to_dvd", "a/b"),
        ("profile", "smoke", "../../escaped"),
        ("axis", "train_size", "../escaped"),
    ],
)
def test_a_name_that_would_leave_its_folder_is_refused_before_anything_is_written(
    fixture_data, tmp_path, kind, old, new
):
    work = tmp_path / "work"
    work.mkdir()
    new = new.format(absolute=tmp_path / "absolute")
    raw = copy.deepcopy(BASE)
    rename(kind, old, new)(raw)
    config = work / "experiments.yaml"
    config.write_text(yaml.safe_dump(raw))
    experiment = new if kind == "experiment" else "books_to_dvd"
    profile = new if kind == "profile" else "smoke"
    proc = subprocess.run(
        [sys.executable, "-m", "helpers", "run", "--profile", profile]
        + ["--experiments", experiment, "--methods", "head", "--config", str(config)]
        + ["--data-dir", str(fixture_data), "--reports-dir", str(work / "reports")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    err = proc.stderr.strip()
    assert proc.returncode == 2, err[-2000:]
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"{kind} name {new!r} cannot be a folder name" in err and str(config) in err
    assert files_under(tmp_path) == {"work", "work/experiments.yaml"}  # nothing written


@pytest.mark.parametrize("name", ["books_to_dvd", "my.shift-2", "A1", "quick"])
def test_safe_names_pass(name):
    assert check_name("experiment", name) == name


@pytest.mark.parametrize("name", ["", "..", ".hidden", "a..b", "a/b", "/x", "a b", "_x", 3, None])
def test_unsafe_names_are_refused(name):
    with pytest.raises(UserError, match="cannot be a folder name"):
        check_name("experiment", name)


def test_inside_joins_relative_parts_and_refuses_any_way_out(tmp_path):
    assert inside(tmp_path, "store", "smoke/tuning", "abc") == tmp_path / "store/smoke/tuning/abc"
    for part in ("../x", "/etc", "a/../../b", tmp_path):
        with pytest.raises(UserError, match="would lead outside"):
            inside(tmp_path, "store", part)


def test_the_store_builds_run_folders_through_inside(tmp_path):
    from helpers.study.store import Store

    store = Store(tmp_path)
    config = {"experiment": "../../x", "profile": "smoke"}
    with pytest.raises(UserError, match="would lead outside"):
        store.run_dir(config)
    with pytest.raises(UserError, match="would lead outside"):
        store.collect(profile="../..")
