"""The layer-group view of a sequence classifier: embeddings, each encoder layer, pooler, head.

Every fine-tuning method in the project speaks in these group names, so a surgical baseline is
just a list of selections ("first:2", "head", ...) and CBV puts one coefficient on each group.
Group names: ``embeddings``, ``layer.0`` ... ``layer.{L-1}``, ``pooler`` (when the model has
one), ``head``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from helpers.errors import UserError

# Where each architecture keeps its parts, as attribute paths from the classifier model.
# One entry per family; a new family is one more entry.
LAYOUTS: dict[str, dict[str, tuple[str, ...] | str]] = {
    "bert": dict(
        embeddings=("bert.embeddings",),
        layers="bert.encoder.layer",
        pooler=("bert.pooler",),
        head=("classifier",),
    ),
    "roberta": dict(
        embeddings=("roberta.embeddings",),
        layers="roberta.encoder.layer",
        pooler=(),
        head=("classifier",),
    ),
    "distilbert": dict(
        embeddings=("distilbert.embeddings",),
        layers="distilbert.transformer.layer",
        pooler=(),
        head=("pre_classifier", "classifier"),
    ),
    "electra": dict(
        embeddings=("electra.embeddings", "electra.embeddings_project"),
        layers="electra.encoder.layer",
        pooler=(),
        head=("classifier",),
    ),
}
# Families that share a layout under another model_type name.
ALIASES = {"xlm-roberta": "roberta", "camembert": "roberta", "megatron-bert": "bert"}


def get_module(model: nn.Module, path: str) -> nn.Module | None:
    """Follow a dotted attribute path; None when a part is absent (e.g. a missing pooler)."""
    module = model
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def set_module(model: nn.Module, path: str, module: nn.Module) -> nn.Module:
    """Replace the module at a dotted path (list items included); returns the old one."""
    parent, _, name = path.rpartition(".")
    owner = get_module(model, parent) if parent else model
    old = getattr(owner, name)
    setattr(owner, name, module)  # nn.ModuleList keeps items under "0", "1", ... too
    return old


@dataclass(frozen=True)
class LayerGroups:
    """Ordered group name -> module paths, plus the encoder depth."""

    paths: dict[str, tuple[str, ...]]
    num_layers: int

    @property
    def names(self) -> list[str]:
        return list(self.paths)

    def select(self, selection: str) -> list[str]:
        """Resolve one selection to group names.

        Selections: ``all`` (every group except the embeddings), ``none``, ``head``, ``pooler``,
        ``embeddings``, ``layer.i``, ``first:k``, ``middle:k``, ``last:k`` (k encoder layers).
        """
        L = self.num_layers
        if selection == "none":
            return []
        if selection == "all":
            return [g for g in self.names if g != "embeddings"]
        if selection in self.paths:
            return [selection]
        kind, _, k = selection.partition(":")
        if kind in ("first", "middle", "last") and k.isdigit():
            k = int(k)
            if not 1 <= k <= L:
                raise UserError(
                    f"selection {selection!r}: k must be between 1 and {L} for this {L}-layer model"
                )
            start = {"first": 0, "middle": (L - k) // 2, "last": L - k}[kind]
            return [f"layer.{i}" for i in range(start, start + k)]
        raise UserError(
            f"unknown layer selection {selection!r}; use all, none, head, pooler, "
            f"embeddings, layer.i (i < {L}), first:k, middle:k or last:k"
        )

    def select_many(self, selections) -> list[str]:
        """Union of several selections, in model order."""
        chosen = {g for s in selections for g in self.select(s)}
        return [g for g in self.names if g in chosen]

    def modules(self, model: nn.Module, group: str) -> list[nn.Module]:
        return [get_module(model, p) for p in self.paths[group]]

    def parameters(self, model: nn.Module, group: str) -> list[tuple[str, nn.Parameter]]:
        """(full parameter name, parameter) pairs of one group."""
        out = []
        for path in self.paths[group]:
            for name, p in get_module(model, path).named_parameters():
                out.append((f"{path}.{name}", p))
        return out


def layer_groups(model: nn.Module) -> LayerGroups:
    """Name the groups of a Hugging Face sequence classifier (BERT, RoBERTa, DistilBERT,
    ELECTRA)."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    family = ALIASES.get(model_type, model_type)
    if family not in LAYOUTS:
        raise UserError(
            f"model type {model_type!r} has no layer layout; supported: "
            f"{', '.join(sorted([*LAYOUTS, *ALIASES]))} (add one entry to "
            "helpers/models/layers.py LAYOUTS for a new family)"
        )
    layout = LAYOUTS[family]
    layers = get_module(model, layout["layers"])
    paths: dict[str, tuple[str, ...]] = {}
    paths["embeddings"] = tuple(p for p in layout["embeddings"] if get_module(model, p) is not None)
    for i in range(len(layers)):
        paths[f"layer.{i}"] = (f"{layout['layers']}.{i}",)
    pooler = tuple(p for p in layout["pooler"] if get_module(model, p) is not None)
    if pooler:
        paths["pooler"] = pooler
    paths["head"] = layout["head"]
    return LayerGroups(paths=paths, num_layers=len(layers))
