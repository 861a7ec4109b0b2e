"""The processes of one data-parallel run (torchrun, accelerate launch): who writes, who decides.

Under data parallelism every process trains the same run on its shard of each batch. Only the
main process writes (stores, checkpoints, resume points); the others wait at a barrier and then
read what it wrote. Decisions that must be the same everywhere (is this run done, is it held by
another worker, which checkpoint is best) are taken on the main process and broadcast, so the
processes never disagree. In an ordinary single process every function here is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


def _launched() -> bool:
    """True inside a multi-process launch (torchrun and accelerate set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _state():
    """Accelerate's process state, created as the engine creates it (CPU unless CUDA is there)."""
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def num_processes() -> int:
    return _state().num_processes if _launched() else 1


def is_main() -> bool:
    """Whether this process is the one that writes (always, outside a multi-process launch)."""
    return _state().is_main_process if _launched() else True


def barrier() -> None:
    """Wait until every process gets here (after the main process wrote, before all read)."""
    if _launched():
        _state().wait_for_everyone()


def agree(decide: Callable[[], T]) -> T:
    """Run ``decide`` on the main process only and return its result on every process.

    An exception raised by ``decide`` is raised on every process, so all take the same branch.
    """
    if not _launched():
        return decide()
    from accelerate.utils import broadcast_object_list

    payload: list = [None]
    if is_main():
        try:
            payload[0] = ("value", decide())
        except Exception as e:  # re-raised everywhere below
            payload[0] = ("error", e)
    kind, value = broadcast_object_list(payload)[0]
    if kind == "error":
        raise value
    return value
