"""One training run in three parts: set-up, one optimiser step, and evaluate-and-checkpoint.

``helpers.training.engine.fit`` walks the steps; a ``Fitting`` holds what one run needs between
them (the prepared model and optimiser, the frozen-prefix features, the schedule, the history
and the best checkpoint so far), so each part reads on its own. A step's loss stays on the
device until the next validation or resume point reads them all back at once (``flush``): no
host synchronisation per step, and a non-finite loss is caught there, naming its step.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from helpers.config.settings import TrainConfig
from helpers.data.encoding import Encoded, collate, train_batches
from helpers.evaluation.predictions import score
from helpers.models.precision import autocast
from helpers.training.checkpoints import load_resume, save_resume, trainable_state
from helpers.training.plan import ALPHA, WEIGHT, Plan, trainable_parameters
from helpers.training.prefix import CACHE, fingerprint, from_prefix
from helpers.training.ranks import agree


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the run is stopped, others go on."""


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up then linear decay to zero."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


class Fitting:
    """The state of one run of ``fit``: built by the set-up, advanced by ``step`` and
    ``evaluate_and_checkpoint``."""

    def __init__(self, model, train: Encoded, val: Encoded, label_names, cfg: TrainConfig,
                 plan: Plan, accelerator, weights, desc: str, resume_dir: Path | None):  # fmt: skip
        self.cfg, self.plan, self.train, self.val = cfg, plan, train, val
        self.label_names, self.desc, self.resume_dir = label_names, desc, resume_dir
        self.accelerator, self.device = accelerator, accelerator.device
        model.to(self.device)
        self.prefix = plan.prefix if cfg.cache_prefix else None
        self.weights = None if weights is None else weights.to(self.device)
        if self.prefix:  # frozen prefix: computed once, then the model runs from above it
            p = self.prefix
            key = fingerprint(model, p.layers, p.depth)  # the prefix weights, hashed once
            self.feats = {
                id(d): CACHE.features(model, p.layers, p.depth, d, self.device, key, cfg.precision)
                for d in (train, val)
            }
        self.steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
        self.total = self.steps_per_epoch * cfg.epochs
        self.base_lr = [cfg.coefficient_lr if g.kind == ALPHA else cfg.lr for g in plan.groups]
        # Fused AdamW: one kernel per step instead of a loop over tensors (CPU and GPU alike).
        groups = [
            {
                "params": list(g.params),
                "lr": lr,
                "weight_decay": cfg.weight_decay if g.decay and g.kind == WEIGHT else 0.0,
            }
            for g, lr in zip(plan.groups, self.base_lr)
        ]
        optimizer = torch.optim.AdamW(groups, fused=True)
        self.model, self.optimizer = accelerator.prepare(model, optimizer)
        self.core = accelerator.unwrap_model(self.model)
        self.run = torch.compile(self.model) if cfg.compile else self.model
        self.weight_warmup = int(cfg.warmup_ratio * self.total)
        self.alpha_start = int(cfg.alpha_warmup_ratio * self.total)
        self.eval_at = {
            int(round(self.steps_per_epoch * (e + (i + 1) / cfg.evals_per_epoch))) - 1
            for e in range(cfg.epochs)
            for i in range(cfg.evals_per_epoch)
        }
        every = cfg.checkpoint_every
        self.save_at = self.eval_at | (set(range(every - 1, self.total, every)) if every else set())
        self.clipped = trainable_parameters(plan, WEIGHT)
        self.rows, self.best_score, self.best_step, self.best, self.stale = (
            [],
            -math.inf,
            -1,
            None,
            0,
        )
        self.first_step, self.order, self.pending = 0, {}, []
        resumed = load_resume(resume_dir)
        if resumed is not None:  # continue an interrupted run exactly where its last point was
            state, opt_state, self.best, saved = resumed
            self.core.load_state_dict(state, strict=False)
            self.optimizer.load_state_dict(opt_state)
            self.rows, self.first_step = saved["rows"], saved["step"]
            self.stale = saved.get("stale", 0)
            self.best_score, self.best_step = saved["best_score"], saved["best_step"]

    def logits(self, data: Encoded, index) -> torch.Tensor:
        with autocast(self.cfg.precision, self.device):
            if self.prefix:
                p = self.prefix
                return from_prefix(self.core, p.layers, p.depth, self.feats[id(data)], self.run)(
                    index
                )
            batch = collate(data, index)
            return self.run(
                input_ids=batch["input_ids"].to(self.device),
                attention_mask=batch["attention_mask"].to(self.device),
            ).logits

    def train_mode(self) -> None:
        self.model.train()
        for module in self.plan.frozen:  # frozen parts never drop out, whatever the method
            module.eval()

    def step(self, step: int) -> None:
        """One optimiser step: this step's batch, loss, backward, clipping, learning rates."""
        cfg, train, acc = self.cfg, self.train, self.accelerator
        epoch, within = divmod(step, self.steps_per_epoch)
        # Batch order and dropout depend only on (seed, step): a resumed run repeats them.
        if epoch not in self.order:
            rng = np.random.default_rng([cfg.seed, epoch])
            self.order = {epoch: train_batches(len(train), cfg.batch_size, rng)}
        batch = self.order[epoch][within]
        shards = acc.num_processes  # under torchrun / accelerate launch: one per process
        index = batch[acc.process_index :: shards]
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        labels = torch.from_numpy(train.labels[index]).to(self.device)
        # The whole batch's (weighted) mean, whatever the shards: each process's sum over the
        # batch's total weight, times the process count, since DDP averages the gradients.
        losses = F.cross_entropy(
            self.logits(train, index).float(), labels, weight=self.weights, reduction="none"
        )
        weight_sum = len(batch) if self.weights is None else self.weights[train.labels[batch]].sum()
        loss = losses.sum() * shards / weight_sum
        if self.plan.penalty:
            loss = loss + self.plan.penalty()
        seen = loss.detach()
        if acc.num_processes > 1:  # the whole batch's loss, the same on every process
            seen = acc.reduce(seen, reduction="mean")
        acc.backward(loss)
        if cfg.max_grad_norm:
            acc.clip_grad_norm_(self.clipped, cfg.max_grad_norm)
        # Learning rates of this step: schedule, coefficient warm-up, and this step's scales.
        plan = self.plan
        scales = plan.lr_scales() if plan.lr_scales else [1.0] * len(plan.groups)
        for g, group, lr, scale in zip(
            self.optimizer.param_groups, plan.groups, self.base_lr, scales
        ):
            alpha = group.kind == ALPHA
            factor = (
                (step >= self.alpha_start)
                if alpha
                else lr_factor(step, self.total, self.weight_warmup)
            )
            g["lr"] = lr * factor * scale
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if plan.after_step:
            plan.after_step(self.core)
        row = {"step": step, "epoch": epoch, "split": "train"}
        # read back at the next validation or resume point, not now: no host sync per step
        self.pending.append((len(self.rows), step, seen))
        self.rows.append({**row, "metric": "loss", "value": None})
        if plan.record:  # a recorded tensor (CBV's alphas) is read back with the losses
            for k, v in plan.record(self.core).items():
                if torch.is_tensor(v):
                    self.pending.append((len(self.rows), None, v.detach()))
                    v = None
                self.rows.append({**row, "metric": k, "value": v})

    def flush(self) -> None:
        """Read the losses since the last flush back in one transfer; a non-finite one stops
        the run (``NonFiniteLossError``, naming its step)."""
        if not self.pending:
            return
        values = torch.stack([seen for _, _, seen in self.pending]).float().cpu().tolist()
        for (i, step, _), value in zip(self.pending, values):
            if step is not None and not math.isfinite(value):  # a loss (not a recorded value)
                raise NonFiniteLossError(
                    f"{self.desc}: loss became {value} at step {step}; lower the learning rate"
                )
            self.rows[i]["value"] = value
        self.pending = []

    def validate(self) -> dict[str, float]:
        cfg = self.cfg
        forward = (lambda _, idx: self.logits(self.val, idx)) if self.prefix else None
        return score(self.core, self.val, self.label_names, cfg.eval_batch_size, self.device,
                     forward, cfg.precision)  # fmt: skip

    def evaluate_and_checkpoint(self, step: int) -> bool:
        """Score on validation where the schedule says, keep the best weights, write a resume
        point; returns whether patience says stop."""
        cfg = self.cfg
        if step in self.eval_at or step in self.save_at:
            self.flush()
        if step in self.eval_at:
            # Scored on the main process and broadcast: every process keeps the same checkpoint.
            scores = agree(self.validate)
            self.train_mode()
            row = {"step": step, "epoch": step // self.steps_per_epoch, "split": "validation"}
            self.rows += [{**row, "metric": m, "value": v} for m, v in scores.items()]
            self.stale += 1
            if scores[cfg.select_metric] > self.best_score:
                self.best_score, self.best_step, self.stale = scores[cfg.select_metric], step, 0
                self.best = trainable_state(self.core)
        stop = bool(cfg.patience and self.stale >= cfg.patience)
        writes = self.resume_dir is not None and self.accelerator.is_main_process
        if writes and step in self.save_at and step + 1 < self.total and not stop:
            state = {"step": step + 1, "rows": self.rows, "stale": self.stale}
            state.update(best_score=self.best_score, best_step=self.best_step)
            save_resume(self.resume_dir, self.core, self.optimizer, state, self.best)
        return stop
