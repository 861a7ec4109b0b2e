"""Where and in what precision models run: the device kind, bf16 detection, one autocast.

A run's precision is a profile setting (``precision: bf16`` or ``fp32``) and, with the device
kind, part of every stored run's key: a bf16 GPU run and an fp32 CPU run of one configuration
never share a folder. bf16 runs under ``torch.autocast`` (matrix products in bfloat16, weights,
optimiser state, norms and the loss in float32) on GPUs and on CPUs with native bf16 dot
products (x86 ``avx512_bf16`` or ``amx_bf16``, Arm ``bf16``); elsewhere it falls back to fp32
with one line. Training, validation, test predictions and the frozen-prefix features all run
inside the same ``autocast``, so a model is scored in the precision it was trained in.
"""

from __future__ import annotations

import contextlib
import os
import sys
from functools import lru_cache
from pathlib import Path

import torch

from helpers.config.settings import PRECISIONS

CPU_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}  # /proc/cpuinfo flags (x86, Arm)
# Pins the compute runs are keyed under ("cpu/bf16"): reading a store made on another machine
# (a bf16 CPU study read where bf16 is missing, a GPU study read on a CPU). Notebook kernels
# inherit it; `report --stored-only` sets it from the stored runs.
COMPUTE_ENV = "CBV_COMPUTE"
DEVICE_KINDS = ("cpu", "cuda")


def device_kind() -> str:
    """The kind of device runs train on here: "cuda" when a GPU is visible, else "cpu"."""
    return "cuda" if torch.cuda.is_available() else "cpu"


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags as Linux reports them (empty where /proc/cpuinfo is absent)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    flags: set[str] = set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            flags.update(value.split())
    return frozenset(flags)


def bf16_supported(kind: str | None = None) -> bool:
    """Whether bf16 runs natively (fast) on this machine's device of ``kind``."""
    kind = kind or device_kind()
    if kind == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(cpu_flags() & CPU_BF16_FLAGS)


_SAID: set[str] = set()


def resolve_precision(asked: str, kind: str | None = None, quiet: bool = False) -> str:
    """The precision runs will use: ``asked``, or fp32 (said in one line) without native bf16."""
    if asked not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {asked!r}")
    if asked == "bf16" and not bf16_supported(kind):
        if not quiet and (kind or device_kind()) not in _SAID:
            _SAID.add(kind or device_kind())  # once per process, however many studies open
            print(
                f"precision: bf16 asked, but this {kind or device_kind()} has no native bf16; "
                "running in fp32 (runs are keyed by precision, so they never mix)",
                file=sys.stderr,
            )
        return "fp32"
    return asked


def compute(asked: str, quiet: bool = False) -> dict[str, str]:
    """What a run's key records of where it ran: the device kind and the precision used
    (``$CBV_COMPUTE`` where it pins them)."""
    pinned = pinned_compute()
    if pinned is not None:
        return pinned
    kind = device_kind()
    return {"device": kind, "precision": resolve_precision(asked, kind, quiet)}


def pinned_compute() -> dict[str, str] | None:
    """``$CBV_COMPUTE`` ("device/precision") as a compute record, None when unset."""
    raw = os.environ.get(COMPUTE_ENV, "").strip()
    if not raw:
        return None
    device, _, precision = raw.partition("/")
    if device not in DEVICE_KINDS or precision not in PRECISIONS:
        from helpers.errors import UserError

        raise UserError(
            f"${COMPUTE_ENV} must read device/precision with device one of {DEVICE_KINDS} and "
            f"precision one of {PRECISIONS} (for example cpu/bf16), got {raw!r}; fix or unset it"
        )
    return {"device": device, "precision": precision}


def compute_label(record: dict[str, str]) -> str:
    """A compute record as ``$CBV_COMPUTE`` writes it."""
    return f"{record['device']}/{record['precision']}"


def autocast(precision: str, device: str | torch.device | None = None):
    """The context a forward pass runs in: bf16 autocast, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    kind = torch.device(device).type if device is not None else device_kind()
    return torch.autocast(kind, dtype=torch.bfloat16)
