"""Fault injection: real runs killed with SIGKILL at chosen points, then rerun to completion.

The child process is a real study under the smoke profile (3 epochs, a resume point every step).
A test-side patch kills it at the N-th call of a chosen function. The rerun must finish, and its
stored results must equal those of an uninterrupted run: nothing lost, nothing duplicated.
"""

import json
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from helpers.paths import ROOT

METHODS = ["last2", "all", "cbv_weight"]
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from dataclasses import replace
    import helpers.study.store as rs, helpers.training.checkpoints as ck
    import helpers.training.engine as tr
    from helpers.study.adaptation import run_methods
    from helpers.study.experiment import open_study

    data, reports, target, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    calls = {"n": 0}

    def killer(module, name):
        original = getattr(module, name)
        def wrapped(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == count:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)
        setattr(module, name, wrapped)

    if target == "resume-saved":
        killer(ck, "save_file")            # inside a resume point, before LATEST moves
    elif target == "resume-published":
        killer(tr, "clear_resume")         # training finished, results not yet stored
    elif target == "store-write":
        killer(rs, "write_table")          # half-way through storing a run
    study = open_study("books_to_electronics", "smoke", data, reports, progress=False)
    study.profile = replace(study.profile, train=replace(study.profile.train, epochs=3,
                                                         checkpoint_every=1))
    run_methods(study, %r)
"""
    % METHODS
)


def run_child(data, reports, target="none", count=0):
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(data), str(reports), target, str(count)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def stored_metrics(reports):
    frames = [pd.read_parquet(p) for p in sorted(reports.glob("store/*/*/*/metrics.parquet"))]
    table = pd.concat(frames, ignore_index=True)
    table = table[table["split"] != "cost"]  # wall time differs between any two runs
    return table.sort_values(["method", "split", "metric"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def uninterrupted(fixture_data, tmp_path_factory):
    reports = tmp_path_factory.mktemp("clean")
    proc = run_child(fixture_data, reports)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return stored_metrics(reports)


@pytest.mark.slow
@pytest.mark.parametrize(
    "target, count",
    [("resume-saved", 4), ("resume-saved", 11), ("resume-published", 2), ("store-write", 3)],
)
def test_killed_run_resumes_to_the_same_results(
    fixture_data, tmp_path, uninterrupted, target, count
):
    killed = run_child(fixture_data, tmp_path, target, count)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    resumed = run_child(fixture_data, tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    got = stored_metrics(tmp_path)
    cols = ["method", "split", "metric", "value", "ci_low", "ci_high", "run_key"]
    pd.testing.assert_frame_equal(got[cols], uninterrupted[cols])  # same numbers, no duplicates
    assert not list(tmp_path.glob("store/**/resume"))  # resume points cleaned up
    assert not list(tmp_path.glob("store/**/*.tmp"))  # no half-written files


def test_corrupt_stored_checkpoint_is_refused(fixture_data, tmp_path, uninterrupted):
    from helpers.study.experiment import open_study
    from helpers.study.source import source_model
    from helpers.training.checkpoints import CheckpointError

    study = open_study("books_to_electronics", "smoke", fixture_data, tmp_path, progress=False)
    source_model(study, 0)
    weights = next(tmp_path.glob("store/*/*/*/model/model.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-10])
    fresh = open_study("books_to_electronics", "smoke", fixture_data, tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="fails verification.*delete"):
        source_model(fresh, 0)
    assert json.loads((weights.parent / "sha256.json").read_text())
