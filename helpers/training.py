"""The one training engine behind every method: plain subsets, CBV, LP-FT, Auto-RGN.

Built on Accelerate rather than transformers' Trainer. Accelerate gives device placement, bf16
autocast on GPUs and unchanged scale-out under ``accelerate launch``, while leaving the loop
ours, which the project needs: the frozen-prefix feature cache (layers below the first trainable
one run once per data set, not once per step), separate optimiser groups with their own warm-up
for CBV coefficients, per-group learning-rate scales for Auto-RGN, and a hook after every step
for coefficient constraints. Trainer would need most of that patched in through callbacks.

Conventions: frozen groups always run in eval mode (no dropout), cached or not, so the cache is
exact; the best checkpoint on the validation split is kept and restored at the end.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from helpers.checkpoints import clear_resume, load_resume, save_resume, trainable_state
from helpers.encoding import Encoded, collate, train_batches
from helpers.errors import UserError
from helpers.evaluation import bootstrap, predict
from helpers.features import CACHE, fingerprint, pad_features, prefix_depth, skip_prefix
from helpers.layers import layer_groups


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the run is stopped, others go on."""


@dataclass(frozen=True)
class TrainConfig:
    """How one model is trained; every method shares these settings."""

    epochs: int = 2                  # passes over the training mixture
    batch_size: int = 16             # examples per optimiser step
    lr: float = 5e-5                 # peak learning rate of the weights
    weight_decay: float = 0.01       # AdamW decay on weights (never on coefficients)
    warmup_ratio: float = 0.1        # share of steps with linearly rising weight lr
    max_grad_norm: float = 1.0       # clip to keep early steps of small data stable
    alpha_lr: float = 0.05           # CBV coefficients move far faster than weights
    alpha_warmup_ratio: float = 0.1  # coefficients frozen for this share of steps (see cbv.py)
    evals_per_epoch: int = 1         # validation passes per epoch (best one is kept)
    select_metric: str = "macro_f1"  # validation metric that picks the best checkpoint
    eval_batch_size: int = 128       # evaluation batches are length-sorted, so can be large
    seed: int = 0                    # data order, dropout and head initialisation
    cache_prefix: bool = True        # reuse frozen-prefix features across epochs and methods
    compile: bool = False            # torch.compile the model (GPU users; slow to start)
    checkpoint_every: int = 0        # extra resume points every N steps (0: at validations)

    def __post_init__(self):
        for name in ("epochs", "batch_size", "evals_per_epoch", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"train setting {name} must be at least 1, "
                                f"got {getattr(self, name)}")
        for name in ("lr", "alpha_lr", "weight_decay", "max_grad_norm"):
            if not 0 <= float(getattr(self, name)) < math.inf:
                raise UserError(f"train setting {name} must be a finite number >= 0, "
                                f"got {getattr(self, name)}")
        for name in ("warmup_ratio", "alpha_warmup_ratio"):
            if not 0 <= float(getattr(self, name)) < 1:
                raise UserError(f"train setting {name} must lie in [0, 1), "
                                f"got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FitResult:
    """What a training run leaves behind besides the trained model."""

    history: pd.DataFrame            # tidy: step, epoch, split, metric, value
    best_step: int
    best_score: float
    steps: int
    seconds: float
    examples_seen: int
    cached_prefix: int | None = None  # depth of the cached frozen prefix, if any


def make_accelerator() -> Accelerator:
    """bf16 autocast on GPUs, full precision on CPUs; scale-out comes from `accelerate launch`."""
    cuda = torch.cuda.is_available()
    return Accelerator(mixed_precision="bf16" if cuda else "no", cpu=not cuda)


def freeze_except(model, groups_to_train: list[str]) -> list[dict]:
    """Train only the named groups; returns their optimiser groups (decay split out)."""
    groups = layer_groups(model)
    model.requires_grad_(False)
    decay, no_decay = [], []
    for g in groups_to_train:
        for name, p in groups.parameters(model, g):
            p.requires_grad_(True)
            (no_decay if p.ndim < 2 else decay).append(p)
    return [{"params": decay, "kind": "weight"},
            {"params": no_decay, "kind": "weight", "weight_decay": 0.0}]


def set_frozen_eval(model) -> None:
    """Put every module without trainable parameters in eval mode (frozen layers: no dropout)."""
    groups = layer_groups(model)
    for g in groups.names:
        for module in groups.modules(model, g):
            if not any(p.requires_grad for p in module.parameters()):
                module.eval()


def train_mode(model, core, groups) -> None:
    """Training mode for trainable parts, eval mode for frozen groups."""
    model.train()
    if groups is not None:
        set_frozen_eval(core)


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up then linear decay to zero."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def fit(model, train: Encoded, val: Encoded, label_names, cfg: TrainConfig,
        groups_to_train: list[str] | None = None, param_groups: list[dict] | None = None,
        before_step=None, after_step=None, progress: bool = True, desc: str = "train",
        resume_dir: Path | None = None) -> FitResult:
    """Train ``model`` in place and restore its best validation checkpoint.

    Either name the layer groups to train (plain models) or pass ready ``param_groups`` (dicts
    with ``params`` and ``kind`` "weight" or "alpha"; CBV and friends). ``before_step(optimizer)``
    runs after backward, before the update (Auto-RGN sets lr scales there); ``after_step(model)``
    runs after the update (CBV projects its coefficients there). With ``resume_dir``, resume
    points are written there at every validation (and every ``checkpoint_every`` steps), an
    interrupted run continues from the latest one, and the folder is removed at the end.
    """
    set_seed(cfg.seed)
    if param_groups is None:
        param_groups = freeze_except(model, groups_to_train or [])
    param_groups = [g for g in param_groups if g["params"]]
    if not param_groups:
        raise UserError("nothing to train: the method selects no parameters")
    accelerator = make_accelerator()
    device = accelerator.device
    model.to(device)
    groups = layer_groups(model) if hasattr(model, "config") else None

    # Frozen prefix: computed once, then the model runs only from the first trainable layer.
    depth = None
    if cfg.cache_prefix and groups_to_train is not None and groups is not None:
        depth = prefix_depth(groups, groups_to_train)
        depth = depth if depth else None
    if depth:
        key = fingerprint(model, groups, depth)   # hashing the prefix weights once per fit
        train_feats = CACHE.features(model, groups, depth, train, device=device, key=key)
        val_feats = CACHE.features(model, groups, depth, val, device=device, key=key)

    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    for g in param_groups:
        alpha = g["kind"] == "alpha"
        g.setdefault("lr", cfg.alpha_lr if alpha else cfg.lr)
        g.setdefault("weight_decay", 0.0 if alpha else cfg.weight_decay)
        g["base_lr"] = g["lr"]
    # Fused AdamW: one kernel per step instead of a loop over tensors (CPU and GPU alike).
    optimizer = torch.optim.AdamW(param_groups, fused=True)
    model, optimizer = accelerator.prepare(model, optimizer)
    core = accelerator.unwrap_model(model)
    run = torch.compile(model) if cfg.compile else model
    weight_warmup = int(cfg.warmup_ratio * total)
    alpha_start = int(cfg.alpha_warmup_ratio * total)
    eval_at = {int(round(steps_per_epoch * (e + (i + 1) / cfg.evals_per_epoch))) - 1
               for e in range(cfg.epochs) for i in range(cfg.evals_per_epoch)}

    def forward(batch, index, feats):
        if depth:
            hidden, mask = pad_features(feats, index)
            with skip_prefix(core, groups, depth):
                return run(inputs_embeds=hidden.to(device), attention_mask=mask.to(device),
                           labels=batch["labels"].to(device) if "labels" in batch else None)
        return run(**{k: v.to(device) for k, v in batch.items()})

    def validate():
        eval_forward = (lambda b, idx: forward(b, idx, val_feats).logits) if depth else None
        preds = predict(core, val, cfg.eval_batch_size, device, forward=eval_forward)
        return bootstrap(preds, label_names, n_boot=1)

    rows, best_score, best_step, best = [], -math.inf, -1, None
    seen, first_step = 0, 0
    resumed = load_resume(resume_dir)
    if resumed is not None:  # continue an interrupted run exactly where its last point was
        weights, opt_state, best, progress_state = resumed
        core.load_state_dict(weights, strict=False)
        optimizer.load_state_dict(opt_state)
        rows, first_step, seen = progress_state["rows"], progress_state["step"], progress_state["seen"]
        best_score, best_step = progress_state["best_score"], progress_state["best_step"]
    save_at = eval_at if not cfg.checkpoint_every else set(range(
        cfg.checkpoint_every - 1, total, cfg.checkpoint_every)) | eval_at
    start = time.perf_counter()
    bar = tqdm(total=total, initial=first_step, desc=desc, disable=not progress, leave=False)
    train_mode(model, core, groups)
    order = {}                                  # epoch -> its batches, drawn once
    for step in range(first_step, total):
        epoch, within = divmod(step, steps_per_epoch)
        # Batch order and dropout depend only on (seed, step): a resumed run repeats them.
        if epoch not in order:
            order = {epoch: train_batches(len(train), cfg.batch_size,
                                          np.random.default_rng([cfg.seed, epoch]))}
        index = order[epoch][within]
        if accelerator.num_processes > 1:  # under `accelerate launch`: one shard per process
            index = index[accelerator.process_index::accelerator.num_processes]
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        batch = collate(train, index) if not depth else {"labels": torch.from_numpy(
            train.labels[index])}
        for g in optimizer.param_groups:
            if g["kind"] == "alpha":
                g["lr"] = g["base_lr"] * (step >= alpha_start) * g.get("scale", 1.0)
            else:
                g["lr"] = g["base_lr"] * _lr_factor(step, total, weight_warmup) * g.get(
                    "scale", 1.0)
        out = forward(batch, index, train_feats if depth else None)
        loss = out.loss
        if not torch.isfinite(loss):
            bar.close()
            raise NonFiniteLossError(f"{desc}: loss became {loss.item()} at step {step}; "
                                     "lower the learning rate")
        accelerator.backward(loss)
        if cfg.max_grad_norm:
            accelerator.clip_grad_norm_(
                [p for g in param_groups if g["kind"] == "weight" for p in g["params"]],
                cfg.max_grad_norm)
        if before_step:
            before_step(optimizer)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if after_step:
            after_step(core)
        seen += len(index)
        rows.append({"step": step, "epoch": epoch, "split": "train", "metric": "loss",
                     "value": float(loss.detach())})
        if hasattr(core, "alphas"):
            rows += [{"step": step, "epoch": epoch, "split": "train",
                      "metric": f"alpha/{k}", "value": v} for k, v in core.alphas().items()]
        if step in eval_at:
            scores = validate()
            train_mode(model, core, groups)
            rows += [{"step": step, "epoch": epoch, "split": "validation", "metric": m,
                      "value": v} for m, v in zip(scores["metric"], scores["value"])]
            score = float(scores.set_index("metric")["value"][cfg.select_metric])
            if score > best_score:
                best_score, best_step, best = score, step, trainable_state(core)
        if resume_dir is not None and step in save_at and step + 1 < total:
            save_resume(resume_dir, core, optimizer,
                        {"step": step + 1, "seen": seen, "rows": rows, "best_score": best_score,
                         "best_step": best_step}, best)
        bar.update(1)
    bar.close()
    seconds = time.perf_counter() - start
    core.load_state_dict(best, strict=False)
    model.eval()
    clear_resume(resume_dir)
    return FitResult(pd.DataFrame(rows), best_step=best_step, best_score=best_score, steps=total,
                     seconds=seconds, examples_seen=seen, cached_prefix=depth)

