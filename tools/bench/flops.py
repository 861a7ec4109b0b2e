"""The FLOP model: 2 N T + 4 L d T^2 forward FLOPs per example of T real tokens, 3x to train."""

from __future__ import annotations

import numpy as np

from helpers.models.layers import layer_groups


def flop_model(model) -> dict:
    """N (parameters outside the embeddings), L (layers) and d (hidden size) of a classifier."""
    groups = layer_groups(model)
    embedding = {id(p) for _, p in groups.parameters(model, "embeddings")}
    n = sum(p.numel() for p in model.parameters() if id(p) not in embedding)
    hidden = getattr(model.config, "hidden_size", None) or model.config.dim
    return {"non_embedding_params": n, "layers": groups.num_layers, "hidden": hidden}


def forward_flops(shape: dict, lengths: np.ndarray) -> float:
    """Forward FLOPs over examples of the given real lengths: 2 N T + 4 L d T^2 each."""
    t = np.asarray(lengths, dtype=np.float64)
    return float(
        (2 * shape["non_embedding_params"] * t + 4 * shape["layers"] * shape["hidden"] * t**2).sum()
    )


def training_flops(shape: dict, lengths: np.ndarray) -> float:
    """Training FLOPs (forward + backward = 3 forwards): 6 N T + 12 L d T^2 per example."""
    return 3 * forward_flops(shape, lengths)
