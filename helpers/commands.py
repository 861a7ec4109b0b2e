"""What each command of ``python -m helpers`` does (the parser is ``helpers.__main__``'s).

Each command imports only what it needs, so ``--help`` and configuration errors come at once.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from helpers.errors import UserError


def _download(args) -> None:
    from helpers.data.download import corpora_for, download_corpora

    names = list(args.corpora or [])
    if args.experiments is not None:  # only what these experiments read
        names += corpora_for(args.experiments)
    download_corpora(names or None, data_root=args.data_dir, base_url=args.base_url)


def _use_config(args) -> None:
    """--config FILE: read experiments from FILE (notebook kernels inherit it by environment),
    then check it and the names asked for, before pandas, torch or transformers load."""
    if getattr(args, "config", None):
        import os

        from helpers.paths import EXPERIMENTS_ENV

        os.environ[EXPERIMENTS_ENV] = str(args.config)
    from helpers.config.experiments import load_experiment, load_profile

    profile = load_profile(args.profile)
    for name in args.experiments or ():
        load_experiment(name, profile)


def _report(args) -> None:
    _use_config(args)
    from helpers.report.runner import run_report

    run_report(
        args.profile,
        args.experiments,
        data_dir=args.data_dir,
        reports_dir=args.reports_dir,
        figures_dir=args.figures_dir,
        analysis=not args.no_analysis,
        show_code=args.show_code,
        results_dir=args.results_dir,
        stored_only=args.stored_only,
    )


def _run(args) -> None:
    _use_config(args)
    from helpers.report.preflight import plan_run  # torch-free: bad data is refused at once

    plan = plan_run(args.profile, args.experiments, args.data_dir, args.reports_dir)
    if args.submitit is not None or args.ray is not None:
        return _scale_out(args)
    if args.workers > 1:
        return _workers(args)
    import torch

    # No oversubscribed cores: a worker takes the cores it has, shared by the workers started
    # with it (--workers), unless told otherwise.
    torch.set_num_threads(args.threads or max(1, available_cores()))
    from helpers.study.adaptation import run_series
    from helpers.study.experiment import open_study

    # Open every study first: a bad corpus or size in the last experiment fails before training.
    studies = [
        open_study(e.name, args.profile, plan.data_root, plan.reports) for e in plan.experiments
    ]
    start = time.perf_counter()
    stored, total, failed = run_series(studies, args.methods)
    print(f"{stored} of {total} runs stored" + (" (failed: see above)" if failed else ""))
    from helpers.study.lock import IDLE

    wall = time.perf_counter() - start
    share = IDLE["seconds"] / wall if wall > 0 else 0.0
    print(
        f"idle: {IDLE['seconds']:.0f} s of {wall:.0f} s ({share:.0%}) waiting for runs "
        "other workers held"
    )


def available_cores() -> int:
    """The cores this process may use: the scheduler's allocation, else its CPU affinity."""
    import os

    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit():
        return int(slurm)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _workers(args) -> None:
    """--workers N: N worker processes on this machine and store, each with its share of the
    cores (unless --threads says), all waited for; the exit status is the worst of theirs."""
    import subprocess

    threads = args.threads or max(1, available_cores() // args.workers)
    argv = [a for a in sys.argv[1:]]
    if "--workers" in argv:
        i = argv.index("--workers")
        del argv[i : i + 2]
    argv = [a for a in argv if not a.startswith("--workers=")]
    if "--threads" not in argv:
        argv += ["--threads", str(threads)]
    print(f"starting {args.workers} workers, {threads} thread(s) each", flush=True)
    procs = [
        subprocess.Popen([sys.executable, "-m", "helpers", *argv]) for _ in range(args.workers)
    ]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(max(codes))


def _worker_argv(args, reports: Path) -> list[str]:
    """A worker's ``run`` options: this command's, every path absolute (jobs start elsewhere)."""
    from helpers.paths import data_root, experiments_file

    argv = ["--profile", args.profile]
    if args.experiments:
        argv += ["--experiments", *args.experiments]
    if args.methods:
        argv += ["--methods", *args.methods]
    if args.threads:
        argv += ["--threads", str(args.threads)]
    argv += ["--config", str(experiments_file(args.config))]  # Ray tasks see no $CBV_ variables
    argv += ["--data-dir", str(data_root(args.data_dir)), "--reports-dir", str(reports)]
    return argv


def _scale_out(args) -> None:
    """--submitit N or --ray N: the workers as Slurm jobs or Ray tasks, cluster flags over yaml."""
    from helpers.config.cluster import sbatch_pair
    from helpers.config.experiments import load_cluster, load_profile
    from helpers.paths import reports_root

    if args.submitit is not None and args.ray is not None:
        raise UserError("choose one of --submitit and --ray")
    if args.no_wait and args.submitit is None:
        raise UserError("--no-wait applies to --submitit only (Ray tasks end with this command)")
    load_profile(args.profile)  # a wrong name fails here, not in every job
    options = load_cluster().override(
        partition=args.slurm_partition,
        account=args.slurm_account,
        qos=args.slurm_qos,
        time_min=args.slurm_time,
        mem_gb=args.mem_per_worker,
        gpus_per_worker=args.gpus_per_worker,
        cpus_per_worker=args.cpus_per_worker,
        setup=args.slurm_setup,
        sbatch=[sbatch_pair(p) for p in args.slurm_sbatch] if args.slurm_sbatch else None,
    )
    reports = reports_root(args.reports_dir)
    argv = _worker_argv(args, reports)
    if args.ray is not None:
        from helpers.study.ray_workers import run_ray_workers

        return run_ray_workers(argv, args.ray, reports / "ray", options, args.ray_address)
    from helpers.study.cluster import submit_workers

    submit_workers(
        argv, args.submitit, reports / "submitit", options, args.submitit_cluster, not args.no_wait
    )


def _readme(args) -> None:
    from helpers.paths import require_data_root, results_root
    from tools.readme import update_readme

    keys = None
    if args.data_dir:  # the current plan's runs only (their keys need the corpora)
        from helpers.report.runner import read_stored_only
        from helpers.study.inventory import profile_plan_keys

        results = results_root(args.results_dir, args.profile)
        read_stored_only(results, args.profile)
        keys = profile_plan_keys(args.profile, require_data_root(args.data_dir), results)
    else:
        print("reading every verified stored run (--data-dir reads only the current plan's)")
    update_readme(args.profile, args.results_dir, figures=not args.no_figures, keys=keys)
    print(f"updated the results section of README.md from the stored {args.profile} runs")


def _bench(args) -> None:
    from tools.bench.markdown import to_markdown
    from tools.bench.run import main

    result = main(args)
    if args.readme:
        from tools.readme import PERFORMANCE, replace_section

        replace_section("bench", to_markdown(result), PERFORMANCE, demote=1)
        print("updated the benchmark section of docs/performance.md")


def _store(args) -> None:
    _use_config(args)
    from helpers.report.preflight import plan_run
    from helpers.study.experiment import open_study
    from helpers.study.inventory import prune

    plan = plan_run(args.profile, args.experiments, args.data_dir, args.reports_dir)
    studies = [
        open_study(e.name, args.profile, plan.data_root, plan.reports, progress=False)
        for e in plan.experiments
    ]
    stale = prune(studies, dry_run=args.dry_run)
    for folder in stale:
        print(folder)
    if args.dry_run:
        print(
            f"{len(stale)} stale run(s) outside the {args.profile} plan; rerun without "
            "--dry-run to remove them"
        )
    else:
        print(f"removed {len(stale)} stale run(s) outside the {args.profile} plan")


def _precision(args) -> None:
    import json

    from helpers.paths import reports_root
    from tools.bench.precision import check, to_markdown

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    result = check(profile=args.profile, data_dir=args.data_dir, reports_dir=args.reports_dir)
    text = to_markdown(result)
    out = reports_root(args.reports_dir) / "bench"
    out.mkdir(parents=True, exist_ok=True)
    result["pairs"].to_csv(out / "precision_pairs.csv", index=False)
    (out / "precision.json").write_text(
        json.dumps({k: v for k, v in result.items() if k not in ("pairs", "sources")}, indent=2)
    )
    print(text)
    if args.readme:
        from tools.readme import PERFORMANCE, replace_section

        replace_section("precision", text, PERFORMANCE)
        print("updated the precision section of docs/performance.md")
