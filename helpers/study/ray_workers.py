"""Workers as Ray tasks: each task runs one ``python -m helpers run`` worker on the shared store.

For a cluster that runs Ray rather than Slurm. A task is the very process a submitit job runs
(``cluster.worker_command``), so runs are claimed through the store's locks exactly as there;
Ray only places the processes and gives each its CPUs, GPUs (it sets CUDA_VISIBLE_DEVICES) and
memory. Every node needs the repository, its environment and the store at the same paths (a
shared file system). Ray is optional: it is imported on this path only.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from helpers.config.cluster import ClusterConfig
from helpers.errors import UserError
from helpers.paths import ROOT
from helpers.study.cluster import worker_command

RAY_VERSION = "2.60.0"  # the pin in requirements.txt (a test holds the two equal)


def _ray():
    try:
        import ray
    except ImportError:
        raise UserError(f"--ray needs the ray package: pip install ray=={RAY_VERSION}") from None
    return ray


def work(command: list[str], cwd: str, log: str) -> int:
    """One Ray task: the worker process with its output in ``log``; returns its exit status."""
    with open(log, "w") as out:
        return subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT).returncode


def _resources(options: ClusterConfig) -> dict:
    """Ray's resources for one task: what a Slurm job of these settings would ask for."""
    wanted = {"num_cpus": options.cpus_per_worker or 1, "num_gpus": options.gpus_per_worker}
    if options.mem_gb:
        wanted["memory"] = options.mem_gb * 2**30  # Ray counts bytes
    return wanted


FLAGS = {"CPU": "--cpus-per-worker", "GPU": "--gpus-per-worker", "memory": "--mem-per-worker"}


def _check_fits(ray, wanted: dict) -> None:
    """Refuse a task no node of a local instance can take (Ray would wait for one forever)."""
    nodes = [n["Resources"] for n in ray.nodes() if n["Alive"]]
    for resource, amount in _ray_names(wanted).items():
        most = max(n.get(resource, 0) for n in nodes)
        if amount > most:
            shown = f"{amount / 2**30:g} GB" if resource == "memory" else f"{amount:g}"
            have = f"{most / 2**30:.1f} GB" if resource == "memory" else f"{most:g}"
            raise UserError(
                f"a worker task asks for {shown} {resource} but this machine's Ray instance has "
                f"{have}; lower {FLAGS[resource]} (or its cluster: key in experiments.yaml)"
            )


def _ray_names(wanted: dict) -> dict:
    names = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}
    return {names[k]: v for k, v in wanted.items() if v}


def _check_reachable(address: str) -> None:
    """Refuse at once an address where nothing answers (``ray.init`` retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not port.isdigit():  # "auto" and the like: Ray resolves them itself
        return
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as e:
        raise UserError(
            f"nothing answers at the Ray address {address} ({e.strerror or e}); start the "
            "cluster with `ray start --head` there, or leave out --ray-address for a local "
            "instance"
        ) from None


def _connect(ray, address: str | None, workers: int, options: ClusterConfig) -> str:
    """Join the cluster at ``address``, or start a local instance sized to the workers."""
    if address is None:  # "local": a fresh instance even where RAY_ADDRESS is set
        cpus = workers * (options.cpus_per_worker or 1)
        # Ray starts its workers 15 nice levels below the driver; these workers are the training
        # itself (on a loaded machine the test took 9 min instead of 1 at nice 19)
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(address="local", num_cpus=cpus, include_dashboard=False)
        return f"a local Ray instance, {cpus} CPUs"
    try:
        ray.init(address=address)
    except (ConnectionError, ValueError) as e:
        raise UserError(
            f"cannot join the Ray cluster at {address} ({str(e).splitlines()[0]}); start it "
            "with `ray start --head` there, or leave out --ray-address for a local instance"
        ) from None
    return f"the Ray cluster at {address}"


def _tail(log: Path, chars: int = 1500) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log written)"


def run_ray_workers(
    argv: list[str], workers: int, log_dir: Path, options: ClusterConfig, address: str | None
) -> None:
    """Run ``workers`` Ray tasks, each ``python -m helpers run <argv>``; raise if one failed."""
    if workers < 1:
        raise UserError(f"--ray needs at least 1 worker, got {workers}")
    if address is not None:
        _check_reachable(address)
    ray = _ray()
    log_dir = Path(log_dir) / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    log_dir.mkdir(parents=True, exist_ok=True)
    logs = [log_dir / f"worker-{i}.log" for i in range(workers)]
    where = _connect(ray, address, workers, options)
    try:
        wanted = _resources(options)
        if address is None:  # a cluster may add nodes on demand: there Ray's warning must do
            _check_fits(ray, wanted)
        task = ray.remote(work).options(**wanted)
        refs = [task.remote(worker_command(argv), str(ROOT), str(log)) for log in logs]
        print(f"started {workers} worker task(s) on {where}; logs in {log_dir}", flush=True)
        codes = ray.get(refs)
    finally:
        ray.shutdown()
    failed = [
        f"worker {i} (exit status {code}): {_tail(log)}"
        for i, (code, log) in enumerate(zip(codes, logs))
        if code != 0
    ]
    if failed:
        raise RuntimeError("worker task(s) failed:\n" + "\n".join(failed))
    print(f"all {workers} worker task(s) finished")
