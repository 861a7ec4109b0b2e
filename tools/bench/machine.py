"""The machine the benchmark runs on: device, cores, load, versions and matrix-multiply peak."""

from __future__ import annotations

import datetime
import os
import platform
import time

import accelerate
import torch
import transformers

from helpers.study.store import provenance


def device() -> torch.device:
    """Where the engine trains: the GPU when there is one (bf16 autocast), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync() -> None:
    """Wait for queued GPU work, so that a timestamp marks finished work (no-op on CPUs)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def usable_cpus() -> int:
    """Cores this process may run on (its affinity where the OS reports one)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count()


def machine() -> dict:
    """Cores, threads, load, device and library versions, recorded beside every number."""
    cuda = torch.cuda.is_available()
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable_cpus(),
        "torch_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()),
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
        "git_commit": provenance()["git_commit"],
    }


def matmul_peak(size: int | None = None, repeats: int = 5, dtype=None) -> dict:
    """The machine's matrix-multiply rate: the best of ``repeats`` square matmuls (2 n^3 FLOPs),
    in ``dtype`` (default: bfloat16 on a GPU, float32 on a CPU)."""
    dev = device()
    dtype = dtype or (torch.bfloat16 if dev.type == "cuda" else torch.float32)
    n = size or (8192 if dev.type == "cuda" else 2048)
    gen = torch.Generator(device=dev).manual_seed(0)
    a = torch.randn(n, n, device=dev, dtype=dtype, generator=gen)
    b = torch.randn(n, n, device=dev, dtype=dtype, generator=gen)
    a @ b  # warm-up: thread pools, kernels
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - start)
    return {
        "n": n,
        "dtype": str(dtype).removeprefix("torch."),
        "repeats": repeats,
        "best_s": best,
        "flops_per_s": 2 * n**3 / best,
    }
