"""How each method is fitted: one strategy function per way of fitting, looked up by name.

A method (``helpers.spec.methods``) names its strategy; ``adapt`` calls it with the source model
and the encoded mixtures. Each strategy builds a ``Plan`` for the engine and returns an
``Adapted``: the model to evaluate, its training record and anything it learned.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from helpers.data.encoding import Encoded
from helpers.evaluation.predictions import score
from helpers.models.cbv import CBVModel, wrap
from helpers.models.layers import layer_groups
from helpers.spec.methods import Method
from helpers.spec.settings import TrainConfig
from helpers.training.engine import FitResult, fit
from helpers.training.plan import ALPHA, ParamGroup, Plan, subset_plan

ALL = ["embeddings", "all"]  # selections of full fine-tuning: every group


@dataclass
class Adapted:
    """A fitted method: the model to evaluate, its training record and its final coefficients."""

    model: torch.nn.Module
    fits: list[FitResult] = field(default_factory=list)
    alphas: dict[str, float] | None = None  # CBV and WiSE-FT: coefficient name -> alpha

    @property
    def history(self) -> pd.DataFrame:
        frames = [f.history.assign(stage=i) for i, f in enumerate(self.fits)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@dataclass(frozen=True)
class FitInputs:
    """What every strategy needs: the source model, encoded mixtures and settings."""

    source: torch.nn.Module
    train: Encoded
    val: Encoded
    label_names: tuple[str, ...]
    cfg: TrainConfig
    progress: bool = True
    reuse: Callable[[str], Adapted] | None = None  # method name -> its Adapted (bases)
    resume_dir: Path | None = None  # where interrupted fits keep their resume points

    def resume(self, stage: str) -> Path | None:
        return None if self.resume_dir is None else self.resume_dir / stage

    def fit(
        self,
        model,
        plan: Plan,
        desc: str,
        stage: str = "fit",
        cfg: TrainConfig | None = None,
        train: Encoded | None = None,
    ) -> FitResult:
        """Run the engine on these inputs (settings and training set overridable)."""
        return fit(
            model,
            self.train if train is None else train,
            self.val,
            self.label_names,
            cfg or self.cfg,
            plan,
            progress=self.progress,
            desc=desc,
            resume_dir=self.resume(stage),
        )


def fit_none(method: Method, x: FitInputs) -> Adapted:
    """The source model as it is."""
    return Adapted(copy.deepcopy(x.source))


def fit_subset(method: Method, x: FitInputs) -> Adapted:
    """Surgical fine-tuning: train only the selected groups, freeze the rest."""
    model = copy.deepcopy(x.source)
    groups = layer_groups(model).select_many(method.train)
    return Adapted(model, [x.fit(model, subset_plan(model, groups), method.name)])


def fit_lp_ft(method: Method, x: FitInputs) -> Adapted:
    """LP-FT (Kumar et al. 2022): fit the head on frozen features, then fine-tune everything."""
    model = copy.deepcopy(x.source)
    everything = layer_groups(model).select_many(ALL)
    probe_cfg = replace(x.cfg, lr=x.cfg.lr * method.options.get("probe_lr_scale", 20.0))
    probe = x.fit(model, subset_plan(model, ["head"]), f"{method.name}:probe", "probe", probe_cfg)
    tune_cfg = replace(x.cfg, lr=x.cfg.lr * method.options.get("tune_lr_scale", 0.5))
    tune = x.fit(model, subset_plan(model, everything), f"{method.name}:tune", "tune", tune_cfg)
    return Adapted(model, [probe, tune])


def relative_gradient_norm(params) -> float:
    """||grad|| / ||weight|| of a set of parameters (Lee et al.'s Auto-RGN signal)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    gnorm = torch.sqrt(sum((g.float() ** 2).sum() for g in grads))
    wnorm = torch.sqrt(sum((p.detach().float() ** 2).sum() for p in params))
    return float(gnorm / wnorm.clamp_min(1e-12))


def fit_auto_rgn(method: Method, x: FitInputs) -> Adapted:
    """Auto-RGN (Lee et al. 2023): each group's lr scaled by its relative gradient norm.

    Scales are normalised by the largest one at every step, so the group with the largest
    relative gradient trains at the full learning rate and the others proportionally slower.
    """
    model = copy.deepcopy(x.source)
    layers = layer_groups(model)
    model.requires_grad_(False)
    groups = []
    for name in layers.select_many(ALL):
        params = tuple(p for _, p in layers.parameters(model, name))
        for p in params:
            p.requires_grad_(True)
        groups.append(ParamGroup(name, params))
    last = {}  # this step's scales, recorded in the training history

    def lr_scales() -> list[float]:
        rgn = np.array([relative_gradient_norm(g.params) for g in groups])
        rel = rgn / max(rgn.max(), 1e-12)
        last.update(zip((f"rgn_scale/{g.name}" for g in groups), rel.tolist()))
        return rel.tolist()

    plan = Plan(groups, layers=layers, lr_scales=lr_scales, record=lambda m: dict(last))
    return Adapted(model, [x.fit(model, plan, method.name)])


def cbv_plan(model: CBVModel, train_weights: bool = True) -> Plan:
    """Weights (unless fixed) and coefficients in their own groups; alphas projected and kept."""
    groups = [ParamGroup("weights", tuple(model.weight_parameters()))] if train_weights else []
    groups.append(ParamGroup("alphas", tuple(model.alpha_parameters()), kind=ALPHA, decay=False))
    return Plan(
        groups,
        after_step=lambda m: m.project_(),
        record=lambda m: {f"alpha/{k}": v for k, v in m.alphas().items()},
    )


def fit_cbv_joint(method: Method, x: FitInputs) -> Adapted:
    """CBV, the study's way: weights and coefficients trained together (own lr and warm-up)."""
    cfg = replace(x.cfg, **method.options.get("train", {}))
    if method.options.get("shared_lr"):
        cfg = replace(cfg, alpha_lr=cfg.lr)
    model = wrap(copy.deepcopy(x.source), method.cbv, source=x.source)
    result = x.fit(model, cbv_plan(model), method.name, cfg=cfg)
    return Adapted(model, [result], model.alphas())


def fit_cbv_two_stage(method: Method, x: FitInputs) -> Adapted:
    """CBV two-stage: take the all-layers fine-tuned model, then learn only the coefficients
    on the validation mixture with the weights fixed (the poster's "optimisation-based alpha").
    """
    tuned = x.reuse(method.base).model
    model = wrap(copy.deepcopy(tuned), method.cbv, source=x.source)
    model.freeze_weights(True)
    cfg = replace(x.cfg, alpha_warmup_ratio=0.0, **method.options.get("train", {}))
    result = x.fit(
        model, cbv_plan(model, train_weights=False), method.name, "alphas", cfg, train=x.val
    )
    return Adapted(model, [result], model.alphas())


def fit_wise_ft(method: Method, x: FitInputs) -> Adapted:
    """WiSE-FT (Wortsman et al. 2022): one global coefficient on the backbone, swept on a grid
    after full fine-tuning and chosen on the validation mixture; the tuned head is kept.
    """
    tuned = x.reuse(method.base).model
    model = wrap(copy.deepcopy(tuned), method.cbv, source=x.source)
    grid = method.options.get("grid", [i / 10 for i in range(11)])
    scores = {}
    for a in grid:
        model.set_alphas({g: (1.0 if g == "head" else a) for g in model.alphas()})
        scores[a] = score(model, x.val, x.label_names, x.cfg.eval_batch_size)[x.cfg.select_metric]
    best = max(grid, key=lambda a: (scores[a], a))
    model.set_alphas({g: (1.0 if g == "head" else best) for g in model.alphas()})
    return Adapted(model, [], model.alphas())


STRATEGIES = {
    "none": fit_none,
    "subset": fit_subset,
    "lp_ft": fit_lp_ft,
    "auto_rgn": fit_auto_rgn,
    "cbv_joint": fit_cbv_joint,
    "cbv_two_stage": fit_cbv_two_stage,
    "wise_ft": fit_wise_ft,
}


def adapt(method: Method, inputs: FitInputs) -> Adapted:
    """Fit one method from the source model."""
    return STRATEGIES[method.strategy](method, inputs)
