"""Training settings: a frozen, self-validating config (torch-free, read from experiments.yaml)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from helpers.errors import UserError

CLASS_WEIGHTS = ("auto", "none")
PRECISIONS = ("fp32", "bf16")  # bf16: autocast where native (helpers/models/precision.py)


@dataclass(frozen=True)
class TrainConfig:
    """How one model is trained; every method shares these settings."""

    epochs: int = 2  # passes over the training mixture
    batch_size: int = 16  # examples per optimiser step
    lr: float = 5e-5  # peak learning rate of the weights
    weight_decay: float = 0.01  # AdamW decay on weights (never on coefficients)
    warmup_ratio: float = 0.1  # share of steps with linearly rising weight lr
    max_grad_norm: float = 1.0  # clip to keep early steps of small data stable
    alpha_lr: float | None = 0.05  # CBV coefficients move far faster; None: the weights' lr
    alpha_warmup_ratio: float = 0.1  # coefficients frozen for this share of steps (see cbv.py)
    evals_per_epoch: int = 1  # validation passes per epoch (best one is kept)
    select_metric: str = "macro_f1"  # validation metric that picks the best checkpoint
    eval_batch_size: int = 128  # evaluation batches are length-sorted, so can be large
    seed: int = 0  # data order, dropout and head initialisation
    cache_prefix: bool = True  # reuse frozen-prefix features across epochs and methods
    compile: bool = False  # torch.compile the model (GPU users; slow to start)
    checkpoint_every: int = 0  # extra resume points every N steps (0: at validations)
    class_weight: str = "auto"  # "auto": balanced loss when a class is under 30%; "none"
    patience: int = 0  # stop after this many validations without improvement (0: never)
    precision: str = "fp32"  # "bf16": matrix products in bfloat16 where the device has them

    def __post_init__(self):
        for name in ("epochs", "batch_size", "evals_per_epoch", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise UserError(
                    f"train setting {name} must be at least 1, got {getattr(self, name)}"
                )
        for name in ("lr", "alpha_lr", "weight_decay", "max_grad_norm"):
            if name == "alpha_lr" and self.alpha_lr is None:
                continue
            if not 0 <= float(getattr(self, name)) < math.inf:
                raise UserError(
                    f"train setting {name} must be a finite number >= 0, got {getattr(self, name)}"
                )
        if self.class_weight not in CLASS_WEIGHTS:
            raise UserError(
                f"train setting class_weight must be one of {', '.join(CLASS_WEIGHTS)}, "
                f"got {self.class_weight!r}"
            )
        if self.precision not in PRECISIONS:
            raise UserError(
                f"train setting precision must be one of {', '.join(PRECISIONS)}, "
                f"got {self.precision!r}"
            )
        if int(self.patience) < 0:
            raise UserError(f"train setting patience must be >= 0, got {self.patience}")
        for name in ("warmup_ratio", "alpha_warmup_ratio"):
            if not 0 <= float(getattr(self, name)) < 1:
                raise UserError(
                    f"train setting {name} must lie in [0, 1), got {getattr(self, name)}"
                )

    @property
    def coefficient_lr(self) -> float:
        """The CBV coefficients' learning rate (the weights' when ``alpha_lr`` is None)."""
        return self.lr if self.alpha_lr is None else self.alpha_lr

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TuneConfig:
    """How each trained method's learning rates are chosen on validation (helpers.study.search).

    Every trained method gets ``trials`` trials on a log ladder from its own starting rate
    (the profile's rate times the method's ``lr_scale``), ``step`` apart, extended past an edge
    until its choice is interior (or the trials run out: then flagged). A trial's score is the
    mean validation score over the profile's first ``seeds`` seeds, at ``delta``.
    """

    trials: int = 5  # per method, the same for every trained method
    step: float = 10**0.5  # ratio between neighbouring rungs of the ladder
    seeds: int = 2  # fits averaged per trial (the profile's first seeds)
    delta: float | None = None  # the shift tuned at; None: the profile's largest delta
    # "experiment": each tuned alone; "family": one choice per task family, its trials spread
    # over the family's experiments (each trial then averages one fit per experiment)
    pool: str = "experiment"

    def __post_init__(self):
        if int(self.trials) < 1 or int(self.seeds) < 1:
            raise UserError(
                f"tune settings trials and seeds must be at least 1, got {self.trials}, "
                f"{self.seeds}"
            )
        if not 1 < float(self.step) < math.inf:
            raise UserError(f"tune setting step must be a ratio > 1, got {self.step}")
        if self.pool not in ("experiment", "family"):
            raise UserError(f"tune setting pool must be experiment or family, got {self.pool!r}")
        if self.delta is not None and not 0 <= float(self.delta) <= 1:
            raise UserError(f"tune setting delta must lie in [0, 1], got {self.delta}")
