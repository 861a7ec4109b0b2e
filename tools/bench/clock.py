"""Clocks: optimiser-step timestamps, the step and epoch times they give, and a timed call."""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
import torch.optim.optimizer as torch_optimizer

from tools.bench.machine import sync


@contextmanager
def step_clock():
    """Timestamps at the end of every optimiser step of any optimiser (a global torch hook).

    Yields a dict with ``start`` (entry time) and ``stamps``; on a GPU each stamp waits for the
    queued work, so a stamp is when the step really finished.
    """
    record = {"start": 0.0, "stamps": []}

    def hook(_optimizer, _args, _kwargs):
        sync()
        record["stamps"].append(time.perf_counter())

    handle = torch_optimizer.register_optimizer_step_post_hook(hook)
    try:
        sync()
        record["start"] = time.perf_counter()
        yield record
    finally:
        handle.remove()


def summarise_steps(start: float, stamps: list[float], steps_per_epoch: int, epochs: int) -> dict:
    """Step and epoch times from optimiser-step timestamps.

    A step time is the gap between two consecutive updates within one epoch, so the
    validation pass between epochs is never counted. ``first_epoch_s`` runs from ``start``
    (the call) to the end of epoch one: setup (model copies, frozen-prefix features, optimiser)
    plus every step. ``epoch_s[e]`` is ``steps_per_epoch`` times the median step of epoch e;
    ``one_off_s`` is what the first epoch costs beyond that (an estimate: noise can make it
    slightly negative when there is almost no setup).
    """
    if len(stamps) != steps_per_epoch * epochs:
        raise RuntimeError(
            f"expected {steps_per_epoch * epochs} optimiser steps, saw {len(stamps)}"
        )
    per_epoch = np.asarray(stamps, dtype=np.float64).reshape(epochs, steps_per_epoch)
    within = np.diff(per_epoch, axis=1)
    epoch_s = [float(steps_per_epoch * np.median(w)) for w in within]
    first = float(per_epoch[0, -1] - start)
    return {
        "step_s": float(np.median(within)),
        "steps_timed": int(within.size),
        "step_durations_s": [round(float(x), 6) for x in within.ravel()],
        "first_epoch_s": first,
        "one_off_s": first - epoch_s[0],
        "epoch_s": epoch_s,
    }


def timed(fn):
    """Call ``fn()``; returns (seconds, its value), with queued GPU work counted."""
    sync()
    start = time.perf_counter()
    value = fn()
    sync()
    return time.perf_counter() - start, value
