"""The study's throughput against its FLOP ideal: runs per hour and the share of peak achieved.

``python -m tools.bench.throughput --data-dir D`` reads a profile's stored runs (their wall times
and configurations), counts each run's FLOPs from the real token lengths of the data it saw
(``tools.bench.flops``: 2 N T + 4 L d T^2 a forward pass, three times that to train), and sets
the total beside the time the runs took and beside the machine's matrix-multiply peak in the
precision they ran in: the ideal is every FLOP at peak. The per-method factors are what each
method runs: output-space CBV runs every layer twice; a method training only the top layers
above a cached frozen prefix runs only those (head: the classifier alone, counted as nothing).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.config.methods import get_method
from helpers.models.loading import load_classifier
from helpers.study.experiment import open_study
from tools.bench.flops import flop_model, forward_flops

SOURCE_EVALS_PER_STEP = 0  # source runs: counted from their stored history below


def token_lengths(study) -> dict[str, float]:
    """Mean real token length of each split's mixture material, per split."""
    out = {}
    for split, pair in study.pools.items():
        frame = pd.concat([c.frame for c in pair], ignore_index=True)
        out[split] = float(np.mean([len(x) for x in study.encoded(frame).input_ids]))
    return out


def train_share(method: str, layers: int) -> float:
    """The share of a full training step a method runs (above its frozen prefix)."""
    entry = get_method(method)
    if entry.strategy in ("none", "wise_ft"):
        return 0.0
    if entry.strategy == "cbv_two_stage":
        return 3.0 * 0.5 / 3.0  # coefficients alone, on half the validation set, forward + back
    train = entry.train
    if train == ("head",):
        return 0.0
    if train and train[0].startswith(("last:", "middle:")):
        k = int(train[0].split(":")[1])
        depth = layers - k if train[0].startswith("last:") else (layers - k) // 2
        return (layers - depth) / layers
    if entry.cbv is not None and entry.cbv.space == "output":
        return 2.0
    return 1.0


def run_flops(config: dict, shape: dict, lengths: dict[str, float]) -> float:
    """One stored run's FLOPs: training, its validation passes, and its test predictions."""
    method = config["method"]
    train = config.get("train") or {}
    sizes = config.get("sizes") or {}
    n_train, n_val = sizes.get("train", 0), sizes.get("validation", 0)
    f = {s: forward_flops(shape, np.array([lengths[s]])) for s in lengths}
    share = train_share(method, shape["layers"]) if method != "source" else 0.0
    passes = 2.0 if share == 2.0 else 1.0
    epochs = train.get("epochs", 0)
    flops = 3 * f["train"] * n_train * epochs * min(share, 2.0)
    evals = train.get("evals_per_epoch", 1) * epochs + 1
    flops += passes * f["validation"] * n_val * evals
    if config.get("profile", "").endswith("tuning"):
        return flops
    tested = sum((config.get("test") or {}).values())
    cap = config.get("test_pool_cap")
    if cap:
        tested = sum(min(n, cap) for n in (config.get("test") or {}).values())
    return flops + passes * f["test"] * tested


def throughput(profile: str, results_dir, data_dir, experiments) -> dict:
    """Per part of the study (source, tuning, grid, axes): runs, run-hours, FLOPs."""
    rows = []
    shape = flop_model(load_classifier(open_study(experiments[0], profile, data_dir,
                                                  results_dir, False).profile.model))  # fmt: skip
    for e in experiments:
        study = open_study(e, profile, data_dir, results_dir, progress=False)
        lengths = token_lengths(study)
        for manifest in (study.store.root / e).glob(f"{profile}/**/manifest.json"):
            config = json.loads(manifest.read_text())["config"]
            metrics = pd.read_parquet(manifest.parent / "metrics.parquet")
            cost = metrics[(metrics["split"] == "cost") & (metrics["metric"] == "seconds")]
            part = config["profile"].removeprefix(profile).strip("/") or "main grid"
            rows.append(
                dict(
                    experiment=e,
                    part=part,
                    method=config["method"],
                    seconds=float(cost["value"].iat[0]) if len(cost) else np.nan,
                    flops=run_flops(config, shape, lengths),
                    precision=(config.get("compute") or {}).get("precision", "fp32"),
                )
            )
    return {"runs": pd.DataFrame(rows), "shape": shape}


def summary(runs: pd.DataFrame, peak_flops: float, workers: int = 2) -> pd.DataFrame:
    """Runs per hour and the share of ``peak_flops`` (one worker's) each part achieved."""
    g = runs.groupby("part").agg(
        runs=("method", "size"), run_hours=("seconds", lambda s: s.sum() / 3600), pflop=(
            "flops", lambda f: f.sum() / 1e15))  # fmt: skip
    g.loc["all"] = [len(runs), runs["seconds"].sum() / 3600, runs["flops"].sum() / 1e15]
    g["runs per wall hour"] = g["runs"] / (g["run_hours"] / workers)
    g["achieved TFLOP/s per worker"] = g["pflop"] * 1e3 / (g["run_hours"] * 3600)
    g["share of peak"] = g["achieved TFLOP/s per worker"] * 1e12 / peak_flops
    g["ideal hours (both cores at peak)"] = g["pflop"] * 1e15 / (peak_flops * workers) / 3600
    return g.reset_index()


