"""A model's predictions on an encoded set, and its validation score: the one scoring path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from helpers.data.encoding import Encoded, collate, eval_batches
from helpers.evaluation.metrics import confusion, metrics_from_confusion
from helpers.models.precision import autocast


@torch.inference_mode()
def predict(
    model,
    data: Encoded,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    forward=None,
    precision: str = "fp32",
) -> pd.DataFrame:
    """Predictions for every example: id, source, label, pred and one probability per class.

    ``forward(batch) -> logits`` overrides the plain model call (e.g. cached frozen features).
    ``device``: where the batches go; by default, where the model is (a GPU after training).
    ``precision``: the run's (``helpers.models.precision``): a model is scored as it trained.
    """
    device = device or model_device(model)
    was_training = model.training
    model.eval()
    order, probs = [], []
    for index in eval_batches(data, batch_size):
        batch = {k: v.to(device) for k, v in collate(data, index).items() if k != "labels"}
        with autocast(precision, device):
            logits = forward(batch, index) if forward is not None else model(**batch).logits
        probs.append(torch.softmax(logits.float(), -1).cpu().numpy())
        order.append(index)
    model.train(was_training)
    index = np.concatenate(order)
    p = np.empty((len(data), probs[0].shape[1]), dtype=np.float32)
    p[index] = np.concatenate(probs)
    frame = pd.DataFrame(
        {"id": data.ids, "source": data.sources, "label": data.labels, "pred": p.argmax(1)}
    )
    for k in range(p.shape[1]):
        frame[f"p_{k}"] = p[:, k]
    return frame


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a model's weights are: the device its inputs must go to."""
    return next(model.parameters()).device


def score(
    model,
    data: Encoded,
    label_names,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    forward=None,
    precision: str = "fp32",
) -> dict[str, float]:
    """Every metric of ``model`` on ``data`` (no interval): what model selection compares."""
    preds = predict(model, data, batch_size, device, forward, precision)
    values = metrics_from_confusion(
        confusion(preds["label"].to_numpy(), preds["pred"].to_numpy(), len(label_names)),
        label_names,
    )
    return {m: float(v) for m, v in values.items()}
