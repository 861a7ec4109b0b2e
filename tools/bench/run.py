"""The whole benchmark: every measurement in one process, its files, and the command's entry."""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from helpers.config.experiments import load_experiment, load_profile
from helpers.files import write_json, write_text
from helpers.models.loading import load_classifier, load_tokenizer
from helpers.paths import reports_root, require_data_root
from helpers.report.runner import run_report
from tools.bench.config import PROFILE, REVIEWS, BenchConfig
from tools.bench.data import load_data
from tools.bench.evaluation import curve_cost, time_eval
from tools.bench.flops import flop_model
from tools.bench.machine import device, machine, matmul_peak
from tools.bench.markdown import to_markdown
from tools.bench.scaleout import time_scaleout
from tools.bench.targets import targets
from tools.bench.training import summarise_training, training_runs


def run_bench(
    cfg: BenchConfig | None = None,
    data_root=None,
    quick_experiment: bool = False,
    log: Callable[[str], None] = print,
    scaleout: bool = True,
) -> dict:
    """Run every measurement and return one dict of numbers, machine, and target rows.

    ``cfg`` defaults to ``BenchConfig()``; ``quick_experiment`` also times one quick-profile
    experiment (about 15 minutes on 2 cores); ``scaleout``, the process layouts of one smoke
    experiment (a few minutes).
    """
    cfg = cfg or BenchConfig()
    root = require_data_root(data_root)
    load_experiment(cfg.experiment, load_profile(PROFILE))  # a bad name fails before any work
    threads = torch.get_num_threads()
    try:
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        return _measure(cfg, root, quick_experiment, log, scaleout)
    finally:
        torch.set_num_threads(threads)  # the setting is process-wide: leave it as found


def _measure(
    cfg: BenchConfig,
    root: Path,
    quick_experiment: bool,
    log: Callable[[str], None],
    scaleout: bool = True,
) -> dict:
    """Every measurement in order, logged as it finishes; the body of ``run_bench``."""
    start, info = time.perf_counter(), machine()
    log(
        f"bench: {cfg.model} on {info['device']}, {info['cpus_usable']} cores, "
        f"{info['torch_threads']} torch threads, load average {info['load_average'][0]:.2f}"
    )
    tokenizer = load_tokenizer(cfg.model)
    data = load_data(cfg, root, tokenizer)
    source = load_classifier(cfg.model, data.label_names, seed=cfg.seed)
    shape = flop_model(source)
    peak = matmul_peak(cfg.matmul_size)
    log(f"  matmul peak {peak['flops_per_s'] / 1e9:.1f} GFLOP/s ({peak['dtype']}, n={peak['n']})")

    runs = training_runs(source, data, cfg, tokenizer, log)
    training = summarise_training(runs, cfg, shape, data.train.lengths, peak["flops_per_s"])

    model = copy.deepcopy(source).to(device()).eval()
    evaluation = {
        "tweets": time_eval(model, data.tweets, cfg.tweet_length, cfg, shape),
        "reviews": time_eval(model, data.reviews, cfg.review_length, cfg, shape),
    }
    log(
        "  evaluation speed-up: "
        + ", ".join(f"{k} {v['speedup']:.2f}x" for k, v in evaluation.items())
    )
    curve = curve_cost(model, cfg, root)
    log(
        f"  degradation curve: {curve['ours']['evaluations']:g} evaluations "
        f"(naive {curve['naive']['evaluations']:g})"
    )
    quick = time_quick_experiment(cfg.experiment, root, log) if quick_experiment else None
    layouts = None
    if scaleout:
        log("  scale-out, smoke profile (fresh store per layout):")
        layouts = time_scaleout(
            "smoke", cfg.experiment, root, cpus=min(2, os.cpu_count() or 1), log=log
        )

    info["load_average_end"] = list(os.getloadavg())
    return {
        "config": cfg.to_dict(),
        "machine": info,
        "seconds": time.perf_counter() - start,
        "matmul_peak": peak,
        "flop_model": {**shape, "training_per_example": "6*N*T + 12*L*d*T^2 (T real tokens)"},
        "training": {
            "data": {
                "corpus": REVIEWS[0],
                "examples": len(data.train),
                "max_length": cfg.review_length,
                "mean_length": float(data.train.lengths.mean()),
                "batch_size": cfg.batch_size,
                "steps_per_epoch": cfg.steps,
                "validation_examples": len(data.val),
            },
            "methods": training,
            "runs": runs,
        },
        "evaluation": evaluation,
        "degradation_curve": curve,
        "quick_experiment": quick,
        "scaleout": layouts,
        "targets": targets(training, curve, quick),
    }


def time_quick_experiment(experiment: str, data_root, log: Callable[[str], None] = print) -> dict:
    """Wall time of one experiment under the quick profile: notebooks 01-04, fresh reports."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        try:
            run_report(
                PROFILE,
                [experiment],
                data_dir=data_root,
                reports_dir=Path(tmp) / "r",
                figures_dir=Path(tmp) / "f",
                analysis=True,
            )
            failed = False
        except SystemExit:  # run_report exits 1 when a notebook failed; still timed
            failed = True
        seconds = time.perf_counter() - start
    log(f"  quick experiment {experiment}: {seconds / 60:.1f} min" + (" (FAILED)" * failed))
    return {
        "experiment": experiment,
        "profile": PROFILE,
        "seconds": seconds,
        "minutes": seconds / 60,
        "failed": failed,
    }


def write(result: dict, folders) -> list[Path]:
    """Write bench.json and bench.md into each folder (atomically); returns the paths."""
    written, text = [], to_markdown(result)
    for folder in dict.fromkeys(Path(f).resolve() for f in folders):
        write_json(folder / "bench.json", result)
        write_text(folder / "bench.md", text)
        written += [folder / "bench.json", folder / "bench.md"]
    return written


def default_folder() -> Path:
    """reports/bench (or $CBV_REPORTS_DIR/bench): where every run leaves its results."""
    return reports_root() / "bench"


def main(args: argparse.Namespace) -> dict:
    """``python -m helpers bench``: run with the parsed options, write the files, print verdicts.

    Returns the result, so that the caller can also put ``to_markdown(result)`` in the README.
    """
    given = {"model": args.model, "steps": args.steps, "repeats": args.repeats}
    cfg = BenchConfig(
        experiment=args.quick_experiment,
        threads=args.threads,
        **{k: v for k, v in given.items() if v is not None},
    )  # unset: defaults
    result = run_bench(
        cfg,
        data_root=args.data_dir,
        quick_experiment=not args.skip_experiment,
        scaleout=not args.skip_scaleout,
    )
    for path in write(result, [default_folder(), args.out or default_folder()]):
        print(f"wrote {path}")
    for row in result["targets"]:
        verdict = {True: "PASS", False: "MISS", None: "NOT RUN"}[row["met"]]
        measured = "-" if row["measured"] is None else f"{row['measured']:.3g}{row['unit']}"
        print(f"{verdict:<8} {row['name']}: {measured}")
    return result
