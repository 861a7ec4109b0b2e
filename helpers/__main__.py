"""Command line: ``python -m helpers {report,run,download,readme,bench} ...`` (``--help`` on each).

Each command imports only what it needs, so ``--help`` and configuration errors come at once.
"""

from __future__ import annotations

import argparse
import sys

from helpers.commands import (
    _bench,
    _download,
    _precision,
    _readme,
    _report,
    _run,
    _store,
)
from helpers.errors import UserError


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


def _study_arguments(
    p, reports: str, profile: str = "smoke, quick (default), reference or full"
) -> None:
    """The options of every command that opens studies: which profile and experiments, the
    corpora, where results are, and another experiments file."""
    p.add_argument("--profile", default="quick", help=profile)
    p.add_argument("--experiments", nargs="*", help="experiment names (default: all)")
    p.add_argument("--data-dir", help="data root (default: $CBV_DATA_DIR or data/raw/)")
    p.add_argument("--reports-dir", help=reports)
    p.add_argument(
        "--config", help="experiments file (default: $CBV_EXPERIMENTS or experiments.yaml)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("report", help="run the notebook series into HTML reports")
    _study_arguments(p, reports="where the reports go (default: reports/)")
    p.add_argument(
        "--results-dir",
        help="where stored runs are read and new ones stored (the folder holding store/; "
        "default: results/ for the reference profile, else the reports folder)",
    )
    p.add_argument("--figures-dir", help="where figures go (default: figures/)")
    p.add_argument("--no-analysis", action="store_true", help="skip notebook 04")
    p.add_argument(
        "--show-code", action="store_true", help="render the reports with their code shown"
    )
    p.add_argument(
        "--stored-only",
        action="store_true",
        help="read the stored runs and train nothing (runs not stored are listed, not computed; "
        "`make results`)",
    )
    p.set_defaults(func=_report)

    p = sub.add_parser(
        "run",
        help="train and store every run of the series without notebooks (one worker; start "
        "several on one store, or --submitit N jobs, or --ray N tasks); `report` then renders "
        "them (docs/scale-out.md)",
    )
    _study_arguments(p, reports="where results go (default: reports/)")
    p.add_argument("--methods", nargs="*", help="method names (default: the profile's)")
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
    p.add_argument(
        "--data-dir",
        help="corpora root: with it, only the current plan's runs are read (their keys need it)",
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
    _study_arguments(
        p, reports="where results are (default: reports/)", profile="the profile whose plan is kept"
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
        # its last resume point, so rerunning picks up where this one stopped. A notebook cut
        # short leaves its executor's task unfinished: asyncio would log that task's "never
        # retrieved" traceback at exit, after this line, so it is silenced here.
        import logging

        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        print("interrupted; the same command resumes", file=sys.stderr)
        return INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
