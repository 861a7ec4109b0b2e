"""The one training engine behind every method: plain subsets, CBV, LP-FT, Auto-RGN.

Built on Accelerate rather than transformers' Trainer. Accelerate gives device placement and
unchanged scale-out under ``accelerate launch``, while leaving the loop
ours, which the project needs: the frozen-prefix feature cache (layers below the first trainable
one run once per data set, not once per step), separate optimiser groups with their own warm-up
for CBV coefficients, per-group learning-rate scales for Auto-RGN, and a hook after every step
for coefficient constraints. Trainer would need most of that patched in through callbacks.

What to train comes as a ``Plan`` (``helpers.training.plan``): typed optimiser groups and hooks,
so the engine treats every method alike. Conventions: frozen groups always run in eval mode (no
dropout), cached or not, so the cache is exact; CBV coefficients keep a zero learning rate for
the first ``alpha_warmup_ratio`` of the steps (the one home of that warm-up); the best checkpoint
on the validation split is kept and restored at the end. ``fit`` walks the steps; its three
parts (set-up, one step, evaluate-and-checkpoint) are ``helpers.training.fitting.Fitting``'s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, set_seed
from tqdm.auto import tqdm

from helpers.config.settings import TrainConfig
from helpers.data.encoding import Encoded
from helpers.training.checkpoints import clear_resume
from helpers.training.fitting import Fitting, NonFiniteLossError
from helpers.training.plan import Plan

__all__ = ["FitResult", "NonFiniteLossError", "class_weights", "fit", "make_accelerator"]

MINORITY_SHARE = 0.3  # a class under this share of the training set gets a balanced loss weight


@dataclass
class FitResult:
    """What a training run leaves behind besides the trained model."""

    history: pd.DataFrame  # tidy: step, epoch, split, metric, value
    best_step: int
    best_score: float
    steps: int
    seconds: float
    cached_prefix: int | None = None  # depth of the cached frozen prefix, if any


def make_accelerator() -> Accelerator:
    """Device placement and scale-out (`accelerate launch`); precision is the run's own
    (``TrainConfig.precision``, one ``autocast`` for training and evaluation alike)."""
    cuda = torch.cuda.is_available()
    # Under several processes Accelerate wraps the model in DDP, which averages gradients. Its
    # buffer broadcast is switched off: these encoders hold only constant buffers (position ids),
    # and the frozen-prefix path swaps modules out, leaving DDP nothing to broadcast (a crash).
    ddp = DistributedDataParallelKwargs(broadcast_buffers=False)
    return Accelerator(mixed_precision="no", cpu=not cuda, kwargs_handlers=[ddp])


def class_weights(labels: np.ndarray, num_labels: int, rule: str) -> torch.Tensor | None:
    """Balanced loss weights n / (k * n_c) when ``rule`` is "auto" and some class is rare.

    Rare: under ``MINORITY_SHARE`` of the training set. Without weights a model on such data
    can reach a low loss by always answering the majority class.
    """
    if rule == "none":
        return None
    counts = np.bincount(labels, minlength=num_labels).astype(float)
    if counts.min() >= MINORITY_SHARE * counts.sum():
        return None
    return torch.tensor(counts.sum() / (num_labels * np.maximum(counts, 1)), dtype=torch.float32)


def fit(
    model,
    train: Encoded,
    val: Encoded,
    label_names,
    cfg: TrainConfig,
    plan: Plan,
    progress: bool = True,
    desc: str = "train",
    resume_dir: Path | None = None,
) -> FitResult:
    """Train ``model`` in place as ``plan`` says and restore its best validation checkpoint.

    The loss is cross-entropy (class-weighted by ``cfg.class_weight``) plus the plan's penalty.
    With ``cfg.patience`` the run stops after that many validations without improvement. With
    ``resume_dir``, resume points are written there at every validation (and every
    ``checkpoint_every`` steps), an interrupted run continues from the latest one, and the
    folder is removed at the end.
    """
    set_seed(cfg.seed)
    accelerator = make_accelerator()
    weights = class_weights(train.labels, len(label_names), cfg.class_weight)
    run = Fitting(model, train, val, label_names, cfg, plan, accelerator, weights, desc, resume_dir)
    start = time.perf_counter()
    quiet = not progress or not accelerator.is_main_process  # one bar, not one per process
    bar = tqdm(total=run.total, initial=run.first_step, desc=desc, disable=quiet, leave=False)
    run.train_mode()
    step = run.first_step - 1
    try:
        for step in range(run.first_step, run.total):
            run.step(step)
            stop = run.evaluate_and_checkpoint(step)
            bar.update(1)
            if stop:
                break
        run.flush()  # the losses since the last validation
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    run.core.load_state_dict(run.best, strict=False)
    run.model.eval()
    if accelerator.is_main_process:
        clear_resume(resume_dir)
    return FitResult(
        pd.DataFrame(run.rows),
        best_step=run.best_step,
        best_score=run.best_score,
        steps=step + 1,
        seconds=seconds,
        cached_prefix=run.prefix.depth if run.prefix else None,
    )
