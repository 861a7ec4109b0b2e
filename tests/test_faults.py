"""Fault injection: real runs killed with SIGKILL at chosen points, then rerun to completion.

The child process is a real study under the smoke profile (3 epochs, a resume point every step).
A test-side patch kills it at the N-th call of a chosen function. The rerun must finish, and its
stored results must equal those of an uninterrupted run: nothing lost, nothing duplicated.
The command line is then stopped the ways a user stops it: a real Ctrl-C (SIGINT) and a real
full disk (a small tmpfs): each ends in one line, leaves no staging file or lock, and the same
command then finishes with the uninterrupted results.
"""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time

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
    from helpers.study.memory import forget
    from helpers.study.source import source_model
    from helpers.training.checkpoints import CheckpointError

    study = open_study("books_to_electronics", "smoke", fixture_data, tmp_path, progress=False)
    source_model(study, 0)
    weights = next(tmp_path.glob("store/*/*/*/model/model.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-10])
    forget()  # a new worker: nothing in memory, the model is read from its checkpoint
    fresh = open_study("books_to_electronics", "smoke", fixture_data, tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="fails verification.*delete"):
        source_model(fresh, 0)
    assert json.loads((weights.parent / "sha256.json").read_text())


# ------------------------------------------------- the command line: Ctrl-C and a full disk

CLI_METHODS = ["head"]


def cli_run(data, reports) -> list[str]:
    return [sys.executable, "-m", "helpers", "run", "--profile", "smoke"] + [
        "--experiments", "books_to_dvd", "--methods", *CLI_METHODS,
        "--data-dir", str(data), "--reports-dir", str(reports),
    ]  # fmt: skip


def leftovers(reports) -> list[str]:
    """Staging files and folders and lock files, which a clean stop never leaves (a resume
    point it may: that is how the run resumes)."""
    return sorted(str(p) for p in [*reports.glob("**/*.tmp"), *reports.glob("**/*.lock")])


def assert_one_line(proc_err: str, *words: str) -> None:
    lines = [ln for ln in proc_err.strip().splitlines() if not ln.startswith("progress:")]
    assert len(lines) == 1 and "Traceback" not in proc_err, proc_err[-3000:]
    assert all(w in lines[0] for w in words), lines[0]


@pytest.fixture(scope="module")
def cli_reference(fixture_data, tmp_path_factory):
    """The command's stored results when nothing goes wrong."""
    reports = tmp_path_factory.mktemp("cli-reference")
    proc = subprocess.run(cli_run(fixture_data, reports), cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return stored_metrics(reports)


def same_results(reports, reference) -> None:
    """The same numbers under the same keys, and nothing left over once the command ends."""
    cols = ["method", "split", "metric", "value", "ci_low", "ci_high", "run_key"]
    pd.testing.assert_frame_equal(stored_metrics(reports)[cols], reference[cols])
    assert leftovers(reports) == [] and not list(reports.glob("store/**/resume"))


@pytest.mark.slow
@pytest.mark.parametrize("after", [1, 3])
def test_ctrl_c_ends_in_one_line_and_the_same_command_resumes(
    fixture_data, tmp_path, cli_reference, after
):
    """A real SIGINT after ``after`` stored runs: exit 130, one line, nothing half-written."""
    err = tmp_path / "stderr.txt"
    with err.open("w") as stderr:
        proc = subprocess.Popen(
            cli_run(fixture_data, tmp_path),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            # A shell without job control starts background jobs with SIGINT ignored, and
            # Python then never raises KeyboardInterrupt: give the child the default handler.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        stored = 0
        for line in proc.stdout:
            stored += "computed and stored run" in line
            if stored == after:
                proc.send_signal(signal.SIGINT)
                break
        proc.stdout.read()
        code = proc.wait(timeout=300)
    assert code == 130, err.read_text()[-3000:]
    assert_one_line(err.read_text(), "interrupted; the same command resumes")
    assert leftovers(tmp_path) == []
    resumed = subprocess.run(cli_run(fixture_data, tmp_path), cwd=ROOT, capture_output=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    same_results(tmp_path, cli_reference)


@pytest.mark.slow
def test_ctrl_c_during_a_report_ends_in_one_line(fixture_data, tmp_path):
    """Ctrl-C as a terminal sends it, to the whole process group (the notebook's kernel too),
    while the second notebook runs."""
    command = [sys.executable, "-m", "helpers", "report", "--profile", "smoke", "--no-analysis"]
    command += ["--experiments", "books_to_dvd", "--data-dir", str(fixture_data)]
    command += ["--reports-dir", str(tmp_path)]
    err = tmp_path / "stderr.txt"
    with err.open("w") as stderr:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,  # a process group of its own, as a terminal's job has
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        for line in proc.stdout:
            if line.startswith("[2/3]"):
                time.sleep(3)  # the kernel of notebook 02 is at work
                os.killpg(proc.pid, signal.SIGINT)
                break
        proc.stdout.read()
        code = proc.wait(timeout=300)
    text = err.read_text()
    assert code == 130, text[-3000:]
    assert text.strip().splitlines()[-1] == "interrupted; the same command resumes", text[-3000:]
    # The runner's own frames never show. (The interrupted kernel may still log a traceback of
    # its own on the shared stderr while it is shut down: helpers/report/ starts the kernel.)
    assert not any(w in text for w in ("helpers/", "papermill", "nbclient")), text[-3000:]
    assert leftovers(tmp_path) == []  # the store resumes as after `run` (tested above)


def _user_namespaces() -> bool:
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(
    not shutil.which("unshare") or not _user_namespaces(),
    reason="needs `unshare -rm` to mount a small tmpfs (test_files.py injects ENOSPC instead)",
)
def test_a_full_disk_ends_in_one_line_and_the_run_resumes_once_space_is_freed(
    fixture_data, tmp_path, cli_reference
):
    """A real full disk: a 1 MiB tmpfs (the source model alone is 4 MB), then a larger one."""
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    out.mkdir()
    run = shlex.join(cli_run(fixture_data, disk / "reports"))
    script = f"""
        mount -t tmpfs -o size=1m tmpfs {disk} || exit 97
        {run} > {out}/full.out 2> {out}/full.err; echo $? > {out}/full.rc
        find {disk} -name '*.tmp' -o -name '*.lock' > {out}/left.txt
        mount -o remount,size=64m {disk} || exit 97
        {run} > {out}/freed.out 2> {out}/freed.err; echo $? > {out}/freed.rc
        cp -r {disk}/reports {out}/reports || exit 97
    """
    subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=ROOT, check=True, timeout=600)
    assert (out / "full.rc").read_text().strip() == "2", (out / "full.err").read_text()[-3000:]
    assert_one_line((out / "full.err").read_text(), "no space left on the disk holding", "resume")
    assert (out / "left.txt").read_text() == ""  # the model's staging folder was removed
    assert (out / "freed.rc").read_text().strip() == "0", (out / "freed.err").read_text()[-2000:]
    same_results(out / "reports", cli_reference)
