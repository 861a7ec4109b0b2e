"""The bf16 equivalence check: the same runs in fp32 and in bf16, paired, against the margin.

``python -m helpers precision`` fits each (experiment, seed, method) of a small design twice,
once in fp32 and once under bf16 autocast, with everything else equal (data sample, seed, rates,
the source model: trained once in fp32 and shared, so the pair differs only in the numeric
path of fine-tuning and evaluation), and scores both on the same test pools. The source models
themselves are then trained in both precisions and compared on their own. Verdict by two
one-sided t tests of the mean paired difference in test macro-F1 against the study's margin
(``helpers.report.claims.MARGIN``): equivalent when the 90% interval lies inside +-margin.
Runs are stored (under ``<profile>/precision``), so the check resumes and can be shared by
several workers; the speed-up is the paired ratio of the runs' own wall times.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import stats

from helpers.study.adaptation import run_all
from helpers.study.experiment import Study, open_study
from helpers.study.plan import Run, SourceRun

EXPERIMENTS = ("books_to_dvd", "hate_to_davidson")  # one per task family
METHODS = ("none", "head", "first2", "last2", "all", "cbv_weight", "cbv_study")
SEEDS = (0, 1)
DELTA = 1.0
MARGIN = 0.01  # macro-F1: the study's smallest effect of interest (docs/statistics.md)


def in_precision(study: Study, train: str, source: str) -> Study:
    """The study with its runs in ``train`` precision and its source model in ``source``."""
    p = study.profile
    profile = replace(
        p,
        precision=train,
        train=replace(p.train, precision=train),
        source_train=replace(p.source_train, precision=source),
    )
    return study.view(f"precision/{train}-{source}", profile)


def plan(studies: list[Study], methods, seeds) -> dict[str, list]:
    """The paired runs: fine-tuning in each precision from one fp32 source model, and each
    seed's source model trained in each precision."""
    runs: dict[str, list] = {"fp32": [], "bf16": [], "sources": []}
    for study in studies:
        for seed in seeds:
            for name, view in (
                ("fp32", in_precision(study, "fp32", "fp32")),
                ("bf16", in_precision(study, "bf16", "fp32")),
            ):
                runs[name] += [Run(view, m, DELTA, seed) for m in methods]
            for source in ("fp32", "bf16"):
                runs["sources"].append(SourceRun(in_precision(study, source, source), seed))
    return runs


def metric_of(table: pd.DataFrame, split: str = "test", metric: str = "macro_f1") -> float:
    rows = table[(table["split"] == split) & (table["metric"] == metric)]
    return float(rows["value"].iat[0])


def tost(diffs: np.ndarray, margin: float = MARGIN, level: float = 0.05) -> dict:
    """Two one-sided t tests of mean(diffs) against +-margin, and the 90% interval."""
    n, mean = len(diffs), float(np.mean(diffs))
    se = float(np.std(diffs, ddof=1) / np.sqrt(n))
    lower = stats.ttest_1samp(diffs, -margin, alternative="greater").pvalue
    upper = stats.ttest_1samp(diffs, margin, alternative="less").pvalue
    half = stats.t.ppf(1 - level, n - 1) * se
    p = float(max(lower, upper))
    return dict(
        pairs=n,
        mean=mean,
        sd=float(np.std(diffs, ddof=1)),
        ci90_low=mean - half,
        ci90_high=mean + half,
        p_tost=p,
        margin=margin,
        verdict="equivalent" if p < level else "not shown equivalent",
    )


def check(
    experiments=EXPERIMENTS,
    methods=METHODS,
    seeds=SEEDS,
    profile="quick",
    data_dir=None,
    reports_dir=None,
) -> dict:
    """Run (or read back) the paired runs and compare them; the tables the README shows."""
    studies = [open_study(e, profile, data_dir, reports_dir, progress=False) for e in experiments]
    runs = plan(studies, methods, seeds)
    done = {}
    for part in ("sources", "fp32", "bf16"):
        stored, _, failed = run_all(runs[part])
        if failed:
            raise RuntimeError(f"precision check: runs failed: {failed}")
        done.update(stored)
    pairs = []
    for a, b in zip(runs["fp32"], runs["bf16"]):
        fa, fb = done[a], done[b]
        pairs.append(
            dict(
                experiment=a.study.experiment.name,
                family=a.study.experiment.group,
                method=a.method,
                seed=a.seed,
                fp32=metric_of(fa),
                bf16=metric_of(fb),
                seconds_fp32=metric_of(fa, "cost", "seconds"),
                seconds_bf16=metric_of(fb, "cost", "seconds"),
            )
        )
    table = pd.DataFrame(pairs).assign(diff=lambda t: t["bf16"] - t["fp32"])
    trained = table[table["method"] != "none"]
    sources = _sources(runs["sources"])
    return {
        "pairs": table,
        "overall": tost(table["diff"].to_numpy()),
        # a pair whose score does not move at all (a method that barely trains at its default
        # rate) makes equivalence easy: the verdict on the pairs that differ stands alone too
        "moved": tost(table.loc[table["diff"] != 0, "diff"].to_numpy()),
        "by_family": {f: tost(g["diff"].to_numpy()) for f, g in table.groupby("family")},
        "speedup": float(np.median(trained["seconds_fp32"] / trained["seconds_bf16"])),
        "sources": sources,
    }


def _sources(source_runs: list[SourceRun]) -> pd.DataFrame:
    """Each seed's source model trained in fp32 and in bf16: test macro-F1 on A's and B's pool."""
    rows = []
    for run in source_runs:
        table = run.study.store.load(run.config)  # its metrics (run_all hands back the curve)
        e = run.study.experiment
        for pool in (e.source, e.target):
            rows.append(
                dict(
                    experiment=e.name,
                    seed=run.seed,
                    precision=run.study.profile.source_train.precision,
                    pool=pool,
                    macro_f1=metric_of(table, f"test:{pool}"),
                )
            )
    wide = pd.DataFrame(rows).pivot_table(
        index=["experiment", "seed", "pool"], columns="precision", values="macro_f1"
    )
    return wide.assign(diff=wide["bf16"] - wide["fp32"]).reset_index()


def to_markdown(result: dict) -> str:
    """The check as the README shows it: the verdict, per family, the source models, speed."""
    o = result["overall"]

    def line(name: str, r: dict) -> str:
        return (
            f"| {name} | {r['pairs']} | {r['mean']:+.4f} | [{r['ci90_low']:+.4f}, "
            f"{r['ci90_high']:+.4f}] | {r['p_tost']:.3g} | {r['verdict']} |"
        )

    rows = [line("all pairs", o)] + [line(f, r) for f, r in result["by_family"].items()]
    rows.append(line("pairs whose score differs", result["moved"]))
    src = result["sources"]
    return "\n".join(
        [
            f"bf16 - fp32 in test macro-F1 (delta = {DELTA:g} mixture), paired runs with the same "
            f"data, seed, rates and fp32 source model; margin +-{o['margin']}; two one-sided t "
            "tests (equivalent: the 90% interval inside the margin).",
            "",
            "| pairs | n | mean difference | 90% interval | TOST p | verdict |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"Speed-up (median of paired ratios of the runs' wall times, fp32 / bf16): "
            f"{result['speedup']:.2f}x.",
            "",
            "Source models trained in each precision (same seed and data), test macro-F1 on "
            f"each pool, bf16 - fp32: mean {src['diff'].mean():+.4f}, range "
            f"[{src['diff'].min():+.4f}, {src['diff'].max():+.4f}] over {len(src)} "
            "(seed, pool) pairs.",
        ]
    )
