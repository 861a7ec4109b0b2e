"""The benchmark's sizes (``BenchConfig``) and the names of what it times and on which data."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from helpers.errors import UserError
from helpers.models.loading import DEFAULT_MODEL

METHODS = ("all", "first2", "last2", "head", "cbv_weight", "cbv_output")
TRAINER = "trainer"  # transformers' Trainer, default settings, full fine-tuning
TWO_EPOCHS = ("all", "last2")  # the epoch comparison needs a steady-state second epoch
REVIEWS = ("amazon_books", "sentiment")  # training and review evaluation data
TWEETS = ("tweeteval_hate", "hate")  # tweet evaluation data
VAL_SIZE = 16  # one small validation batch: validation is not what is timed
PROFILE = "quick"  # the curve corpora and the timed experiment come from this profile


@dataclass(frozen=True)
class BenchConfig:
    """Sizes of the benchmark; the defaults take a few minutes on a quiet 2-core CPU."""

    model: str = DEFAULT_MODEL  # the packaged 6-layer MiniLM
    steps: int = 16  # optimiser steps per epoch: 256 reviews at batch 16
    batch_size: int = 16  # the quick profile's training batch
    review_length: int = 128  # the sentiment task's max_length
    tweet_length: int = 64  # the hate task's max_length
    n_eval_reviews: int = 256
    n_eval_tweets: int = 512
    eval_batch_size: int = 128  # TrainConfig's default evaluation batch
    n_curve: int = 64  # examples per test set in the curve accounting
    repeats: int = 2  # runs per method, alternating order; medians reported
    experiment: str = "books_to_dvd"  # its corpora give the degradation curve
    curve_profile: str = PROFILE  # profile whose pools the curve samples (smoke for fixtures)
    matmul_size: int | None = None  # None: 2048 (float32) on CPUs, 8192 (bfloat16) on GPUs
    threads: int | None = None  # torch CPU threads; None keeps torch's default
    seed: int = 0

    def __post_init__(self):
        for name in (
            "steps",
            "batch_size",
            "review_length",
            "tweet_length",
            "n_eval_reviews",
            "n_eval_tweets",
            "eval_batch_size",
            "n_curve",
            "repeats",
        ):
            if int(getattr(self, name)) < 1:
                raise UserError(
                    f"bench setting {name} must be at least 1, got {getattr(self, name)}"
                )
        if self.steps < 3:
            raise UserError(
                f"bench needs at least 3 steps per epoch (step times are the gaps "
                f"between updates within an epoch), got --steps {self.steps}"
            )
        for name in ("matmul_size", "threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UserError(f"bench setting {name} must be at least 1 or unset")

    def to_dict(self) -> dict:
        return asdict(self)
