"""Scale-out, run for real on the fixture corpora: the README's commands, side by side.

One worker is the reference. Two workers on one store, submitit jobs (its local executor), Ray
tasks (a local instance) and a worker that takes over a SIGKILLed one must store exactly the same
runs with identical metrics;
a two-process data-parallel run (torchrun, gloo) must finish and store the same runs.
"""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from helpers.paths import ROOT

pytestmark = pytest.mark.slow
DATA = ROOT / "tests" / "fixtures" / "data"
# Source model, surgical, CBV, and WiSE-FT (which builds on the stored `all` run): every path.
METHODS = ["none", "head", "last2", "all", "cbv_weight", "wise_ft"]
RUN = ["-m", "helpers", "run", "--profile", "smoke", "--experiments", "books_to_dvd"]
ARGS = [*RUN, "--methods", *METHODS, "--data-dir", str(DATA), "--threads", "1"]
TORCHRUN = Path(sys.executable).with_name("torchrun")


def worker(reports, *extra, **kw):
    return subprocess.Popen(
        [sys.executable, *ARGS, "--reports-dir", str(reports), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


def finish(proc, timeout=600):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return out


def computed(log: str) -> list[str]:
    """Run keys a worker computed (its "computed and stored run KEY" lines)."""
    return re.findall(r"computed and stored run (\w+)", log)


def stored(reports) -> pd.DataFrame:
    """Every stored metric row, by run key, without provenance that differs between processes."""
    files = sorted(Path(reports).glob("store/**/metrics.parquet"))  # tuning trials too
    table = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
    table = table[table["split"] != "cost"]  # wall time differs between any two runs
    table = table[["run_key", "method", "delta", "split", "metric", "value", "ci_low", "ci_high"]]
    return table.sort_values(["run_key", "split", "metric"]).reset_index(drop=True)


def no_locks_left(reports):
    assert not list(Path(reports).glob("store/**/.locks/*.lock"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    reports = tmp_path_factory.mktemp("one-worker")
    log = finish(worker(reports))
    keys = computed(log)  # the source model, its run, tuning trials and every method's run
    assert len(keys) == len(set(keys)) >= 2 + len(METHODS)
    return stored(reports)


def test_two_workers_store_exactly_what_one_worker_stores(reference, tmp_path):
    a, b = worker(tmp_path), worker(tmp_path)
    logs = [finish(a), finish(b)]
    keys = [computed(log) for log in logs]
    assert not set(keys[0]) & set(keys[1]), "a run was computed by both workers"
    assert sorted(keys[0] + keys[1]) == sorted(set(reference["run_key"]))
    pd.testing.assert_frame_equal(stored(tmp_path), reference)
    no_locks_left(tmp_path)


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import helpers.training.strategies as st
    from helpers.__main__ import main

    original, calls = st.fit, {"n": 0}
    def fit(*args, **kwargs):  # SIGKILL inside the third training (after the source and head)
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)
    st.fit = fit
    sys.exit(main(sys.argv[1:]))
    """
)


def test_a_killed_workers_run_is_taken_over(reference, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, *ARGS[2:], "--reports-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == -9
    left = list(tmp_path.glob("store/**/.locks/*.lock"))
    assert len(left) == 1, "the dead worker's lock stays behind"
    log = finish(worker(tmp_path))
    assert left[0].name.split(".")[0] in computed(log)  # taken over and finished
    assert "computed and stored run" in proc.stdout  # the dead worker had stored some runs
    pd.testing.assert_frame_equal(stored(tmp_path), reference)
    no_locks_left(tmp_path)


def test_submitit_local_jobs_store_what_one_worker_stores(reference, tmp_path):
    cmd = [*ARGS, "--reports-dir", str(tmp_path), "--submitit", "2", "--submitit-cluster", "local"]
    proc = subprocess.run(
        [sys.executable, *cmd], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "all 2 worker job(s) finished" in proc.stdout
    pd.testing.assert_frame_equal(stored(tmp_path), reference)
    no_locks_left(tmp_path)


def test_ray_worker_tasks_store_what_one_worker_stores(reference, tmp_path):
    """Two Ray tasks on a local instance (2 CPUs, no dashboard), each the `run` worker."""
    cmd = [*ARGS, "--reports-dir", str(tmp_path), "--ray", "2"]
    proc = subprocess.run(
        [sys.executable, *cmd], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "on a local Ray instance, 2 CPUs" in proc.stdout
    assert "all 2 worker task(s) finished" in proc.stdout
    logs = [p.read_text() for p in sorted(tmp_path.glob("ray/*/worker-*.log"))]
    assert len(logs) == 2 and all("runs stored" in log for log in logs), logs  # both ended clean
    keys = [computed(log) for log in logs]
    assert not set(keys[0]) & set(keys[1]), "a run was computed by both workers"
    assert sorted(keys[0] + keys[1]) == sorted(set(reference["run_key"]))
    pd.testing.assert_frame_equal(stored(tmp_path), reference)
    no_locks_left(tmp_path)


def test_a_ray_task_no_node_can_take_is_refused_not_left_waiting(tmp_path):
    cmd = [*RUN, "--reports-dir", str(tmp_path), "--ray", "1", "--mem-per-worker", "100000"]
    proc = subprocess.run(
        [sys.executable, *cmd], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2, (proc.stdout + proc.stderr)[-3000:]
    assert "error: a worker task asks for 100000 GB memory but this machine's Ray" in proc.stderr
    assert "lower --mem-per-worker" in proc.stderr.splitlines()[-1]


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside this Python")
def test_torchrun_two_processes_finish_and_match_one_process(reference, tmp_path):
    """Data parallel: same runs; metrics equal up to dropout noise (see the README's tolerance).

    Each process draws dropout masks for its own half of every batch, so the trajectory is that of
    another dropout seed, not bit-identical; the exact gradient check is in test_data_parallel.
    """
    cmd = [str(TORCHRUN), "--nproc_per_node", "2", *RUN, "--methods", *METHODS]
    cmd += ["--data-dir", str(DATA), "--reports-dir", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    keys = computed(proc.stdout)  # the main process alone stores, each run once
    assert len(keys) == len(set(keys)) and set(keys) == set(reference["run_key"])
    both = stored(tmp_path).merge(reference, on=["run_key", "split", "metric"])
    assert len(both) == len(reference)  # the same runs, splits and metrics
    accuracy = both[both["metric"] == "accuracy"]
    assert (accuracy["value_x"] - accuracy["value_y"]).abs().max() <= 0.25
    no_locks_left(tmp_path)
