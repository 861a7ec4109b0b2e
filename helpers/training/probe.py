"""A linear probe fitted to convergence on frozen features: LP-FT's first stage.

The head is the only trainable part; everything below it is frozen, so its input is computed
once (the frozen-prefix cache) and the probe is a small, smooth problem that L-BFGS solves to
convergence in full batch. No encoder step is taken, so LP-FT's fine-tuning stage gets the same
step budget as every other method.
"""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F

from helpers.config.settings import TrainConfig
from helpers.data.encoding import Encoded
from helpers.models.layers import layer_groups
from helpers.training.engine import FitResult, class_weights
from helpers.training.plan import subset_plan
from helpers.training.prefix import CACHE, skip_prefix

MAX_ITER = 500  # L-BFGS iterations; small heads converge in far fewer
TOLERANCE = 1e-7  # gradient and step tolerance that counts as converged


def fit_probe(model, train: Encoded, label_names, cfg: TrainConfig) -> FitResult:
    """Fit the head of ``model`` (in place) by L-BFGS on the cached output of the frozen rest.

    The objective is the engine's class-weighted cross-entropy plus ``cfg.weight_decay / 2``
    times the squared norm of the head's matrices (the L2 that AdamW's decay stands for).
    """
    layers = layer_groups(model)
    plan = subset_plan(model, ["head"])
    depth = layers.num_layers
    model.eval()  # frozen features and a deterministic objective: no dropout anywhere
    # Every supported head reads the first token only, so its input is one vector per example
    # (exact: tests/test_methods.py checks it against the full forward pass).
    feats = CACHE.features(model, layers, depth, train, precision=cfg.precision)
    hidden = torch.stack([f[0] for f in feats])[:, None].float()
    mask = torch.ones(hidden.shape[:2], dtype=torch.long)
    labels = torch.tensor(train.labels)
    weights = class_weights(train.labels, len(label_names), cfg.class_weight)
    params = [p for g in plan.groups for p in g.params]
    decayed = [p for g in plan.groups if g.decay for p in g.params]
    optimizer = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=MAX_ITER,
        tolerance_grad=TOLERANCE,
        tolerance_change=TOLERANCE,
        line_search_fn="strong_wolfe",
    )
    losses = []

    def objective():
        optimizer.zero_grad()
        with skip_prefix(model, layers, depth):
            out = model(inputs_embeds=hidden, attention_mask=mask).logits
        loss = F.cross_entropy(out.float(), labels, weight=weights)
        loss = loss + 0.5 * cfg.weight_decay * sum((p**2).sum() for p in decayed)
        loss.backward()
        losses.append(float(loss.detach()))
        return loss

    optimizer.step(objective)
    history = pd.DataFrame(
        {
            "step": range(len(losses)),
            "epoch": 0,
            "split": "train",
            "metric": "probe_loss",
            "value": losses,
        }
    )
    return FitResult(
        history,
        best_step=len(losses) - 1,
        best_score=float("nan"),
        steps=0,
        seconds=0.0,
        cached_prefix=depth,
    )
