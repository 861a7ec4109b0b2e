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

from dataclasses import dataclass, field

from helpers.errors import UserError, unknown_name
from helpers.spec.cbv import CBVConfig

FAMILIES = ("reference", "surgical", "baseline", "cbv")
STRATEGY_NAMES = ("none", "subset", "lp_ft", "auto_rgn", "cbv_joint", "cbv_two_stage", "wise_ft")

# The version of each code path that produces stored results: a strategy's fitting code, and
# "source" for the source model and its evaluation (helpers/study/source.py). Bump when a fix
# changes results: the number is part of every stored run's key, so a run computed before the
# fix is never reused or averaged with runs computed after it.
CODE_VERSION: dict[str, int] = {
    "source": 1,
    "none": 1,
    "subset": 1,
    "lp_ft": 1,
    "auto_rgn": 1,
    "cbv_joint": 1,
    "cbv_two_stage": 1,
    "wise_ft": 1,
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
    options: dict = field(default_factory=dict)  # strategy-specific settings

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise unknown_name(f"family of method {self.name!r}", self.family, FAMILIES)
        if self.strategy not in STRATEGY_NAMES:
            raise unknown_name(f"strategy of method {self.name!r}", self.strategy, STRATEGY_NAMES)
        if self.strategy in ("cbv_joint", "cbv_two_stage", "wise_ft") and self.cbv is None:
            raise UserError(f"method {self.name!r}: strategy {self.strategy!r} needs a CBVConfig")

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "strategy": self.strategy,
            "train": list(self.train),
            "cbv": None if self.cbv is None else vars(self.cbv),
            "base": self.base,
            "options": self.options,
        }


_ALL = ("embeddings", "all")
METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method("none", "reference", "source model, not adapted", strategy="none"),
        Method("head", "surgical", "classifier head only", train=("head",)),
        Method("first2", "surgical", "first two encoder layers", train=("first:2",)),
        Method("middle2", "surgical", "middle two encoder layers", train=("middle:2",)),
        Method("last2", "surgical", "last two encoder layers", train=("last:2",)),
        Method("all", "surgical", "all parameters", train=_ALL),
        Method("lp_ft", "baseline", "LP-FT: head first, then all at half the lr", strategy="lp_ft"),
        Method(
            "auto_rgn",
            "baseline",
            "Auto-RGN: per-layer lr from relative gradient norms",
            strategy="auto_rgn",
        ),
        Method(
            "cbv_weight",
            "cbv",
            "CBV in weight space, joint, sigmoid alphas",
            strategy="cbv_joint",
            cbv=CBVConfig(space="weight"),
        ),
        Method(
            "cbv_output",
            "cbv",
            "CBV in output space, joint, sigmoid alphas",
            strategy="cbv_joint",
            cbv=CBVConfig(space="output"),
        ),
        Method(
            "cbv_study",
            "cbv",
            "CBV as the study's code: output space, sum-normalised alphas, "
            "one learning rate, no warm-up",
            strategy="cbv_joint",
            cbv=CBVConfig(space="output", constraint="sum"),
            options={"shared_lr": True, "train": {"alpha_warmup_ratio": 0.0}},
        ),
        Method(
            "cbv_per_tensor",
            "cbv",
            "CBV in weight space, one coefficient per parameter tensor",
            strategy="cbv_joint",
            cbv=CBVConfig(space="weight", per_tensor=True),
        ),
        Method(
            "cbv_sparse",
            "cbv",
            "CBV in weight space with a sparsity penalty 0.01 * sum(alpha)",
            strategy="cbv_joint",
            cbv=CBVConfig(space="weight", penalty=0.01),
        ),
        Method(
            "cbv_embeddings",
            "cbv",
            "CBV in weight space with coefficients on the embeddings and pooler too",
            strategy="cbv_joint",
            cbv=CBVConfig(space="weight", include_embeddings=True, include_pooler=True),
        ),
        Method(
            "cbv_two_stage",
            "cbv",
            "CBV two-stage: all-layer fine-tune, then alphas on validation with weights fixed",
            strategy="cbv_two_stage",
            base="all",
            cbv=CBVConfig(space="weight", constraint="clamp", init=1.0),
        ),
        Method(
            "wise_ft",
            "baseline",
            "WiSE-FT: one global backbone coefficient, grid-searched",
            strategy="wise_ft",
            base="all",
            cbv=CBVConfig(
                space="weight",
                constraint="clamp",
                init=1.0,
                include_embeddings=True,
                include_pooler=True,
            ),
        ),
    ]
}


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
