"""Scale-out wall times: one process, several run-level workers on one store, data parallelism.

Each layout runs ``python -m helpers run`` for one experiment on a fresh store, so every run is
computed once; the clock covers the whole command (start-up, data loading, every run).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from helpers.paths import ROOT

TORCHRUN = Path(sys.executable).with_name("torchrun")


def _commands(args: list[str], reports: Path, cpus: int) -> dict[str, list[list[str]]]:
    """Each layout's processes, using ``cpus`` cores in all."""
    run = [sys.executable, "-m", "helpers", "run", *args, "--reports-dir", str(reports)]
    layouts = {
        f"one process, {cpus} threads": [[*run, "--threads", str(cpus)]],
        f"{cpus} workers, 1 thread each": [[*run, "--threads", "1"]] * cpus,
    }
    if TORCHRUN.exists():
        dp = [str(TORCHRUN), "--nproc_per_node", str(cpus), *run[1:]]
        layouts[f"torchrun data parallel, {cpus} processes x 1 thread"] = [dp]
    return layouts


def time_scaleout(
    profile: str,
    experiment: str,
    data_root,
    methods: list[str] | None = None,
    cpus: int = 2,
    log: Callable[[str], None] = print,
) -> dict:
    """Wall time of one experiment's runs under each layout, side by side on this machine."""
    args = ["--profile", profile, "--experiments", experiment, "--data-dir", str(data_root)]
    if methods:
        args += ["--methods", *methods]
    rows = []
    for layout in _commands(args, Path("."), cpus):  # names only; fresh stores below
        with tempfile.TemporaryDirectory() as tmp:
            procs_cmds = _commands(args, Path(tmp) / "r", cpus)[layout]
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            start = time.perf_counter()
            procs = [
                subprocess.Popen(
                    c, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
                )
                for c in procs_cmds
            ]
            outs = [p.communicate() for p in procs]
            errors = [err for _, err in outs]
            idle = sum(_idle_seconds(out) for out, _ in outs)
            seconds = time.perf_counter() - start
            runs = len(list((Path(tmp) / "r").glob("store/*/*/*/config.json")))
        failed = any(p.returncode for p in procs)
        if failed:
            log(f"  {layout}: FAILED\n{errors[0][-1500:].decode(errors='replace')}")
        # the share of the workers' time spent waiting for runs another worker held
        idle_share = idle / (seconds * len(procs_cmds)) if seconds > 0 else float("nan")
        log(
            f"  {layout}: {seconds:.1f} s, {runs} runs stored, {idle_share:.0%} of worker time idle"
        )
        rows.append(
            {
                "layout": layout,
                "seconds": seconds,
                "runs": runs,
                "failed": failed,
                "idle_share": idle_share,
            }
        )
    base = rows[0]["seconds"]
    for row in rows:
        row["speedup"] = base / row["seconds"]
    return {"profile": profile, "experiment": experiment, "methods": methods, "rows": rows}


def _idle_seconds(stdout: bytes) -> float:
    """A worker's "idle: N s of ..." line (``python -m helpers run`` prints it last), else 0."""
    for line in stdout.decode(errors="replace").splitlines():
        if line.startswith("idle: "):
            return float(line.split()[1])
    return 0.0