def planned_flops(profile: str, data_dir, results_dir, experiments) -> pd.DataFrame:
    """The FLOPs of a profile's whole plan, before any of it runs: source runs, tuning trials,
    the main grid and the axes, each run's configuration built with the methods' default rates
    (a rate changes no FLOP count). Tuning: each tuned method's trials, each one fit per
    experiment of the family (``tune.pool: family``) or per seed of the experiment."""
    from helpers.config.experiments import load_profile
    from helpers.study.adaptation import profile_methods
    from helpers.study.axes import axis_runs
    from helpers.study.plan import plan_grid

    rows, trained = [], set()
    prof = load_profile(profile)
    first = open_study(experiments[0], profile, data_dir, results_dir, False)
    shape = flop_model(load_classifier(first.profile.model))
    for e in experiments:
        study = open_study(e, profile, data_dir, results_dir, progress=False)
        lengths = token_lengths(study)
        methods = profile_methods(study)
        defaults = {m: {} for m in methods}
        parts = {"main grid": plan_grid(study, methods, defaults)}
        parts["axes"] = axis_runs(study, defaults, dry=True)
        for part, runs in parts.items():
            for r in runs:
                rows.append(
                    dict(experiment=e, part=part, flops=run_flops(r.config, shape, lengths))
                )
        # a method's trials are its budget whatever it tunes (a second setting takes its share,
        # ``search.budgets``); each trial one fit per experiment of the family, or per seed
        fits = prof.tune.trials * (1 if prof.tune.pool == "family" else prof.tune.seeds)
        for m in methods:
            if not get_method(m).tuned_settings():
                continue
            one = plan_grid(study, [m], defaults)[-1].config  # at the full shift
            trial = {**one, "profile": f"{profile}/tuning"}
            cost = run_flops(trial, shape, lengths)
            rows += [dict(experiment=e, part="tuning", flops=cost)] * fits
        source = study.source_config(0) | {"method": "source"}
        rows += [dict(experiment=e, part="source", flops=run_flops(source, shape, lengths))] * len(
            prof.seeds
        )
        for seed in prof.seeds:  # each source model once, however many experiments share it
            model = study.source_model_dir(seed).name
            if model in trained:
                continue
            trained.add(model)
            cfg = study.source_train_config(seed)
            n = prof.n_source_train or len(study.pools["train"][0].frame)
            f = forward_flops(shape, np.array([lengths["train"]]))
            flops = 3 * f * n * cfg.epochs  # an upper bound: training may stop early
            rows.append(dict(experiment=e, part="source model training", flops=flops))
    return pd.DataFrame(rows)


EXPERIMENTS = (
    "books_to_dvd",
    "books_to_electronics",
    "books_to_kitchen",
    "hate_to_davidson",
    "hate_to_stormfront",
    "offensive_to_davidson",
)


def report(data_dir, results_dir="results", plan_profile="reference") -> str:
    """Markdown: the achieved FLOP rate of the stored runs of each profile (by part and
    precision, on the machine that ran them), and the FLOP count of ``plan_profile``'s whole
    plan against this machine's measured fp32 matrix-multiply peak."""
    import torch

    from tools.bench.machine import matmul_peak

    lines = ["| profile | part | precision | runs | s per run | GFLOP/s per worker |"]
    lines.append("|---|---|---|---|---|---|")
    for profile in ("quick", plan_profile):
        mine = [e for e in EXPERIMENTS if (Path(results_dir) / "store" / e / profile).is_dir()]
        if not mine:
            continue
        runs = throughput(profile, results_dir, data_dir, mine)["runs"]
        runs = runs[runs["seconds"].notna() & (runs["flops"] > 0)]
        for (part, precision), g in runs.groupby(["part", "precision"]):
            rate = g["flops"].sum() / g["seconds"].sum() / 1e9
            per = g["seconds"].mean()
            lines.append(
                f"| {profile} | {part} | {precision} | {len(g)} | {per:.1f} | {rate:.0f} |"
            )
    plan = planned_flops(plan_profile, data_dir, results_dir, list(EXPERIMENTS))
    torch.set_num_threads(1)
    one = matmul_peak()["flops_per_s"]
    torch.set_num_threads(2)
    two = matmul_peak()["flops_per_s"]
    total = plan["flops"].sum()
    parts = plan.groupby("part")["flops"].agg(["size", "sum"])
    lines += ["", f"| {plan_profile} plan | runs | PFLOP |", "|---|---|---|"]
    lines += [f"| {p} | {int(r['size'])} | {r['sum'] / 1e15:.2f} |" for p, r in parts.iterrows()]
    lines.append(f"| all | {len(plan)} | {total / 1e15:.2f} |")
    lines += [
        "",
        f"This machine's fp32 matmul peak: {one / 1e9:.0f} GFLOP/s at one thread, "
        f"{two / 1e9:.0f} at two; the whole plan at that two-thread peak: "
        f"{total / two / 3600:.1f} hours.",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    import argparse

    p = argparse.ArgumentParser(prog="python -m tools.bench.throughput", description=__doc__)
    p.add_argument("--data-dir", required=True, help="corpora root")
    p.add_argument("--results-dir", default="results", help="the folder holding store/")
    args = p.parse_args(argv)
    print(report(args.data_dir, args.results_dir))


if __name__ == "__main__":
    main()
