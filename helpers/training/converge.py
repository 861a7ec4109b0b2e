"""CBV's coefficients fitted to convergence with the weights held where a run left them.

The question behind "optimising the alphas is slow at usual learning rates": after the standard
budget, how far are the alphas from the alphas the same weights want? Here only the coefficients
learn, on the run's own training mixture, with the engine's loss (class-weighted cross-entropy
plus any penalty), without dropout (a fixed objective), at a rate fast enough to cross [0, 1] in
a few steps, until no coefficient moves more than ``tolerance`` over a whole epoch (or
``max_epochs`` pass). The constraint's projection (the study's sum normalisation) follows every
step, as in training. No validation set is looked at: this is the training objective's optimum.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from helpers.config.settings import TrainConfig
from helpers.data.encoding import Encoded, collate, train_batches
from helpers.models.cbv import CBVModel
from helpers.models.precision import autocast
from helpers.training.engine import FitResult, class_weights

RATE = 0.1  # Adam on the coefficients' parameters: crosses the sigmoid's range in ~20 steps
TOLERANCE = 1e-3  # the largest move of any alpha over an epoch that counts as converged
MAX_EPOCHS = 12


def converge_alphas(
    model: CBVModel,
    train: Encoded,
    label_names,
    cfg: TrainConfig,
    rate: float = RATE,
    tolerance: float = TOLERANCE,
    max_epochs: int = MAX_EPOCHS,
) -> FitResult:
    """Fit ``model``'s coefficients alone (in place) until they stop moving; the history has
    the loss per step and every alpha per epoch, and ``best_score`` the last epoch's move."""
    model.freeze_weights(True)
    model.eval()  # no dropout: one fixed objective
    device = next(model.parameters()).device
    params = model.alpha_parameters()
    optimizer = torch.optim.Adam(params, lr=rate)
    weights = class_weights(train.labels, len(label_names), cfg.class_weight)
    weights = None if weights is None else weights.to(device)
    rows, step, moved = [], 0, float("inf")
    before = np.array(list(model.alphas().values()))
    for epoch in range(max_epochs):
        rng = np.random.default_rng([cfg.seed, 7919, epoch])  # its own stream, seeded
        for index in train_batches(len(train), cfg.batch_size, rng):
            batch = collate(train, index)
            with autocast(cfg.precision, device):
                out = model(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                ).logits
            labels = torch.from_numpy(train.labels[index]).to(device)
            loss = F.cross_entropy(out.float(), labels, weight=weights)
            if model.cbv_config.penalty > 0:
                loss = loss + model.penalty()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                model.project_()
            rows.append(
                {"step": step, "epoch": epoch, "metric": "loss", "value": float(loss.detach())}
            )
            step += 1
        now = model.alphas()
        rows += [
            {"step": step, "epoch": epoch, "metric": f"alpha/{k}", "value": v}
            for k, v in now.items()
        ]
        after = np.array(list(now.values()))
        moved, before = float(np.abs(after - before).max()), after
        if moved < tolerance:
            break
    history = pd.DataFrame(rows).assign(split="train")
    return FitResult(history, best_step=step - 1, best_score=moved, steps=step, seconds=0.0)
