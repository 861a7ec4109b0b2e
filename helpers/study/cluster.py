"""Workers as cluster jobs through submitit: each job is one ``python -m helpers run`` worker.

submitit (Meta's Slurm launcher) is the first choice because Slurm is what research clusters
run, and the work needs no scheduler of its own: whole runs are the unit, workers coordinate
through per-run locks on the shared store (``helpers.study.lock``), and a job that dies leaves a
lock that another worker takes over. So a job is simply the ``run`` command; submitit writes the
sbatch script, submits the array, collects logs under ``<reports>/submitit/`` and reports
failures. ``cluster="local"`` runs the same jobs as local processes (tests, one machine).
A cluster that runs Ray instead gets the same worker as Ray tasks (``helpers.study.ray_workers``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from helpers.config.cluster import ClusterConfig
from helpers.errors import UserError
from helpers.paths import ROOT


def worker_command(argv: list[str]) -> list[str]:
    """The command one job runs: this Python, ``-m helpers run`` and the worker's options."""
    return [sys.executable, "-m", "helpers", "run", *argv]


def executor_parameters(options: ClusterConfig) -> dict:
    """submitit's parameters for one worker job (the slurm_ ones are ignored by its local runs)."""
    params = {"name": "cbv-run", "timeout_min": options.time_min}
    params["gpus_per_node"] = options.gpus_per_worker
    if options.cpus_per_worker:
        params["cpus_per_task"] = options.cpus_per_worker
    if options.mem_gb:
        params["mem_gb"] = options.mem_gb
    for key in ("partition", "account", "qos"):
        if getattr(options, key):
            params[f"slurm_{key}"] = getattr(options, key)
    if options.setup:
        params["slurm_setup"] = list(options.setup)
    if options.sbatch:
        params["slurm_additional_parameters"] = dict(options.sbatch)
    return params


def submit_workers(
    argv: list[str],
    workers: int,
    log_dir: Path,
    options: ClusterConfig,
    cluster: str = "slurm",
    wait: bool = True,
) -> list:
    """Submit ``workers`` jobs, each running ``python -m helpers run <argv>`` on the shared store.

    ``cluster``: "slurm", or "local" (the same jobs as processes of this machine).
    With ``wait`` it blocks until every job ends and raises if one failed.
    """
    try:
        import submitit
    except ImportError as e:
        raise UserError("--submitit needs the submitit package: pip install submitit") from e
    if workers < 1:
        raise UserError(f"--submitit needs at least 1 worker, got {workers}")
    try:
        executor = submitit.AutoExecutor(folder=Path(log_dir) / "%j", cluster=cluster)
    except RuntimeError as e:  # "Could not detect srun": not on a Slurm login node
        raise UserError(
            f"{e}; submit from a Slurm login node, or pass --submitit-cluster local"
        ) from e
    executor.update_parameters(**executor_parameters(options))
    command = submitit.helpers.CommandFunction(worker_command(argv), cwd=ROOT, verbose=False)
    with executor.batch():  # one Slurm job array
        jobs = [executor.submit(command) for _ in range(workers)]
    ids = ", ".join(str(j.job_id) for j in jobs)
    print(f"submitted {workers} worker job(s) ({executor.cluster}): {ids}; logs in {log_dir}")
    if wait:
        failed = []
        for job in jobs:
            try:
                job.result()
            except Exception as e:  # report every failed job, not only the first
                failed.append(f"job {job.job_id}: {str(e)[-1500:]}")
        if failed:
            raise RuntimeError("worker job(s) failed:\n" + "\n".join(failed))
        print(f"all {workers} worker job(s) finished")
    return jobs
