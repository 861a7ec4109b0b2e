"""What one fit trains, described as data the engine reads: the training engine's contract.

A strategy (``helpers.training.strategies``) builds a ``Plan``: typed optimiser groups (weights or
CBV coefficients), the layer view of a plain model (so frozen groups run in eval mode and a frozen
prefix can be cached), and optional hooks. The engine (``helpers.training.engine``) runs any plan
the same way; it never inspects what kind of model it was handed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from helpers.errors import UserError
from helpers.models.layers import LayerGroups, layer_groups
from helpers.training.prefix import prefix_depth

WEIGHT, ALPHA = "weight", "alpha"


@dataclass(frozen=True)
class ParamGroup:
    """One optimiser group: its parameters, what they are, and whether weight decay applies."""

    name: str
    params: tuple[nn.Parameter, ...]
    kind: str = WEIGHT  # WEIGHT: model weights; ALPHA: CBV coefficients (own lr, warm-up)
    decay: bool = True  # AdamW weight decay (never on coefficients)

    def __post_init__(self):
        if self.kind not in (WEIGHT, ALPHA):
            raise ValueError(f"parameter group kind {self.kind!r} is not {WEIGHT!r} or {ALPHA!r}")


@dataclass(frozen=True)
class Prefix:
    """The frozen bottom of a plain model: the embeddings and ``depth`` encoder layers."""

    layers: LayerGroups
    depth: int


@dataclass
class Plan:
    """Everything the engine needs to know about one fit besides data and settings.

    frozen: modules without trainable parameters; they run in eval mode while training (no
        dropout), the same rule for every method.
    prefix: a frozen prefix whose output is computed once and cached (plain models only).
    lr_scales: called after backward, before the update; returns one learning-rate multiplier per
        group for this very step (Auto-RGN).
    penalty: a term added to the loss (CBV's sparsity pressure on its coefficients).
    after_step: called with the model after every update (CBV projects its coefficients).
    record: per-step values to keep in the training history (CBV's alphas), by name.
    """

    groups: list[ParamGroup]
    frozen: list[nn.Module] = field(default_factory=list)
    prefix: Prefix | None = None
    lr_scales: Callable[[], list[float]] | None = None
    penalty: Callable[[], torch.Tensor] | None = None
    after_step: Callable[[nn.Module], None] | None = None
    record: Callable[[nn.Module], dict[str, float]] | None = None

    def __post_init__(self):
        self.groups = [g for g in self.groups if g.params]
        if not self.groups:
            raise UserError("nothing to train: the method selects no parameters")


def split_decay(name: str, params, kind: str = WEIGHT) -> list[ParamGroup]:
    """Matrices decay; biases and LayerNorm weights (one-dimensional) do not."""
    params = list(params)
    return [
        ParamGroup(name, tuple(p for p in params if p.ndim >= 2), kind),
        ParamGroup(f"{name}/no_decay", tuple(p for p in params if p.ndim < 2), kind, decay=False),
    ]


def frozen_groups(model: nn.Module, layers: LayerGroups) -> list[nn.Module]:
    """Modules of every layer group without a trainable parameter."""
    return [
        module
        for g in layers.names
        for module in layers.modules(model, g)
        if not any(p.requires_grad for p in module.parameters())
    ]


def subset_plan(model: nn.Module, groups_to_train: list[str], cache: bool = True) -> Plan:
    """Train only the named layer groups of a plain model; freeze (and maybe cache) the rest."""
    layers = layer_groups(model)
    model.requires_grad_(False)
    params = []
    for g in groups_to_train:
        for _, p in layers.parameters(model, g):
            p.requires_grad_(True)
            params.append(p)
    depth = prefix_depth(layers, groups_to_train) if cache else None
    return Plan(
        split_decay("weights", params),
        frozen=frozen_groups(model, layers),
        prefix=Prefix(layers, depth) if depth else None,
    )


def trainable_parameters(plan: Plan, kind: str = WEIGHT) -> list[torch.Tensor]:
    """Every parameter of the plan's groups of one kind."""
    return [p for g in plan.groups if g.kind == kind for p in g.params]
