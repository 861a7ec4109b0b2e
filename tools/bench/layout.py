"""How to spend this machine's cores: one worker at every thread, or one worker per core.

``python -m tools.bench.layout --data-dir D`` times full fine-tuning of the packaged MiniLM
through the engine (``tools.bench.training.time_method``: batch 16 of real books reviews at the
benchmark's review length, the study's dominant cost) in each layout, side by side in one run:
one process with ``cores`` threads, then ``cores`` processes of one thread each, started
together. Each process reports its median step; a layout's throughput is the sum of its
processes' (examples per second). Nothing else may run meanwhile: two jobs sharing the cores
slow torch several-fold.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from tools.bench.config import BenchConfig


def worker(data_dir: str, steps: int, threads: int) -> dict:
    """One process: the median optimiser step of one epoch of ``steps`` steps."""
    import torch

    torch.set_num_threads(threads)
    from helpers.models.loading import load_classifier, load_tokenizer
    from tools.bench.data import load_data
    from tools.bench.training import time_method

    cfg = BenchConfig(steps=steps, threads=threads)
    data = load_data(cfg, data_dir, load_tokenizer(cfg.model))
    source = load_classifier(cfg.model, data.label_names, seed=cfg.seed)
    step = time_method("all", source, data, cfg, epochs=1)["step_s"]
    return {"threads": threads, "steps_per_s": 1.0 / step}


def measure(data_dir: str, steps: int = 12, cores: int = 2) -> list:
    """Each layout's throughput in examples per second, one after the other."""
    rows = []
    for procs, threads in ((1, cores), (cores, 1)):
        cmd = [sys.executable, "-m", "tools.bench.layout", "--worker", "--data-dir", data_dir]
        cmd += ["--steps", str(steps), "--threads", str(threads)]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        running = [subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env) for _ in range(procs)]
        found = [json.loads(p.communicate()[0].decode().strip().splitlines()[-1]) for p in running]
        rate = sum(f["steps_per_s"] for f in found) * BenchConfig().batch_size
        rows.append(
            {
                "layout": f"{procs} worker(s) x {threads} thread(s)",
                "examples_per_s": rate,
                "per_worker_steps_per_s": [round(f["steps_per_s"], 3) for f in found],
            }
        )
    base = rows[0]["examples_per_s"]
    for row in rows:
        row["vs_one_worker"] = row["examples_per_s"] / base
    return rows


def to_markdown(rows: list) -> str:
    cfg = BenchConfig()
    lines = [
        f"Training throughput by layout (MiniLM, full fine-tuning through the engine, batch "
        f"{cfg.batch_size} of real reviews cut at {cfg.review_length} tokens, fp32; "
        "`python -m tools.bench.layout`):",
        "",
        "| layout | examples/s | x one worker | steps/s per worker |",
        "|---|---|---|---|",
    ]
    for r in rows:
        per = ", ".join(f"{s:.3f}" for s in r["per_worker_steps_per_s"])
        lines.append(
            f"| {r['layout']} | {r['examples_per_s']:.2f} | {r['vs_one_worker']:.2f}x | {per} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m tools.bench.layout", description=__doc__)
    p.add_argument("--data-dir", required=True, help="corpora root (amazon_books is read)")
    p.add_argument("--steps", type=int, default=12, help="timed steps per process")
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.data_dir, args.steps, args.threads)))
        return
    rows = measure(args.data_dir, args.steps, args.cores)
    print(to_markdown(rows))


if __name__ == "__main__":
    main()
