"""Frozen-prefix features: run the frozen bottom of a model once, reuse it for every epoch.

When a method trains only layers k and above (last-two, head only, ...), the embeddings and
layers 0..k-1 are a fixed function of the input. Their output is computed once per example and
kept, keyed by a fingerprint of the frozen weights, so it is shared across epochs, methods and
deltas that start from the same source model. This is exact because frozen layers always run
without dropout in this project (``helpers.training.engine.fit`` keeps them in eval mode whether
or not the cache is used), so cached and recomputed features are the same numbers.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from contextlib import contextmanager

import pandas as pd
import torch
from torch import nn

from helpers.data.encoding import Encoded, collate, eval_batches, pad
from helpers.errors import UserError
from helpers.evaluation.predictions import model_device, predict
from helpers.models.layers import LayerGroups, get_module, set_module
from helpers.models.precision import autocast


class _PassThroughEmbeddings(nn.Module):
    """Stands in for the embeddings: returns the (cached) hidden states it is handed."""

    def forward(self, *args, inputs_embeds=None, **kwargs):
        if inputs_embeds is not None:
            return inputs_embeds
        return next(a for a in args if a is not None)  # DistilBERT passes it positionally


class _PassThroughLayer(nn.Module):
    """Stands in for an encoder layer whose output is already in the cache."""

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states


class _Captured(Exception):
    """Raised from a hook to stop the forward pass once the prefix output is captured."""


def prefix_depth(groups: LayerGroups, trainable: list[str]) -> int | None:
    """How many encoder layers sit below the first trainable group (None: nothing to cache)."""
    if "embeddings" in trainable or not trainable:
        return None
    depth = 0
    while depth < groups.num_layers and f"layer.{depth}" not in trainable:
        depth += 1
    return depth


def _prefix_paths(groups: LayerGroups, depth: int) -> list[str]:
    return [
        *groups.paths["embeddings"],
        *(p for i in range(depth) for p in groups.paths[f"layer.{i}"]),
    ]


def fingerprint(model: nn.Module, groups: LayerGroups, depth: int) -> str:
    """A digest of the frozen prefix's weights (same weights, same cached features)."""
    h = hashlib.sha1(str(depth).encode())
    for path in _prefix_paths(groups, depth):
        for name, t in get_module(model, path).state_dict().items():
            h.update(name.encode())
            h.update(t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


@contextmanager
def skip_prefix(model: nn.Module, groups: LayerGroups, depth: int):
    """Temporarily replace the frozen prefix so the model accepts its output as inputs_embeds."""
    swapped = {}
    for path in groups.paths["embeddings"]:
        swapped[path] = set_module(model, path, _PassThroughEmbeddings())
    for i in range(depth):
        for path in groups.paths[f"layer.{i}"]:
            swapped[path] = set_module(model, path, _PassThroughLayer())
    try:
        yield model
    finally:
        for path, module in swapped.items():
            set_module(model, path, module)


@torch.inference_mode()
def compute_prefix(
    model: nn.Module,
    groups: LayerGroups,
    depth: int,
    data: Encoded,
    batch_size: int = 128,
    device=None,
    precision: str = "fp32",
) -> list[torch.Tensor]:
    """Hidden states after the first ``depth`` layers, one [length, hidden] tensor per example
    (kept on the CPU; ``device``: where the model runs, by default where it is), computed in
    the run's ``precision``."""
    device = device or model_device(model)
    last = groups.paths[f"layer.{depth - 1}"][-1] if depth else groups.paths["embeddings"][-1]
    captured = {}

    def hook(_module, _inputs, output):
        captured["h"] = output[0] if isinstance(output, tuple) else output
        raise _Captured

    handle = get_module(model, last).register_forward_hook(hook)
    was_training = model.training
    model.eval()
    out: list[torch.Tensor | None] = [None] * len(data)
    try:
        for index in eval_batches(data, batch_size):
            batch = {k: v.to(device) for k, v in collate(data, index).items() if k != "labels"}
            try:
                with autocast(precision, device):
                    model(**batch)
            except _Captured:
                pass
            for j, i in enumerate(index):
                out[i] = captured["h"][j, : len(data.input_ids[i])].cpu().clone()
    finally:
        handle.remove()
        model.train(was_training)
    return out


LIMIT_ENV = "CBV_PREFIX_CACHE_GB"  # how much memory the prefix cache may hold, in GiB
DEFAULT_LIMIT_GB = 4.0


def cache_limit() -> int:
    """The cache's memory bound in bytes: ``$CBV_PREFIX_CACHE_GB`` GiB, 4 by default."""
    raw = os.environ.get(LIMIT_ENV, "")
    try:
        gib = float(raw) if raw.strip() else DEFAULT_LIMIT_GB
    except ValueError:
        gib = -1.0
    if not gib > 0:
        raise UserError(f"${LIMIT_ENV} must be a positive number of GiB, got {raw!r}; fix or unset")
    return int(gib * 2**30)


class PrefixCache:
    """Process-wide store of prefix features: fingerprint -> (corpus, id, tokens) -> tensor.

    Examples are keyed by corpus and id together, two corpora may number their examples alike
    (a CSV without an id column is numbered 0, 1, ...) and a mixture holds both; and by their
    token count, so a text cut at another ``max_length`` is not taken for the same input.
    Memory is bounded (``max_bytes``, by default ``cache_limit()``): past it, the prefixes used
    least recently are dropped whole (never the one in use), to be recomputed if asked again.
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        self.store: OrderedDict[str, dict[tuple[str, str, int], torch.Tensor]] = OrderedDict()
        self.sizes: dict[str, int] = {}  # bytes held per prefix
        self.max_bytes = max_bytes
        self.computed = 0  # examples run through a prefix (for the benchmark's accounting)

    def features(
        self,
        model,
        groups,
        depth,
        data: Encoded,
        device=None,
        key: str | None = None,
        precision: str = "fp32",
    ) -> list[torch.Tensor]:
        """Prefix features for every example of ``data``, computing only the missing ones.

        ``key`` is the prefix's ``fingerprint`` when the caller has it already; features of
        another ``precision`` are other numbers, so they are kept apart.
        """
        key = f"{key or fingerprint(model, groups, depth)}:{precision}"
        table = self.store.setdefault(key, {})
        self.store.move_to_end(key)
        names = list(zip(data.sources, data.ids, map(len, data.input_ids)))
        missing = [i for i, name in enumerate(names) if name not in table]
        if missing:
            subset = data.subset(missing)
            feats = compute_prefix(model, groups, depth, subset, device=device, precision=precision)
            table.update(zip((names[i] for i in missing), feats))
            self.computed += len(missing)
            added = sum(f.numel() * f.element_size() for f in feats)
            self.sizes[key] = self.sizes.get(key, 0) + added
            self._evict(keep=key)
        return [table[name] for name in names]

    def nbytes(self) -> int:
        return sum(self.sizes.values())

    def _evict(self, keep: str) -> None:
        limit = cache_limit() if self.max_bytes is None else self.max_bytes
        for old in [k for k in self.store if k != keep]:
            if self.nbytes() <= limit:
                break
            del self.store[old]
            self.sizes.pop(old, None)

    def clear(self) -> None:
        self.store.clear()
        self.sizes.clear()


CACHE = PrefixCache()


def from_prefix(model: nn.Module, groups: LayerGroups, depth: int, feats, run=None):
    """``logits(index)`` of the examples at ``index``, run from their cached prefix features
    ``feats`` through the layers above the prefix. ``run``: the callable to run (the engine's
    compiled or wrapped model), ``model`` by default; its prefix is swapped out meanwhile."""
    run = run or model
    device = model_device(model)

    def logits(index) -> torch.Tensor:
        hidden, mask = pad([feats[i] for i in index])
        with skip_prefix(model, groups, depth):
            return run(inputs_embeds=hidden.to(device), attention_mask=mask.to(device)).logits

    return logits


def predict_from_prefix(
    model: nn.Module,
    groups: LayerGroups,
    depth: int,
    data: Encoded,
    batch_size: int = 128,
    precision: str = "fp32",
) -> pd.DataFrame:
    """``predict`` that runs the first ``depth`` layers through ``CACHE``: each example's prefix
    features are computed once per prefix weights (by fingerprint, so any model is exact), and
    every later model with the same frozen prefix (other deltas, tuning trials) runs only the
    layers above it. The same numbers as ``predict`` up to float rounding (the prefix may have
    been computed in other batches, padded otherwise)."""
    feats = CACHE.features(model, groups, depth, data, precision=precision)
    logits = from_prefix(model, groups, depth, feats)
    forward = lambda _batch, index: logits(index)  # noqa: E731
    return predict(model, data, batch_size, forward=forward, precision=precision)
