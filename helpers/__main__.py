"""Command line: ``python -m helpers {report,run,download,readme,bench} ...`` (``--help`` on each).

Each command imports only what it needs, so ``--help`` and configuration errors come at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from helpers.errors import UserError


def _download(args) -> None:
    from helpers.data.download import corpora_for, download_corpora

    names = list(args.corpora or [])
    if args.experiments is not None:  # only what these experiments read
        names += corpora_for(args.experiments)
    download_corpora(names or None, data_root=args.data_dir, base_url=args.base_url)


def _use_config(args) -> None:
    """--config FILE: read experiments from FILE; notebook kernels inherit it by environment."""
    if getattr(args, "config", None):
        import os

        from helpers.paths import EXPERIMENTS_ENV

        os.environ[EXPERIMENTS_ENV] = str(args.config)


def _report(args) -> None:
    from helpers.report.runner import run_report

    _use_config(args)
    run_report(
        args.profile,
        args.experiments,
        data_dir=args.data_dir,
        reports_dir=args.reports_dir,
        figures_dir=args.figures_dir,
        analysis=not args.no_analysis,
        show_code=args.show_code,
    )


def _run(args) -> None:
    _use_config(args)
    if args.submitit is not None:
        return _submit(args)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from helpers.report.preflight import plan_run
    from helpers.study.adaptation import run_series
    from helpers.study.experiment import open_study

    plan = plan_run(args.profile, args.experiments, args.data_dir, args.reports_dir)
    # Open every study first: a bad corpus or size in the last experiment fails before training.
    studies = [
        open_study(e.name, args.profile, plan.data_root, plan.reports) for e in plan.experiments
    ]
    stored, total, failed = run_series(studies, args.methods)
    print(f"{stored} of {total} runs stored" + (" (failed: see above)" if failed else ""))


def _submit(args) -> None:
    from helpers.paths import reports_root
    from helpers.study.cluster import submit_workers

    argv = ["--profile", args.profile]
    if args.experiments:
        argv += ["--experiments", *args.experiments]
    if args.methods:
        argv += ["--methods", *args.methods]
    if args.threads:
        argv += ["--threads", str(args.threads)]
    if args.data_dir:  # absolute: a job may start in another folder
        argv += ["--data-dir", str(Path(args.data_dir).resolve())]
    reports = reports_root(args.reports_dir)
    argv += ["--reports-dir", str(reports)]
    submit_workers(
        argv,
        args.submitit,
        reports / "submitit",
        cluster=args.submitit_cluster,
        partition=args.slurm_partition,
        timeout_min=args.slurm_time,
        gpus_per_worker=args.gpus_per_worker,
        cpus_per_worker=args.cpus_per_worker,
    )


def _readme(args) -> None:
    from tools.readme import update_readme

    update_readme(args.profile, args.reports_dir, figures=not args.no_figures)
    print(f"updated the results section of README.md from the stored {args.profile} runs")


def _bench(args) -> None:
    from tools.bench.markdown import to_markdown
    from tools.bench.run import main

    result = main(args)
    if args.readme:
        from tools.readme import replace_section

        replace_section("bench", to_markdown(result), demote=2)
        print("updated the performance section of README.md")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("report", help="run the notebook series into HTML reports")
    p.add_argument("--profile", default="quick", help="smoke, quick (default), reference or full")
    p.add_argument("--experiments", nargs="*", help="experiment names (default: all)")
    p.add_argument("--data-dir", help="data root (default: $CBV_DATA_DIR or data/raw/)")
    p.add_argument("--reports-dir", help="where reports and results go (default: reports/)")
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
        "several on one store, or --submitit N jobs); `report` then renders them",
    )
    p.add_argument("--profile", default="quick", help="smoke, quick (default), reference or full")
    p.add_argument("--experiments", nargs="*", help="experiment names (default: all)")
    p.add_argument("--methods", nargs="*", help="method names (default: the profile's)")
    p.add_argument("--data-dir", help="data root (default: $CBV_DATA_DIR or data/raw/)")
    p.add_argument("--reports-dir", help="where results go (default: reports/)")
    p.add_argument(
        "--config", help="experiments file (default: $CBV_EXPERIMENTS or experiments.yaml)"
    )
    p.add_argument("--threads", type=int, help="torch CPU threads of this worker")
    p.add_argument(
        "--submitit",
        type=int,
        metavar="N",
        help="submit N worker jobs (Slurm via submitit) instead of working here",
    )
    p.add_argument(
        "--submitit-cluster",
        default="slurm",
        choices=["slurm", "local"],
        help="slurm (default) or local (the jobs as processes of this machine)",
    )
    p.add_argument("--slurm-partition", help="Slurm partition of the worker jobs")
    p.add_argument("--slurm-time", type=int, default=24 * 60, help="minutes per job (1440)")
    p.add_argument("--gpus-per-worker", type=int, default=0, help="GPUs per job (0)")
    p.add_argument("--cpus-per-worker", type=int, help="CPUs per job")
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
    p.add_argument("--reports-dir", help="where results are (default: reports/)")
    p.add_argument(
        "--no-figures",
        action="store_true",
        help="write the claims only (figures are linked only where committed: quick profile)",
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
        help="also write the tables into README.md's performance section",
    )
    p.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
