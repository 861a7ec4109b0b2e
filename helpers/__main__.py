"""Command line: ``python -m helpers {report,run,download,readme,bench} ...`` (``--help`` on each).

Each command imports only what it needs, so ``--help`` and configuration errors come at once.
"""

from __future__ import annotations

import argparse
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
    from helpers.spec.experiments import load_experiment, load_profile

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
    from helpers.paths import reports_root
    from helpers.spec.cluster import sbatch_pair
    from helpers.spec.experiments import load_cluster, load_profile

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
    from tools.readme import update_readme

    update_readme(args.profile, args.results_dir, figures=not args.no_figures)
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


def _scale_out_flags(p) -> None:
    """run's flags for worker jobs; unset cluster flags leave experiments.yaml's cluster: keys."""
    p.add_argument("--submitit", type=int, metavar="N", help="submit N worker jobs (Slurm)")
    p.add_argument(
        "--submitit-cluster",
        default="slurm",
        choices=["slurm", "local"],
        help="slurm (default) or local (the jobs as processes of this machine)",
    )
    p.add_argument("--no-wait", action="store_true", help="with --submitit: return once submitted")
    p.add_argument("--ray", type=int, metavar="N", help="run N worker tasks on a Ray cluster")
    p.add_argument("--ray-address", help="the Ray cluster (default: a local instance)")
    p.add_argument("--slurm-partition", help="Slurm partition of the worker jobs")
    p.add_argument("--slurm-account", help="Slurm account charged for the jobs")
    p.add_argument("--slurm-qos", help="Slurm quality of service of the jobs")
    p.add_argument("--slurm-time", type=int, help="minutes per job (default 1440)")
    p.add_argument(
        "--slurm-setup",
        action="append",
        metavar="LINE",
        help="shell line run before each job's worker, e.g. 'module load cuda' (repeat it)",
    )
    p.add_argument(
        "--slurm-sbatch",
        action="append",
        metavar="KEY=VALUE",
        help="another sbatch parameter, e.g. constraint=a100, or a bare flag (repeat it)",
    )
    p.add_argument("--gpus-per-worker", type=int, help="GPUs per job or task (default 0)")
    p.add_argument("--cpus-per-worker", type=int, help="CPUs per job or task")
    p.add_argument("--mem-per-worker", type=int, metavar="GB", help="memory per job or task")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("report", help="run the notebook series into HTML reports")
    p.add_argument("--profile", default="quick", help="smoke, quick (default), reference or full")
    p.add_argument("--experiments", nargs="*", help="experiment names (default: all)")
    p.add_argument("--data-dir", help="data root (default: $CBV_DATA_DIR or data/raw/)")
    p.add_argument("--reports-dir", help="where the reports go (default: reports/)")
    p.add_argument(
        "--results-dir",
        help="where stored runs are read and new ones stored (the folder holding store/; "
        "default: results/ for the reference profile, else the reports folder)",
    )
    p.add_argument("--figures-dir", help="where figures go (default: figures/)")
    p.add_argument("--no-analysis", action="store_true", help="skip notebook 04")
    p.add_argument(
        "--config", help="experiments file (default: $CBV_EXPERIMENTS or experiments.yaml)"
    )
    p.add_argument(
        "--show-code", action="store_true", help="render the reports with their code shown"
    )
    p.set_defaults(func=_report)

    p = sub.add_parser(
        "run",
        help="train and store every run of the series without notebooks (one worker; start "
        "several on one store, or --submitit N jobs, or --ray N tasks); `report` then renders "
        "them (docs/scale-out.md)",
    )
    p.add_argument("--profile", default="quick", help="smoke, quick (default), reference or full")
    p.add_argument("--experiments", nargs="*", help="experiment names (default: all)")
    p.add_argument("--methods", nargs="*", help="method names (default: the profile's)")
    p.add_argument("--data-dir", help="data root (default: $CBV_DATA_DIR or data/raw/)")
    p.add_argument("--reports-dir", help="where results go (default: reports/)")
    p.add_argument(
        "--config", help="experiments file (default: $CBV_EXPERIMENTS or experiments.yaml)"
    )
    p.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads of each worker (default: the cores it has over --workers)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes to start here on one store, sharing the cores (default 1)",
    )
    _scale_out_flags(p)
    p.set_defaults(func=_run)

    p = sub.add_parser(
        "download", help="fetch the corpora from their public homes into the data root"
    )
    p.add_argument("--corpora", nargs="*", help="corpus names (default: all)")
    p.add_argument(
        "--experiments",
        nargs="*",
        help="fetch only the corpora these experiments read (with --corpora: both)",
    )
    p.add_argument("--data-dir", help="data root (default: $CBV_DATA_DIR or data/raw/)")
    p.add_argument("--base-url", help="fetch from this mirror instead of the public homes")
    p.set_defaults(func=_download)

    p = sub.add_parser("readme", help="rewrite README.md's results section from stored runs")
    p.add_argument("--profile", default="quick", help="the profile whose runs it shows")
    p.add_argument(
        "--results-dir",
        "--reports-dir",
        dest="results_dir",
        help="where the stored runs are (the folder holding store/; default: results/ for the "
        "reference profile, else reports/)",
    )
    p.add_argument(
        "--no-figures",
        action="store_true",
        help="write the claims only (figures are linked only where committed: reference profile)",
    )
    p.set_defaults(func=_readme)

    p = sub.add_parser("bench", help="measure training and evaluation speed against the targets")
    p.add_argument(
        "--out",
        help="also write bench.json and bench.md here (default: "
        "reports/bench/, where they are always written)",
    )
    p.add_argument(
        "--quick-experiment",
        default="books_to_dvd",
        help="experiment whose quick-profile run is timed and whose corpora give "
        "the degradation curve (default: books_to_dvd)",
    )
    p.add_argument(
        "--skip-experiment",
        action="store_true",
        help="do not time the quick-profile experiment (it takes ~15 min)",
    )
    p.add_argument(
        "--skip-scaleout",
        action="store_true",
        help="do not time the scale-out layouts (CPU process layouts, a few minutes)",
    )
    p.add_argument("--steps", type=int, help="optimiser steps per training epoch (default 16)")
    p.add_argument("--repeats", type=int, help="runs per method, alternating order (default 2)")
    p.add_argument("--model", help="model name (default: the packaged MiniLM)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--data-dir", help="data root (default: $CBV_DATA_DIR or data/raw/)")
    p.add_argument(
        "--readme",
        action="store_true",
        help="also write the tables into docs/performance.md",
    )
    p.set_defaults(func=_bench)

    p = sub.add_parser(
        "store", help="the results store: `prune` lists or removes runs outside the plan"
    )
    p.add_argument("action", choices=["prune"], help="prune: runs of an earlier configuration")
    p.add_argument("--profile", default="quick", help="the profile whose plan is kept")
    p.add_argument("--experiments", nargs="*", help="experiment names (default: all)")
    p.add_argument("--data-dir", help="data root (default: $CBV_DATA_DIR or data/raw/)")
    p.add_argument("--reports-dir", help="where results are (default: reports/)")
    p.add_argument(
        "--config", help="experiments file (default: $CBV_EXPERIMENTS or experiments.yaml)"
    )
    p.add_argument("--dry-run", action="store_true", help="list the stale runs, remove nothing")
    p.set_defaults(func=_store)

    p = sub.add_parser(
        "precision",
        help="the bf16 equivalence check: the same runs in fp32 and bf16, paired (resumable; "
        "start it twice to share the work)",
    )
    p.add_argument("--profile", default="quick", help="the profile whose runs are paired")
    p.add_argument("--data-dir", help="data root (default: $CBV_DATA_DIR or data/raw/)")
    p.add_argument("--reports-dir", help="where its runs are stored (default: reports/)")
    p.add_argument("--threads", type=int, help="torch CPU threads of this worker")
    p.add_argument("--readme", action="store_true", help="also write it into README.md")
    p.set_defaults(func=_precision)
    return parser


INTERRUPTED = 130  # the shell's status for a command ended by Ctrl-C (128 + SIGINT)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Stored runs are whole (every file is renamed into place) and an unfinished run has
        # its last resume point, so rerunning picks up where this one stopped.
        print("interrupted; the same command resumes", file=sys.stderr)
        return INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
