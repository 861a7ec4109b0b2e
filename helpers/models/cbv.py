"""Coefficient-based variable (CBV) fine-tuning: one learnable coefficient per layer group.

``wrap(model, CBVConfig(...))`` turns a Hugging Face sequence classifier into a ``CBVModel`` that
blends a trainable copy (theta, the model's own weights) with a frozen source copy (theta0) per
layer group g (``helpers.models.layers`` names: ``layer.0`` ... ``layer.{L-1}``, ``head``,
optionally ``embeddings`` and ``pooler``), with alpha_g in [0, 1]:

* ``space="weight"`` (what the poster describes): the group runs once with the weights
  ``theta0 + alpha_g * (theta - theta0)``. Bakes into one plain model.
* ``space="output"`` (what the study's code did): the group runs twice and its output is
  ``alpha_g * f(h; theta) + (1 - alpha_g) * f(h; theta0)``. When a group has several modules
  (DistilBERT's ``pre_classifier`` and ``classifier``) each module is mixed on its own with the
  group's coefficient. The frozen branch always runs in eval mode (no dropout): it stands for the
  source model, and a second dropout mask would only add noise.

By default every group has a coefficient, so CBV covers what full fine-tuning trains: with every
alpha at 1 the model is exactly its trainable copy, at 0 exactly the source. With the study's
coverage (``include_embeddings=False, include_pooler=False``) the uncovered groups are frozen at
the source weights; ``frozen_modules()`` names them, and the training engine runs them in eval
mode like every frozen group of every method (no dropout).

The pitfall (``NOTES.md``): while theta == theta0 the mixed model does not depend on alpha at all,
so dL/dalpha is exactly zero at the first step in both spaces (in output space, in train mode,
it is pure dropout noise) and stays tiny while theta - theta0 is tiny; with alpha = 0 the weights
get no gradient either, so nothing ever moves. Hence: ``init`` must be > 0 when the trainable copy
starts at the source (``wrap`` refuses the dead start), and joint training warms up: the training
engine holds the coefficients' learning rate at zero for the first ``alpha_warmup_ratio`` of the
steps (``helpers.training.engine``; the one place the warm-up lives). For evaluation at fixed
coefficients (alpha = 0, WiSE-FT-like sweeps) use ``set_alphas``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from transformers import PreTrainedModel

from helpers.config.cbv import CBVConfig, is_real
from helpers.errors import UserError, unknown_name
from helpers.models.layers import get_module, layer_groups, set_module
from helpers.models.mixer import Coefficients, Mixer


class CBVModel(nn.Module):
    """A sequence classifier whose groups blend a trainable and a frozen source copy.

    Build it with ``wrap``. Train with two optimiser groups (``weight_parameters()``,
    ``alpha_parameters()``), call ``project_()`` after every step; export with ``bake()``.
    ``self.model`` is the Hugging Face model with its coefficient groups replaced by ``Mixer``
    modules.
    """

    def __init__(self, model: PreTrainedModel, config: CBVConfig, source: PreTrainedModel):
        super().__init__()
        self.cbv_config = config
        self.groups = layer_groups(model)
        self.coefficient_groups = config.coefficient_groups(self.groups.names)
        _check_source(model, source)
        param = next(model.parameters())
        names, spans = [], {}  # coefficient names; module path -> (first index, count)
        for g in self.coefficient_groups:
            paths = self.groups.paths[g]
            if not config.per_tensor:
                spans.update({path: (len(names), 1) for path in paths})
                names.append(g)
                continue
            for path in paths:
                tensors = [n for n, _ in get_module(model, path).named_parameters()]
                prefix = f"{g}/" + (f"{path.rsplit('.', 1)[-1]}." if len(paths) > 1 else "")
                spans[path] = (len(names), len(tensors))
                names += [prefix + n for n in tensors]
        self.coefficients = Coefficients(
            names, config.constraint, config.init, param.dtype, param.device
        )
        model.requires_grad_(False)  # only the coefficient groups' trainable copies learn
        for g in self.groups.names:
            for path in self.groups.paths[g]:
                module, module0 = get_module(model, path), get_module(source, path)
                if g in self.coefficient_groups:
                    module.requires_grad_(True)
                    mixer = Mixer(module, module0, self.coefficients, *spans[path], config.space)
                    set_module(model, path, mixer)
                else:  # frozen at the source weights
                    with torch.no_grad():
                        for p, p0 in zip(module.parameters(), module0.parameters()):
                            p.copy_(p0)
        self.model = model
        self.train(model.training)

    # -- the Hugging Face side -------------------------------------------------------------
    def forward(
        self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs
    ):
        """Same call and output as the wrapped classifier; the penalty is added to ``.loss``."""
        if self.cbv_config.space == "output" and (
            kwargs.get("output_hidden_states") or kwargs.get("output_attentions")
        ):
            raise UserError(
                "output_hidden_states/output_attentions are not supported in output "
                "space (both branches would be recorded); use space='weight' or bake"
            )
        batch = dict(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            labels=labels,
            **kwargs,
        )
        out = self.model(**{k: v for k, v in batch.items() if v is not None})
        if labels is not None and self.cbv_config.penalty > 0:
            out.loss = out.loss + self.penalty()
        return out

    def penalty(self) -> torch.Tensor:
        """penalty * sum(alpha), or penalty * relu(sum(alpha) - budget) with a budget."""
        total = self.coefficients.values().sum()
        if self.cbv_config.budget is not None:
            total = torch.relu(total - self.cbv_config.budget)
        return self.cbv_config.penalty * total

    # -- coefficients ----------------------------------------------------------------------
    def alphas(self) -> dict[str, float]:
        """Coefficient name (group, or group/tensor with per_tensor) -> current alpha."""
        values = self.coefficients.values().detach().tolist()
        return dict(zip(self.coefficients.names, values))

    def set_alphas(self, value: float | dict[str, float]) -> None:
        """Fix coefficients: one value for all, or a dict by coefficient or group name.

        With per_tensor, a group name sets all of that group's tensors. No renormalisation.
        """
        names = self.coefficients.names
        current = self.coefficients.values().detach().to(torch.float64).clone()
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for key, v in items:
            if not is_real(v) or not 0.0 <= v <= 1.0:
                raise UserError(f"alpha {v!r} for {key or 'all'} must be a number in [0, 1]")
            hit = [
                i for i, n in enumerate(names) if key is None or n == key or n.startswith(f"{key}/")
            ]
            if not hit:
                raise unknown_name("CBV coefficient", key, names)
            current[hit] = float(v)
        self.coefficients.set_(current)

    def project_(self) -> None:
        """Call after every optimiser step: clamp to [0, 1] or rescale to sum 1 (sigmoid: no-op)."""
        self.coefficients.project_()

    def alpha_parameters(self) -> list[nn.Parameter]:
        """The raw coefficients, for their own optimiser group."""
        return [self.coefficients.raw]

    def weight_parameters(self) -> list[nn.Parameter]:
        """The trainable copy's parameters (every coefficient group's)."""
        return [p for m in self.mixers() for p in m.trainable.parameters()]

    def freeze_weights(self, flag: bool = True) -> None:
        """Stop (or resume) weight updates, e.g. for two-stage training of the alphas alone."""
        for p in self.weight_parameters():
            p.requires_grad_(not flag)

    def frozen_modules(self) -> list[nn.Module]:
        """Modules of the groups without a coefficient (frozen at the source)."""
        return [
            get_module(self.model, path)
            for g in self.groups.names
            if g not in self.coefficient_groups
            for path in self.groups.paths[g]
        ]

    def mixers(self) -> list[Mixer]:
        return [m for g in self.coefficient_groups for m in self.group_mixers(g)]

    def group_mixers(self, group: str) -> list[Mixer]:
        return [get_module(self.model, p) for p in self.groups.paths[group]]

    # -- export ----------------------------------------------------------------------------
    @torch.no_grad()
    def bake(self) -> PreTrainedModel:
        """A plain Hugging Face model with the mixed weights, in eval mode.

        Exact in weight space. Output space mixes two networks' outputs, which no single set of
        weights reproduces, so it raises, except when every alpha is 0 or 1 (each group then
        is one of its two copies, and weight mixing gives the same model).
        """
        if self.cbv_config.space == "output":
            if any(a not in (0.0, 1.0) for a in self.alphas().values()):
                raise UserError(
                    "an output-space CBV model cannot be baked into one model: it "
                    "blends the outputs of two networks, not their weights. Evaluate "
                    "the wrapper itself, set every alpha to 0 or 1, or train with "
                    "space='weight'"
                )
        baked = copy.deepcopy(self.model)
        for g in self.coefficient_groups:
            for path in self.groups.paths[g]:
                mixer = get_module(baked, path)
                mixed = mixer.mixed_parameters()
                for name, p in mixer.trainable.named_parameters():
                    p.copy_(mixed[name])
                set_module(baked, path, mixer.trainable)
        return baked.requires_grad_(True).eval()


def wrap(
    model: PreTrainedModel, config: CBVConfig, source: PreTrainedModel | None = None
) -> CBVModel:
    """Wrap ``model`` (its weights become the trainable copy; changed in place) for CBV.

    theta0 is a frozen deep copy of ``source`` (same architecture), or of ``model`` as it is now.
    """
    if not isinstance(config, CBVConfig):
        raise UserError(f"wrap needs a CBVConfig, got {type(config).__name__}")
    if isinstance(model, CBVModel) or any(isinstance(m, Mixer) for m in model.modules()):
        raise UserError("this model is already CBV-wrapped; wrap the original model once")
    source = copy.deepcopy(model if source is None else source)
    param = next(model.parameters())
    source = source.to(device=param.device, dtype=param.dtype).eval().requires_grad_(False)
    cbv = CBVModel(model, config, source)
    if config.init == 0 and all(
        torch.equal(m.trainable.get_parameter(n), m.frozen.get_parameter(n))
        for m in cbv.mixers()
        for n in m.names
    ):
        raise UserError(
            "CBV init=0 with the trainable copy equal to the source is a dead start: "
            "alpha = 0 gives the weights no gradient and theta = theta0 gives alpha "
            "none. Use init > 0 (default 0.5) and a coefficient warm-up; for "
            "evaluation at alpha = 0 wrap with the default init and call "
            "set_alphas(0.0)"
        )
    if config.constraint == "sum" and len(cbv.coefficients.names) < 2:
        raise UserError(
            "constraint='sum' needs at least two coefficients; use 'sigmoid' or "
            "'clamp' for this model"
        )
    return cbv


def _check_source(model: nn.Module, source: nn.Module) -> None:
    """Refuse a source whose architecture differs from the model's."""
    shapes = {n: p.shape for n, p in model.named_parameters()}
    shapes0 = {n: p.shape for n, p in source.named_parameters()}
    if layer_groups(source).paths != layer_groups(model).paths or shapes != shapes0:
        diff = sorted(set(shapes.items()) ^ set(shapes0.items()))[:3]
        raise UserError(
            "the CBV source must have the model's architecture (same layers, "
            f"same parameter shapes); differences include {diff}. Load the source "
            "with the same model name and label set"
        )
