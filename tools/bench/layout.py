"""How to spend this machine's cores: one worker at every thread, or one worker per core.

``python -m tools.bench.layout --data-dir D`` trains the packaged MiniLM (full fine-tuning,
batch 16 of real books reviews cut at 96 tokens, the study's dominant cost) for a fixed number
of steps in each layout, side by side in one run: one process with ``cores`` threads, then
``cores`` processes of one thread each, started together. Each process reports its steps per
second after a warm-up; a layout's throughput is their sum (examples per second). Nothing else
may run meanwhile: two jobs sharing the cores slow torch several-fold.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

BATCH, LENGTH, WARMUP = 16, 96, 2


def worker(data_dir: str, steps: int, threads: int, precision: str) -> dict:
    """One process: ``steps`` timed training steps after ``WARMUP`` untimed ones."""
    import torch

    torch.set_num_threads(threads)
    from helpers.data.corpora import load_corpus
    from helpers.data.encoding import encode
    from helpers.models.loading import load_classifier, load_tokenizer
    from helpers.models.precision import autocast

    model = load_classifier()
    frame = load_corpus("amazon_books", "train", "sentiment", data_dir).frame
    frame = frame.sample(BATCH * (steps + WARMUP), random_state=0)
    enc = encode(frame, load_tokenizer(), LENGTH)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    times = []
    for i in range(steps + WARMUP):
        rows = range(i * BATCH, (i + 1) * BATCH)
        ids = [enc.input_ids[j] for j in rows]
        width = max(len(x) for x in ids)
        input_ids = torch.tensor([list(x) + [enc.pad_id] * (width - len(x)) for x in ids])
        mask = (input_ids != enc.pad_id).long()
        labels = torch.tensor(enc.labels[list(rows)])
        start = time.perf_counter()
        with autocast(precision, "cpu"):
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
        if i >= WARMUP:
            times.append(time.perf_counter() - start)
    return {"threads": threads, "steps_per_s": len(times) / sum(times)}


def measure(data_dir: str, steps: int = 12, cores: int = 2, precision: str = "fp32") -> list:
    """Each layout's throughput in examples per second, one after the other."""
    rows = []
    for procs, threads in ((1, cores), (cores, 1)):
        cmd = [sys.executable, "-m", "tools.bench.layout", "--worker", "--data-dir", data_dir]
        cmd += ["--steps", str(steps), "--threads", str(threads), "--precision", precision]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        running = [subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env) for _ in range(procs)]
        found = [json.loads(p.communicate()[0].decode().strip().splitlines()[-1]) for p in running]
        rate = sum(f["steps_per_s"] for f in found) * BATCH
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


def to_markdown(rows: list, precision: str) -> str:
    lines = [
        f"Training throughput by layout (MiniLM, full fine-tuning, batch {BATCH} x {LENGTH} "
        f"tokens of real reviews, {precision}; `python -m tools.bench.layout`):",
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
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.data_dir, args.steps, args.threads, args.precision)))
        return
    rows = measure(args.data_dir, args.steps, args.cores, args.precision)
    print(to_markdown(rows, args.precision))


if __name__ == "__main__":
    main()
