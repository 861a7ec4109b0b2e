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
on the validation split is kept and restored at the end.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, set_seed
from tqdm.auto import tqdm

from helpers.data.encoding import Encoded, collate, train_batches
from helpers.evaluation.predictions import score
from helpers.models.precision import autocast
from helpers.spec.settings import TrainConfig
from helpers.training.checkpoints import clear_resume, load_resume, save_resume, trainable_state
from helpers.training.plan import ALPHA, WEIGHT, Plan, trainable_parameters
from helpers.training.prefix import CACHE, fingerprint, from_prefix
from helpers.training.ranks import agree

MINORITY_SHARE = 0.3  # a class under this share of the training set gets a balanced loss weight


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the run is stopped, others go on."""


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


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up then linear decay to zero."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


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
    device = accelerator.device
    model.to(device)
    prefix = plan.prefix if cfg.cache_prefix else None
    weights = class_weights(train.labels, len(label_names), cfg.class_weight)
    weights = None if weights is None else weights.to(device)

    # Frozen prefix: computed once, then the model runs only from the first trainable layer.
    if prefix:
        key = fingerprint(model, prefix.layers, prefix.depth)  # the prefix weights, hashed once
        feats = {
            id(data): CACHE.features(
                model, prefix.layers, prefix.depth, data, device, key, cfg.precision
            )
            for data in (train, val)
        }

    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    base_lr = [cfg.coefficient_lr if g.kind == ALPHA else cfg.lr for g in plan.groups]
    # Fused AdamW: one kernel per step instead of a loop over tensors (CPU and GPU alike).
    optimizer = torch.optim.AdamW(
        [
            {
                "params": list(g.params),
                "lr": lr,
                "weight_decay": cfg.weight_decay if g.decay and g.kind == WEIGHT else 0.0,
            }
            for g, lr in zip(plan.groups, base_lr)
        ],
        fused=True,
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    core = accelerator.unwrap_model(model)
    run = torch.compile(model) if cfg.compile else model
    weight_warmup = int(cfg.warmup_ratio * total)
    alpha_start = int(cfg.alpha_warmup_ratio * total)
    eval_at = {
        int(round(steps_per_epoch * (e + (i + 1) / cfg.evals_per_epoch))) - 1
        for e in range(cfg.epochs)
        for i in range(cfg.evals_per_epoch)
    }
    clipped = trainable_parameters(plan, WEIGHT)

    def logits(data: Encoded, index) -> torch.Tensor:
        with autocast(cfg.precision, device):
            if prefix:
                return from_prefix(core, prefix.layers, prefix.depth, feats[id(data)], run)(index)
            batch = collate(data, index)
            return run(
                input_ids=batch["input_ids"].to(device),
                attention_mask=batch["attention_mask"].to(device),
            ).logits

    def train_mode():
        model.train()
        for module in plan.frozen:  # frozen parts never drop out, whatever the method
            module.eval()

    def validate() -> dict[str, float]:
        forward = (lambda _, idx: logits(val, idx)) if prefix else None
        return score(core, val, label_names, cfg.eval_batch_size, device, forward, cfg.precision)

    rows, best_score, best_step, best, stale = [], -math.inf, -1, None, 0
    first_step = 0
    resumed = load_resume(resume_dir)
    if resumed is not None:  # continue an interrupted run exactly where its last point was
        state, opt_state, best, saved = resumed
        core.load_state_dict(state, strict=False)
        optimizer.load_state_dict(opt_state)
        rows, first_step, stale = saved["rows"], saved["step"], saved.get("stale", 0)
        best_score, best_step = saved["best_score"], saved["best_step"]
    every = cfg.checkpoint_every
    save_at = eval_at | (set(range(every - 1, total, every)) if every else set())
    start = time.perf_counter()
    quiet = not progress or not accelerator.is_main_process  # one bar, not one per process
    bar = tqdm(total=total, initial=first_step, desc=desc, disable=quiet, leave=False)
    train_mode()
    order = {}  # epoch -> its batches, drawn once
    for step in range(first_step, total):
        epoch, within = divmod(step, steps_per_epoch)
        # Batch order and dropout depend only on (seed, step): a resumed run repeats them.
        if epoch not in order:
            rng = np.random.default_rng([cfg.seed, epoch])
            order = {epoch: train_batches(len(train), cfg.batch_size, rng)}
        batch = order[epoch][within]
        shards = accelerator.num_processes  # under torchrun / accelerate launch: one per process
        index = batch[accelerator.process_index :: shards]
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        labels = torch.from_numpy(train.labels[index]).to(device)
        # The whole batch's (weighted) mean, whatever the shards: each process's sum over the
        # batch's total weight, times the process count, since DDP averages the gradients.
        losses = F.cross_entropy(
            logits(train, index).float(), labels, weight=weights, reduction="none"
        )
        weight_sum = len(batch) if weights is None else weights[train.labels[batch]].sum()
        loss = losses.sum() * shards / weight_sum
        if plan.penalty:
            loss = loss + plan.penalty()
        seen = loss.detach()
        if accelerator.num_processes > 1:  # the whole batch's loss, the same on every process
            seen = accelerator.reduce(seen, reduction="mean")
        if not torch.isfinite(seen):
            bar.close()
            raise NonFiniteLossError(
                f"{desc}: loss became {seen.item()} at step {step}; lower the learning rate"
            )
        accelerator.backward(loss)
        if cfg.max_grad_norm:
            accelerator.clip_grad_norm_(clipped, cfg.max_grad_norm)
        # Learning rates of this step: schedule, coefficient warm-up, and this step's scales.
        scales = plan.lr_scales() if plan.lr_scales else [1.0] * len(plan.groups)
        for g, group, lr, scale in zip(optimizer.param_groups, plan.groups, base_lr, scales):
            alpha = group.kind == ALPHA
            factor = (step >= alpha_start) if alpha else _lr_factor(step, total, weight_warmup)
            g["lr"] = lr * factor * scale
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if plan.after_step:
            plan.after_step(core)
        row = {"step": step, "epoch": epoch, "split": "train"}
        rows.append({**row, "metric": "loss", "value": float(seen)})
        if plan.record:
            rows += [{**row, "metric": k, "value": v} for k, v in plan.record(core).items()]
        if step in eval_at:
            # Scored on the main process and broadcast: every process keeps the same checkpoint.
            scores = agree(validate)
            train_mode()
            row["split"] = "validation"
            rows += [{**row, "metric": m, "value": v} for m, v in scores.items()]
            stale += 1
            if scores[cfg.select_metric] > best_score:
                best_score, best_step, stale = scores[cfg.select_metric], step, 0
                best = trainable_state(core)
        stop = cfg.patience and stale >= cfg.patience
        writes = resume_dir is not None and accelerator.is_main_process  # only the main writes
        if writes and step in save_at and step + 1 < total and not stop:
            progress_state = {"step": step + 1, "rows": rows, "stale": stale}
            progress_state.update(best_score=best_score, best_step=best_step)
            save_resume(resume_dir, core, optimizer, progress_state, best)
        bar.update(1)
        if stop:
            break
    bar.close()
    seconds = time.perf_counter() - start
    core.load_state_dict(best, strict=False)
    model.eval()
    if accelerator.is_main_process:
        clear_resume(resume_dir)
    return FitResult(
        pd.DataFrame(rows),
        best_step=best_step,
        best_score=best_score,
        steps=step + 1,
        seconds=seconds,
        cached_prefix=prefix.depth if prefix else None,
    )
