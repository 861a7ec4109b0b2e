"""How each method is fitted: one strategy function per way of fitting, looked up by name.

A method (``helpers.config.methods``) names its strategy; ``adapt`` calls it with the source model
and the encoded mixtures. Each strategy builds a ``Plan`` for the engine and returns an
``Adapted``: the model to evaluate, its training record and anything it learned.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from helpers.config.methods import Method
from helpers.config.settings import TrainConfig
from helpers.data.encoding import Encoded
from helpers.evaluation.predictions import score
from helpers.models.cbv import CBVModel, wrap
from helpers.models.layers import layer_groups
from helpers.training.converge import converge_alphas
from helpers.training.engine import FitResult, fit
from helpers.training.plan import ALPHA, ParamGroup, Plan, split_decay, subset_plan
from helpers.training.probe import fit_probe

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
        val: Encoded | None = None,
    ) -> FitResult:
        """Run the engine on these inputs (settings, training and selection sets overridable)."""
        return fit(
            model,
            self.train if train is None else train,
            self.val if val is None else val,
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
    """LP-FT (Kumar et al. 2022): a linear probe fitted to convergence on frozen features, then
    full fine-tuning with the common step budget (the probe takes no encoder step)."""
    model = copy.deepcopy(x.source)
    probe = fit_probe(model, x.train, x.label_names, x.cfg)
    everything = layer_groups(model).select_many(ALL)
    tune = x.fit(model, subset_plan(model, everything), f"{method.name}:tune", "tune")
    return Adapted(model, [probe, tune])


def relative_gradient_norm(param: torch.Tensor) -> float:
    """||grad|| / ||weight|| of one parameter tensor (Lee et al.'s Auto-RGN signal)."""
    if param.grad is None:
        return 0.0
    return float(param.grad.float().norm() / param.detach().float().norm().clamp_min(1e-12))


def fit_auto_rgn(method: Method, x: FitInputs) -> Adapted:
    """Auto-RGN (Lee et al. 2023): every parameter tensor's learning rate scaled by its relative
    gradient norm, normalised by the largest, at every step (the step those gradients are for).

    The history keeps each layer group's mean scale per step.
    """
    model = copy.deepcopy(x.source)
    layers = layer_groups(model)
    model.requires_grad_(False)
    groups, owner = [], []
    for name in layers.select_many(ALL):
        for pname, p in layers.parameters(model, name):
            p.requires_grad_(True)
            groups.append(ParamGroup(pname, (p,), decay=p.ndim >= 2))
            owner.append(name)
    last = {}  # this step's mean scale per layer group, recorded in the training history

    def lr_scales() -> list[float]:
        rgn = np.array([relative_gradient_norm(g.params[0]) for g in groups])
        rel = rgn / max(rgn.max(), 1e-12)
        means = pd.Series(rel).groupby(owner, sort=False).mean()
        last.update({f"rgn_scale/{k}": v for k, v in means.items()})
        return rel.tolist()

    plan = Plan(groups, lr_scales=lr_scales, record=lambda m: dict(last))
    return Adapted(model, [x.fit(model, plan, method.name)])


def cbv_plan(model: CBVModel, train_weights: bool = True) -> Plan:
    """Weights (unless fixed) and coefficients in their own groups; alphas projected and kept.

    Weights follow the common decay rule; groups without a coefficient run in eval mode.
    """
    groups = split_decay("weights", model.weight_parameters()) if train_weights else []
    groups.append(ParamGroup("alphas", tuple(model.alpha_parameters()), kind=ALPHA, decay=False))
    penalty = model.penalty if model.cbv_config.penalty > 0 else None
    return Plan(
        groups,
        frozen=model.frozen_modules(),
        penalty=penalty,
        after_step=lambda m: m.project_(),
        # on the device until the next validation (``Fitting.flush``): no host sync per step
        record=lambda m: {
            f"alpha/{k}": v
            for k, v in zip(m.coefficients.names, m.coefficients.values().detach().clone())
        },
    )


def fit_cbv_joint(method: Method, x: FitInputs) -> Adapted:
    """CBV, the study's way: weights and coefficients trained together (own lr and warm-up)."""
    model = wrap(copy.deepcopy(x.source), method.cbv, source=x.source)
    result = x.fit(model, cbv_plan(model), method.name)
    return Adapted(model, [result], model.alphas())


def halves(data: Encoded, seed: int) -> tuple[Encoded, Encoded]:
    """Two disjoint, label-stratified halves of a set (seeded): one to fit on, one to select."""
    rng = np.random.default_rng([seed, len(data)])
    first, second = [], []
    for label in np.unique(data.labels):
        rows = rng.permutation(np.flatnonzero(data.labels == label))
        first += rows[: len(rows) // 2].tolist()
        second += rows[len(rows) // 2 :].tolist()
    return data.subset(sorted(first)), data.subset(sorted(second))


def fit_cbv_two_stage(method: Method, x: FitInputs) -> Adapted:
    """CBV two-stage: the base method's fine-tuned model, then only the coefficients learnt on
    one half of the validation mixture, with the checkpoint selected on the other half.

    With every coefficient at its start (1) the model is exactly the base model.
    """
    tuned = x.reuse(method.base).model
    model = wrap(copy.deepcopy(tuned), method.cbv, source=x.source)
    model.freeze_weights(True)
    fit_on, select_on = halves(x.val, x.cfg.seed)
    plan = cbv_plan(model, train_weights=False)
    result = x.fit(model, plan, method.name, "alphas", train=fit_on, val=select_on)
    return Adapted(model, [result], model.alphas())


def fit_wise_ft(method: Method, x: FitInputs) -> Adapted:
    """WiSE-FT (Wortsman et al. 2022): one global coefficient between the source and the base
    method's fine-tuned weights, swept on a grid and chosen on the validation mixture.

    ``options["keep_head"]``: the fine-tuned head stays as it is and only the rest is
    interpolated (the backbone-only variant); otherwise every weight is, as in the paper.
    """
    tuned = x.reuse(method.base).model
    model = wrap(copy.deepcopy(tuned), method.cbv, source=x.source)
    keep_head = method.options.get("keep_head", False)
    grid = method.options.get("grid", [i / 10 for i in range(11)])

    def alphas_at(a: float) -> dict[str, float]:
        return {g: (1.0 if keep_head and g == "head" else a) for g in model.alphas()}

    scores = {}
    for a in grid:
        model.set_alphas(alphas_at(a))
        scored = score(
            model, x.val, x.label_names, x.cfg.eval_batch_size, None, None, x.cfg.precision
        )
        scores[a] = scored[x.cfg.select_metric]
    model.set_alphas(alphas_at(max(grid, key=lambda a: (scores[a], a))))
    return Adapted(model, [], model.alphas())


def fit_cbv_converge(method: Method, x: FitInputs) -> Adapted:
    """The base CBV run's model with its coefficients fitted to convergence, weights held at
    their end point (``helpers.training.converge``): how far the alphas were from their own
    optimum after the standard budget, and what that distance costs."""
    model = copy.deepcopy(x.reuse(method.base).model)
    result = converge_alphas(model, x.train, x.label_names, x.cfg)
    return Adapted(model, [result], model.alphas())


STRATEGIES = {
    "none": fit_none,
    "subset": fit_subset,
    "lp_ft": fit_lp_ft,
    "auto_rgn": fit_auto_rgn,
    "cbv_joint": fit_cbv_joint,
    "cbv_two_stage": fit_cbv_two_stage,
    "wise_ft": fit_wise_ft,
    "cbv_converge": fit_cbv_converge,
}


def adapt(method: Method, inputs: FitInputs) -> Adapted:
    """Fit one method from the source model."""
    return STRATEGIES[method.strategy](method, inputs)
