"""Coefficient-based variable (CBV) fine-tuning: one learnable coefficient per layer group.

``wrap(model, CBVConfig(...))`` turns a Hugging Face sequence classifier into a ``CBVModel`` that
blends a trainable copy (theta, the model's own weights) with a frozen source copy (theta0) per
layer group g (``helpers.layers`` names: ``layer.0`` ... ``layer.{L-1}``, ``head``, optionally
``embeddings`` and ``pooler``), with alpha_g in [0, 1]:

* ``space="weight"`` (what the poster describes): the group runs once with the weights
  ``theta0 + alpha_g * (theta - theta0)``. Bakes into one plain model.
* ``space="output"`` (what the study's code did): the group runs twice and its output is
  ``alpha_g * f(h; theta) + (1 - alpha_g) * f(h; theta0)``. When a group has several modules
  (DistilBERT's ``pre_classifier`` and ``classifier``) each module is mixed on its own with the
  group's coefficient. The frozen branch always runs in eval mode (no dropout): it stands for the
  source model, and a second dropout mask would only add noise.

Groups without a coefficient (the embeddings and the pooler unless included) are frozen at the
source weights, as in the study (shared, frozen embeddings; the frozen pooler). They follow the
wrapper's train/eval mode, so their dropout stays on during training, as in frozen-layer
fine-tuning.

The pitfall (``NOTES.md``): while theta == theta0 the mixed model does not depend on alpha at all,
so dL/dalpha is exactly zero at the first step in both spaces (in output space, in train mode,
it is pure dropout noise) and stays tiny while theta - theta0 is tiny; with alpha = 0 the weights
get no gradient either, so nothing ever moves. Hence: ``init`` must be > 0 when the trainable copy
starts at the source (``wrap`` refuses the dead start), and joint training should warm up: call
``freeze_alphas(True)`` for the first weight steps, then ``freeze_alphas(False)``. ``drift()``
reports how far theta has moved from theta0. For evaluation at fixed coefficients (alpha = 0,
WiSE-FT-like sweeps) use ``set_alphas``.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call
from transformers import PreTrainedModel

from helpers.errors import UserError, unknown_name
from helpers.layers import LayerGroups, get_module, layer_groups, set_module

SPACES = ("weight", "output")
CONSTRAINTS = ("sigmoid", "clamp", "sum")


@dataclass(frozen=True)
class CBVConfig:
    """How CBV mixes the two copies and keeps its coefficients in [0, 1].

    space: ``weight`` (mix parameters, one pass) or ``output`` (mix group outputs, two passes).
    constraint: ``sigmoid`` (alpha = sigmoid(s)); ``clamp`` (alpha = s, clamped to [0, 1] by
        ``project_()``); ``sum`` (the study's: alpha = sigmoid(s), and ``project_()`` rescales
        the alphas to alpha / sum(alpha), i.e. sets s = logit(alpha / sum(alpha)). The initial
        alphas are not rescaled: the sum is 1 from the first ``project_()`` on, as in the study).
    init: the initial alpha of every coefficient (0.5 is the study's sigmoid(0)).
    penalty, budget: added to the loss when labels are given: ``penalty * sum(alpha)`` (a
        sparsity pressure towards the source), or with a budget
        ``penalty * relu(sum(alpha) - budget)`` (free up to ``budget`` coefficients' worth).
    include_embeddings: give the embeddings a coefficient (the study did not: the optimisation
        then focused on them alone). Otherwise they are frozen at the source.
    include_pooler: give the pooler (BERT only; no effect elsewhere) a coefficient. Otherwise
        it is frozen at the source, as in the study.
    per_tensor: one coefficient per parameter tensor instead of per group (weight space only).
    """

    space: str = "weight"         # the poster's method; "output" is the study's code
    constraint: str = "sigmoid"   # the study used "sum"
    init: float = 0.5             # sigmoid(0), the study's start
    penalty: float = 0.0          # no pressure on the alphas by default
    budget: float | None = None   # None: plain sum penalty
    include_embeddings: bool = False  # the study left them frozen
    include_pooler: bool = False      # the study kept the source pooler
    per_tensor: bool = False          # per group, as in the study

    def __post_init__(self):
        if self.space not in SPACES:
            raise unknown_name("CBV space", self.space, SPACES)
        if self.constraint not in CONSTRAINTS:
            raise unknown_name("CBV constraint", self.constraint, CONSTRAINTS)
        if not _is_real(self.init) or not 0.0 <= self.init <= 1.0:
            raise UserError(f"CBV init={self.init!r} must be a number in [0, 1] (the starting "
                            "alpha; 0.5 is the study's)")
        if self.constraint != "clamp" and self.init in (0.0, 1.0):
            raise UserError(f"CBV init={self.init} with constraint={self.constraint!r}: "
                            "sigmoid(s) reaches 0 or 1 only at s = -inf/+inf, where it can "
                            "never move; use an init strictly inside (0, 1), constraint='clamp', "
                            "or set_alphas() to evaluate at fixed coefficients")
        if not _is_real(self.penalty) or not 0.0 <= self.penalty < math.inf:
            raise UserError(f"CBV penalty={self.penalty!r} must be a finite number >= 0 "
                            "(0 turns it off)")
        if self.budget is not None:
            if not _is_real(self.budget) or not 0.0 < self.budget < math.inf:
                raise UserError(f"CBV budget={self.budget!r} must be a finite number > 0, "
                                "or None for a plain sum penalty")
            if self.penalty == 0:
                raise UserError("CBV budget has no effect with penalty=0; set penalty > 0 "
                                "or leave budget=None")
        if self.per_tensor and self.space == "output":
            raise UserError("CBV per_tensor=True needs space='weight': output mixing blends "
                            "whole group outputs, so one coefficient per group is all it has")
        for flag in ("include_embeddings", "include_pooler", "per_tensor"):
            if not isinstance(getattr(self, flag), bool):
                raise UserError(f"CBV {flag} must be True or False, got {getattr(self, flag)!r}")

    def coefficient_groups(self, groups: LayerGroups) -> list[str]:
        """The groups of one model that get a coefficient, in model order."""
        skip = {"embeddings"} if not self.include_embeddings else set()
        if not self.include_pooler:
            skip.add("pooler")
        return [g for g in groups.names if g not in skip]


def _is_real(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def merge(alpha: torch.Tensor, theta0: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """theta0 + alpha * (theta - theta0), exact at alpha in {0, 1}; one kernel (torch.lerp)."""
    return torch.lerp(theta0, theta, alpha)


class Coefficients(nn.Module):
    """The raw coefficient vector s and its map to alphas under one constraint."""

    def __init__(self, names: list[str], constraint: str, init: float, dtype: torch.dtype,
                 device: torch.device):
        super().__init__()
        self.names = list(names)
        self.constraint = constraint
        self.raw = nn.Parameter(torch.empty(len(names), dtype=dtype, device=device))
        self.set_(torch.full((len(names),), float(init), dtype=torch.float64))

    def values(self) -> torch.Tensor:
        """The alphas, differentiable in ``raw``."""
        return self.raw if self.constraint == "clamp" else torch.sigmoid(self.raw)

    @torch.no_grad()
    def set_(self, alphas: torch.Tensor) -> None:
        """Set raw so that the alphas equal ``alphas`` (sigmoid: s = logit(alpha), +-inf at 0/1)."""
        alphas = alphas.to(torch.float64)
        raw = alphas if self.constraint == "clamp" else torch.logit(alphas)
        self.raw.copy_(raw)

    @torch.no_grad()
    def project_(self) -> None:
        """Apply the constraint after an optimiser step (no-op for sigmoid)."""
        if self.constraint == "clamp":
            self.raw.clamp_(0.0, 1.0)
        elif self.constraint == "sum":
            a = torch.sigmoid(self.raw)
            a = a / a.sum()
            # eps keeps s finite when one alpha carries (almost) the whole sum
            self.raw.copy_(torch.logit(a, eps=torch.finfo(a.dtype).eps))


class Mixer(nn.Module):
    """Stands in for one module of a coefficient group and blends its two copies."""

    def __init__(self, trainable: nn.Module, frozen: nn.Module, coefficients: Coefficients,
                 start: int, count: int, space: str):
        super().__init__()
        self.trainable = trainable
        self.frozen = frozen.eval().requires_grad_(False)
        # a plain reference, not a submodule: the wrapper owns the coefficients once
        object.__setattr__(self, "_coefficients", coefficients)
        self.start, self.count, self.space = start, count, space
        self.names = [n for n, _ in trainable.named_parameters()]
        if count not in (1, len(self.names)):
            raise ValueError(f"{count} coefficients for {len(self.names)} tensors")

    def train(self, mode: bool = True):
        super().train(mode)
        self.frozen.eval()  # the frozen branch is the source model: never dropout
        return self

    def alpha_list(self) -> list[torch.Tensor]:
        a = self._coefficients.values()[self.start:self.start + self.count]
        return list(a.unbind()) if self.count > 1 else [a[0]] * len(self.names)

    def mixed_parameters(self) -> dict[str, torch.Tensor]:
        theta = dict(self.trainable.named_parameters())
        theta0 = dict(self.frozen.named_parameters())
        return {n: merge(a, theta0[n], theta[n]) for n, a in zip(self.names, self.alpha_list())}

    def forward(self, *args, **kwargs):
        if self.space == "weight":
            return functional_call(self.trainable, self.mixed_parameters(), args, kwargs,
                                   tie_weights=False)
        alpha = self.alpha_list()[0]
        out, out0 = self.trainable(*args, **kwargs), self.frozen(*args, **kwargs)
        if isinstance(out, torch.Tensor):
            return merge(alpha, out0, out)
        if isinstance(out, tuple):  # mix the hidden states, pass the rest of the trainable's
            return (merge(alpha, out0[0], out[0]), *out[1:])
        raise TypeError(f"cannot mix outputs of type {type(out).__name__} in output space")


class CBVModel(nn.Module):
    """A sequence classifier whose groups blend a trainable and a frozen source copy.

    Build it with ``wrap``. Train with two optimiser groups (``weight_parameters()``,
    ``alpha_parameters()``), call ``project_()`` after every step, warm up with
    ``freeze_alphas(True)``; export with ``bake()``. ``self.model`` is the Hugging Face model
    with its coefficient groups replaced by ``Mixer`` modules.
    """

    def __init__(self, model: PreTrainedModel, config: CBVConfig, source: PreTrainedModel):
        super().__init__()
        self.cbv_config = config
        self.groups = layer_groups(model)
        self.coefficient_groups = config.coefficient_groups(self.groups)
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
        self.coefficients = Coefficients(names, config.constraint, config.init, param.dtype,
                                         param.device)
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
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None,
                **kwargs):
        """Same call and output as the wrapped classifier; the penalty is added to ``.loss``."""
        if self.cbv_config.space == "output" and (kwargs.get("output_hidden_states")
                                              or kwargs.get("output_attentions")):
            raise UserError("output_hidden_states/output_attentions are not supported in output "
                            "space (both branches would be recorded); use space='weight' or bake")
        batch = dict(input_ids=input_ids, attention_mask=attention_mask,
                     token_type_ids=token_type_ids, labels=labels, **kwargs)
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
            if not _is_real(v) or not 0.0 <= v <= 1.0:
                raise UserError(f"alpha {v!r} for {key or 'all'} must be a number in [0, 1]")
            hit = [i for i, n in enumerate(names)
                   if key is None or n == key or n.startswith(f"{key}/")]
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

    def freeze_alphas(self, flag: bool = True) -> None:
        """Stop (or resume) coefficient updates, e.g. during the weight warm-up."""
        self.coefficients.raw.requires_grad_(not flag)

    def freeze_weights(self, flag: bool = True) -> None:
        """Stop (or resume) weight updates, e.g. for two-stage training of the alphas alone."""
        for p in self.weight_parameters():
            p.requires_grad_(not flag)

    @torch.no_grad()
    def drift(self) -> dict[str, float]:
        """Relative distance ||theta - theta0|| / ||theta0|| per coefficient group."""
        out = {}
        for g in self.coefficient_groups:
            d2 = n2 = 0.0
            for m in self.group_mixers(g):
                for p, p0 in zip(m.trainable.parameters(), m.frozen.parameters()):
                    d2 += float((p - p0).double().pow(2).sum())
                    n2 += float(p0.double().pow(2).sum())
            out[g] = math.sqrt(d2 / n2) if n2 > 0 else math.sqrt(d2)
        return out

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
                raise UserError("an output-space CBV model cannot be baked into one model: it "
                                "blends the outputs of two networks, not their weights. Evaluate "
                                "the wrapper itself, set every alpha to 0 or 1, or train with "
                                "space='weight'")
        baked = copy.deepcopy(self.model)
        for g in self.coefficient_groups:
            for path in self.groups.paths[g]:
                mixer = get_module(baked, path)
                mixed = mixer.mixed_parameters()
                for name, p in mixer.trainable.named_parameters():
                    p.copy_(mixed[name])
                set_module(baked, path, mixer.trainable)
        return baked.requires_grad_(True).eval()


def wrap(model: PreTrainedModel, config: CBVConfig,
         source: PreTrainedModel | None = None) -> CBVModel:
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
    if config.init == 0 and all(torch.equal(m.trainable.get_parameter(n), m.frozen.get_parameter(n))
                                for m in cbv.mixers() for n in m.names):
        raise UserError("CBV init=0 with the trainable copy equal to the source is a dead start: "
                        "alpha = 0 gives the weights no gradient and theta = theta0 gives alpha "
                        "none. Use init > 0 (default 0.5) and a coefficient warm-up; for "
                        "evaluation at alpha = 0 wrap with the default init and call "
                        "set_alphas(0.0)")
    if config.constraint == "sum" and len(cbv.coefficients.names) < 2:
        raise UserError("constraint='sum' needs at least two coefficients; use 'sigmoid' or "
                        "'clamp' for this model")
    return cbv


def _check_source(model: nn.Module, source: nn.Module) -> None:
    """Refuse a source whose architecture differs from the model's."""
    shapes = {n: p.shape for n, p in model.named_parameters()}
    shapes0 = {n: p.shape for n, p in source.named_parameters()}
    if layer_groups(source).paths != layer_groups(model).paths or shapes != shapes0:
        diff = sorted(set(shapes.items()) ^ set(shapes0.items()))[:3]
        raise UserError("the CBV source must have the model's architecture (same layers, "
                        f"same parameter shapes); differences include {diff}. Load the source "
                        "with the same model name and label set")

