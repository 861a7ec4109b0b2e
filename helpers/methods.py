"""Every fine-tuning method of the study, looked up by name in one registry.

A method is data: which layer groups train (surgical baselines), or a CBV configuration, plus the
name of the strategy that fits it. Adding a method is one ``Method(...)`` entry; adding a new way
of fitting is one function in ``STRATEGIES``.

All methods start from the same source model (trained on corpus A in notebook 01) and fit on the
training mixture of one delta, picking their best checkpoint on the validation mixture.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from helpers.cbv import CBVConfig, wrap
from helpers.errors import unknown_name
from helpers.evaluation import bootstrap, predict
from helpers.layers import layer_groups
from helpers.training import FitResult, TrainConfig, fit


@dataclass(frozen=True)
class Method:
    """One named way to adapt the source model to the shifted data."""

    name: str
    family: str                        # reference | surgical | baseline | cbv
    description: str
    strategy: str = "subset"           # key into STRATEGIES
    train: tuple[str, ...] = ()        # layer selections for subset strategies (layers.py)
    cbv: CBVConfig | None = None
    options: dict = field(default_factory=dict)   # strategy-specific settings

    def to_dict(self) -> dict:
        return {"name": self.name, "strategy": self.strategy, "train": list(self.train),
                "cbv": None if self.cbv is None else vars(self.cbv), "options": self.options}


@dataclass
class Adapted:
    """A fitted method: the model to evaluate, its training record and anything it learned."""

    model: torch.nn.Module
    fits: list[FitResult] = field(default_factory=list)
    extras: dict = field(default_factory=dict)

    @property
    def history(self) -> pd.DataFrame:
        frames = [f.history.assign(stage=i) for i, f in enumerate(self.fits)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@dataclass(frozen=True)
class FitInputs:
    """What every strategy needs: the source model, encoded mixtures and settings."""

    source: torch.nn.Module
    train: object                      # Encoded training mixture
    val: object                        # Encoded validation mixture
    label_names: tuple[str, ...]
    cfg: TrainConfig
    progress: bool = True
    reuse: object = None               # callable(method name) -> Adapted, for two-stage methods
    resume_dir: Path | None = None     # where interrupted fits keep their resume points

    def resume(self, stage: str) -> Path | None:
        return None if self.resume_dir is None else self.resume_dir / stage


def _fresh(source):
    return copy.deepcopy(source)


def fit_none(method: Method, x: FitInputs) -> Adapted:
    """The source model as it is."""
    return Adapted(_fresh(x.source))


def fit_subset(method: Method, x: FitInputs) -> Adapted:
    """Surgical fine-tuning: train only the selected groups, freeze the rest."""
    model = _fresh(x.source)
    groups = layer_groups(model).select_many(method.train)
    result = fit(model, x.train, x.val, x.label_names, x.cfg, groups_to_train=groups,
                 progress=x.progress, desc=method.name, resume_dir=x.resume("fit"))
    return Adapted(model, [result])


def fit_lp_ft(method: Method, x: FitInputs) -> Adapted:
    """LP-FT (Kumar et al. 2022): fit the head on frozen features, then fine-tune everything."""
    model = _fresh(x.source)
    groups = layer_groups(model)
    probe_cfg = replace(x.cfg, lr=x.cfg.lr * method.options.get("probe_lr_scale", 20.0))
    probe = fit(model, x.train, x.val, x.label_names, probe_cfg, groups_to_train=["head"],
                progress=x.progress, desc=f"{method.name}:probe", resume_dir=x.resume("probe"))
    tune_cfg = replace(x.cfg, lr=x.cfg.lr * method.options.get("tune_lr_scale", 0.5))
    tune = fit(model, x.train, x.val, x.label_names, tune_cfg,
               groups_to_train=groups.select_many(["embeddings", "all"]),
               progress=x.progress, desc=f"{method.name}:tune", resume_dir=x.resume("tune"))
    return Adapted(model, [probe, tune])


def relative_gradient_norms(optimizer) -> list[float]:
    """||grad|| / ||weight|| of each optimiser group (Lee et al.'s Auto-RGN signal)."""
    out = []
    for g in optimizer.param_groups:
        grads = [p.grad for p in g["params"] if p.grad is not None]
        if not grads:
            out.append(0.0)
            continue
        gnorm = torch.sqrt(sum((gr.float() ** 2).sum() for gr in grads))
        wnorm = torch.sqrt(sum((p.detach().float() ** 2).sum() for p in g["params"]))
        out.append(float(gnorm / wnorm.clamp_min(1e-12)))
    return out


def fit_auto_rgn(method: Method, x: FitInputs) -> Adapted:
    """Auto-RGN (Lee et al. 2023): each group's lr scaled by its relative gradient norm.

    Scales are normalised by the largest one at every step, so the group with the largest
    relative gradient trains at the full learning rate and the others proportionally slower.
    """
    model = _fresh(x.source)
    groups = layer_groups(model)
    model.requires_grad_(False)
    param_groups = []
    for name in groups.select_many(["embeddings", "all"]):
        params = [p for _, p in groups.parameters(model, name)]
        for p in params:
            p.requires_grad_(True)
        param_groups.append({"params": params, "kind": "weight", "group": name})
    scales = []

    def before_step(optimizer):
        rgn = np.array(relative_gradient_norms(optimizer))
        rel = rgn / max(rgn.max(), 1e-12)
        for g, s in zip(optimizer.param_groups, rel):
            g["scale"] = float(s)
        scales.append(dict(zip((g["group"] for g in optimizer.param_groups), rel.tolist())))

    result = fit(model, x.train, x.val, x.label_names, x.cfg, param_groups=param_groups,
                 before_step=before_step, progress=x.progress, desc=method.name,
                 resume_dir=x.resume("fit"))
    mean = pd.DataFrame(scales).mean().to_dict() if scales else {}
    return Adapted(model, [result], {"rgn_scale_mean": mean})


def fit_cbv_joint(method: Method, x: FitInputs) -> Adapted:
    """CBV, the study's way: weights and coefficients trained together (own lr and warm-up)."""
    cfg = replace(x.cfg, **method.options.get("train", {}))
    if method.options.get("shared_lr"):
        cfg = replace(cfg, alpha_lr=cfg.lr)
    model = wrap(_fresh(x.source), method.cbv, source=x.source)
    param_groups = [{"params": model.weight_parameters(), "kind": "weight"},
                    {"params": model.alpha_parameters(), "kind": "alpha"}]
    result = fit(model, x.train, x.val, x.label_names, cfg, param_groups=param_groups,
                 after_step=lambda m: m.project_(), progress=x.progress, desc=method.name,
                 resume_dir=x.resume("fit"))
    return Adapted(model, [result], {"alphas": model.alphas()})


def fit_cbv_two_stage(method: Method, x: FitInputs) -> Adapted:
    """CBV two-stage: take the all-layers fine-tuned model, then learn only the coefficients
    on the validation mixture with the weights fixed (the poster's "optimisation-based alpha").
    """
    tuned = x.reuse(method.options.get("base", "all")).model
    model = wrap(_fresh(tuned), method.cbv, source=x.source)
    model.freeze_weights(True)
    cfg = replace(x.cfg, alpha_warmup_ratio=0.0, **method.options.get("train", {}))
    result = fit(model, x.val, x.val, x.label_names, cfg,
                 param_groups=[{"params": model.alpha_parameters(), "kind": "alpha"}],
                 after_step=lambda m: m.project_(), progress=x.progress, desc=method.name,
                 resume_dir=x.resume("alphas"))
    return Adapted(model, [result], {"alphas": model.alphas()})


def fit_wise_ft(method: Method, x: FitInputs) -> Adapted:
    """WiSE-FT (Wortsman et al. 2022): one global coefficient on the backbone, swept on a grid
    after full fine-tuning and chosen on the validation mixture; the tuned head is kept.
    """
    tuned = x.reuse(method.options.get("base", "all")).model
    model = wrap(_fresh(tuned), method.cbv, source=x.source)
    grid = method.options.get("grid", [i / 10 for i in range(11)])
    scores = {}
    for a in grid:
        model.set_alphas({g: (1.0 if g == "head" else a) for g in model.alphas()})
        preds = predict(model, x.val, x.cfg.eval_batch_size)
        scores[a] = float(bootstrap(preds, x.label_names, n_boot=1).set_index("metric")
                          ["value"][x.cfg.select_metric])
    best = max(grid, key=lambda a: (scores[a], a))
    model.set_alphas({g: (1.0 if g == "head" else best) for g in model.alphas()})
    return Adapted(model, [], {"alphas": model.alphas(), "wise_grid": scores,
                               "wise_alpha": best})


STRATEGIES = {"none": fit_none, "subset": fit_subset, "lp_ft": fit_lp_ft,
              "auto_rgn": fit_auto_rgn, "cbv_joint": fit_cbv_joint,
              "cbv_two_stage": fit_cbv_two_stage, "wise_ft": fit_wise_ft}

_ALL = ("embeddings", "all")
METHODS: dict[str, Method] = {m.name: m for m in [
    Method("none", "reference", "source model, not adapted", strategy="none"),
    Method("head", "surgical", "classifier head only", train=("head",)),
    Method("first2", "surgical", "first two encoder layers", train=("first:2",)),
    Method("middle2", "surgical", "middle two encoder layers", train=("middle:2",)),
    Method("last2", "surgical", "last two encoder layers", train=("last:2",)),
    Method("all", "surgical", "all parameters", train=_ALL),
    Method("lp_ft", "baseline", "LP-FT: head first, then all at half the lr", strategy="lp_ft"),
    Method("auto_rgn", "baseline", "Auto-RGN: per-layer lr from relative gradient norms",
           strategy="auto_rgn"),
    Method("cbv_weight", "cbv", "CBV in weight space, joint, sigmoid alphas",
           strategy="cbv_joint", cbv=CBVConfig(space="weight")),
    Method("cbv_output", "cbv", "CBV in output space, joint, sigmoid alphas",
           strategy="cbv_joint", cbv=CBVConfig(space="output")),
    Method("cbv_study", "cbv", "CBV as the study's code: output space, sum-normalised alphas, "
           "one learning rate, no warm-up", strategy="cbv_joint",
           cbv=CBVConfig(space="output", constraint="sum"),
           options={"shared_lr": True, "train": {"alpha_warmup_ratio": 0.0}}),
    Method("cbv_per_tensor", "cbv", "CBV in weight space, one coefficient per parameter tensor",
           strategy="cbv_joint", cbv=CBVConfig(space="weight", per_tensor=True)),
    Method("cbv_sparse", "cbv", "CBV in weight space with a sparsity penalty 0.01 * sum(alpha)",
           strategy="cbv_joint", cbv=CBVConfig(space="weight", penalty=0.01)),
    Method("cbv_embeddings", "cbv", "CBV in weight space with coefficients on the embeddings "
           "and pooler too", strategy="cbv_joint",
           cbv=CBVConfig(space="weight", include_embeddings=True, include_pooler=True)),
    Method("cbv_two_stage", "cbv", "CBV two-stage: all-layer fine-tune, then alphas on "
           "validation with weights fixed", strategy="cbv_two_stage",
           cbv=CBVConfig(space="weight", constraint="clamp", init=1.0)),
    Method("wise_ft", "baseline", "WiSE-FT: one global backbone coefficient, grid-searched",
           strategy="wise_ft", cbv=CBVConfig(space="weight", constraint="clamp", init=1.0,
                                             include_embeddings=True,
                                             include_pooler=True)),
]}


def get_method(name: str) -> Method:
    """Look a method up by name."""
    if name not in METHODS:
        raise unknown_name("method", name, METHODS)
    return METHODS[name]


def adapt(method: Method, inputs: FitInputs) -> Adapted:
    """Fit one method from the source model."""
    return STRATEGIES[method.strategy](method, inputs)
