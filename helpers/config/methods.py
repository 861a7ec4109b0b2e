"""Every fine-tuning method of the study as data, looked up by name in one registry.

A method names the layer groups it trains (surgical baselines) or a CBV configuration, the
strategy that fits it (``helpers.training.strategies``), and the method it builds on, if any.
Adding a method is one ``Method(...)`` entry here; a new way of fitting is one strategy function.
Torch-free: the configuration, the plots and the analysis read this registry without loading
any model code.

All methods start from the same source model (trained on corpus A in notebook 01) and fit on the
training mixture of one delta, picking their best checkpoint on the validation mixture.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from helpers.config.cbv import CBVConfig
from helpers.config.settings import TrainConfig
from helpers.errors import UserError, unknown_name

# "diagnostic": companions of other runs that answer a question about them, never compared
FAMILIES = ("reference", "surgical", "baseline", "cbv", "diagnostic")
SOURCE = "source"  # the method name of a source model's run (not a method of the registry)
STRATEGY_NAMES = (
    "none",
    "subset",
    "lp_ft",
    "auto_rgn",
    "cbv_joint",
    "cbv_two_stage",
    "wise_ft",
    "cbv_converge",
)

# The version of each code path that produces stored results: a strategy's fitting code, and
# "source" for the source model and its evaluation (helpers/study/source.py). Bump when a fix
# changes results: the number is part of every stored run's key, so a run computed before the
# fix is never reused or averaged with runs computed after it.
CODE_VERSION: dict[str, int] = {
    SOURCE: 2,  # 2: the training stream follows the seed; precision and device in the key
    "none": 2,
    "subset": 2,
    "lp_ft": 2,
    "auto_rgn": 2,
    "cbv_joint": 2,
    "cbv_two_stage": 2,
    "wise_ft": 2,
    "cbv_converge": 1,
}


@dataclass(frozen=True)
class Method:
    """One named way to adapt the source model to the shifted data."""

    name: str
    family: str  # one of FAMILIES
    description: str
    strategy: str = "subset"  # one of STRATEGY_NAMES
    train: tuple[str, ...] = ()  # layer selections for subset strategies (models/layers.py)
    cbv: CBVConfig | None = None
    base: str | None = None  # the method whose fitted model this one starts from
    settings: dict = field(default_factory=dict)  # TrainConfig fields it sets for itself
    options: dict = field(default_factory=dict)  # strategy-specific settings
    # Its starting learning rate relative to the profile's: a head alone or two layers need
    # far larger steps than the whole model to move in the same budget (tuning starts here).
    lr_scale: float = 1.0

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise unknown_name(f"family of method {self.name!r}", self.family, FAMILIES)
        if self.strategy not in STRATEGY_NAMES:
            raise unknown_name(f"strategy of method {self.name!r}", self.strategy, STRATEGY_NAMES)
        if self.strategy in ("cbv_joint", "cbv_two_stage", "wise_ft") and self.cbv is None:
            raise UserError(f"method {self.name!r}: strategy {self.strategy!r} needs a CBVConfig")

    def tuned_settings(self) -> list[str]:
        """The learning rates tuning chooses for this method, in order (none: nothing to tune).

        Weights' rate first; CBV's coefficient rate then, at the chosen weights' rate, unless
        the coefficients share the weights' rate (``settings["alpha_lr"] is None``).
        """
        if self.strategy in ("none", "wise_ft", "cbv_converge"):
            return []
        if self.strategy == "cbv_two_stage":  # weights are the base's; only coefficients learn
            return ["alpha_lr"]
        shared = "alpha_lr" in self.settings and self.settings["alpha_lr"] is None
        if self.strategy == "cbv_joint" and not shared:
            return ["lr", "alpha_lr"]
        return ["lr"]

    def train_config(self, base: TrainConfig) -> TrainConfig:
        """The profile's training settings with this method's own (its starting rate, the
        study's warm-up...)."""
        return replace(base, lr=base.lr * self.lr_scale, **self.settings)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "strategy": self.strategy,
            "train": list(self.train),
            "cbv": None if self.cbv is None else vars(self.cbv),
            "base": self.base,
            "settings": self.settings,
            "options": self.options,
            "lr_scale": self.lr_scale,
        }


_ALL = ("embeddings", "all")
# The study's coverage: coefficients on the encoder layers and the head only; the embeddings and
# the pooler stay frozen at the source (by default they are covered: CBV covers what `all` trains).
STUDY_COVERAGE = {"include_embeddings": False, "include_pooler": False}
# The study's rates: one learning rate for weights and coefficients, no coefficient warm-up.
STUDY_RATES = {"alpha_lr": None, "alpha_warmup_ratio": 0.0}
WISE = CBVConfig(space="weight", constraint="clamp", init=1.0)  # starts at the fine-tuned model


def _cbv(name: str, description: str, **config) -> Method:
    """A jointly trained CBV variant (weights and coefficients together)."""
    settings = config.pop("settings", {})
    scale = config.pop("lr_scale", 1.0)
    return Method(
        name,
        "cbv",
        description,
        strategy="cbv_joint",
        cbv=CBVConfig(**config),
        settings=settings,
        lr_scale=scale,
    )


METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method("none", "reference", "source model, not adapted", strategy="none"),
        Method("head", "surgical", "classifier head only", train=("head",), lr_scale=100.0),
        Method("first2", "surgical", "first two encoder layers", train=("first:2",), lr_scale=10.0),
        Method(
            "middle2", "surgical", "middle two encoder layers", train=("middle:2",), lr_scale=10.0
        ),
        Method("last2", "surgical", "last two encoder layers", train=("last:2",), lr_scale=10.0),
        Method("all", "surgical", "all parameters", train=_ALL),
        Method(
            "lp_ft",
            "baseline",
            "LP-FT: linear probe to convergence on frozen features, then all parameters",
            strategy="lp_ft",
        ),
        Method(
            "auto_rgn",
            "baseline",
            "Auto-RGN: per-tensor lr from relative gradient norms",
            strategy="auto_rgn",
            lr_scale=10.0,  # scales below 1 for all but the most-changed tensor
        ),
        _cbv("cbv_weight", "CBV in weight space, joint, sigmoid alphas, every group"),
        _cbv(
            "cbv_output", "CBV in output space, joint, sigmoid alphas, every group", space="output"
        ),
        _cbv(
            "cbv_study",
            "CBV as the study's code: output space, sum-normalised alphas, one "
            "learning rate, no warm-up, layers and head only",
            space="output",
            constraint="sum",
            settings=STUDY_RATES,
            lr_scale=10.0,  # one rate for weights and coefficients: tuned from 1e-3
            **STUDY_COVERAGE,
        ),
        _cbv(
            "cbv_study_free",
            "the study's recipe without the sum normalisation (sigmoid alphas): its control",
            space="output",
            settings=STUDY_RATES,
            lr_scale=10.0,
            **STUDY_COVERAGE,
        ),
        _cbv(
            "cbv_layers",
            "CBV in weight space with the study's coverage: layers and head only",
            **STUDY_COVERAGE,
        ),
        _cbv(
            "cbv_per_tensor",
            "CBV in weight space, one coefficient per parameter tensor",
            per_tensor=True,
        ),
        _cbv(
            "cbv_sparse",
            "CBV in weight space with a sparsity penalty 0.01 * sum(alpha)",
            penalty=0.01,
        ),
        Method(
            "cbv_two_stage",
            "cbv",
            "CBV two-stage: all-layer fine-tune, then alphas fitted on "
            "half the validation mixture and selected on the other half",
            strategy="cbv_two_stage",
            base="all",
            cbv=WISE,
            settings={"alpha_warmup_ratio": 0.0},  # the weights are fixed: nothing to wait for
        ),
        Method(
            "wise_ft",
            "baseline",
            "WiSE-FT: one global coefficient on every weight, grid-searched on validation",
            strategy="wise_ft",
            base="all",
            cbv=WISE,
        ),
        Method(
            "wise_ft_backbone",
            "baseline",
            "WiSE-FT on the backbone only: the fine-tuned head is kept",
            strategy="wise_ft",
            base="all",
            cbv=WISE,
            options={"keep_head": True},
        ),
    ]
}
CONVERGED = "_converged"  # name suffix of a CBV run's coefficients fitted to convergence
METHODS.update(
    {
        f"{name}{CONVERGED}": Method(
            f"{name}{CONVERGED}",
            "diagnostic",
            f"{name}'s model with its alphas fitted to convergence, weights held at their end",
            strategy="cbv_converge",
            base=name,
        )
        for name in ("cbv_study", "cbv_study_free")
    }
)


def converged(name: str) -> str:
    """The name of a CBV method's companion whose alphas are fitted to convergence."""
    return get_method(f"{name}{CONVERGED}").name


def get_method(name: str) -> Method:
    """Look a method up by name."""
    if name not in METHODS:
        raise unknown_name("method", name, METHODS)
    return METHODS[name]


def code_version(name: str) -> dict[str, int]:
    """The CODE_VERSION of every strategy a method's result depends on (its bases' included)."""
    versions, method = {}, get_method(name)
    while True:
        versions[method.strategy] = CODE_VERSION[method.strategy]
        if method.base is None:
            return versions
        method = get_method(method.base)


def in_family(family: str, names=None) -> list[str]:
    """Method names of one family, in registry order (among ``names`` when given)."""
    if family not in FAMILIES:
        raise unknown_name("method family", family, FAMILIES)
    chosen = METHODS if names is None else set(names)
    return [m.name for m in METHODS.values() if m.family == family and m.name in chosen]


def bases() -> set[str]:
    """Methods whose fitted models other methods start from (kept in memory and stored)."""
    return {m.base for m in METHODS.values() if m.base is not None}


def method_order(names) -> list[str]:
    """Names in registry order (reference, surgical, baselines, CBV), unknown names last."""
    rank = {m: i for i, m in enumerate(METHODS)}
    return sorted(names, key=lambda m: (rank.get(m, len(rank)), m))
