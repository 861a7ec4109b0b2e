"""The benchmark's real examples: reviews to train on and to evaluate, and tweets to evaluate."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from helpers.data.corpora import load_corpus
from helpers.data.encoding import Encoded, encode
from helpers.errors import UserError
from tools.bench.config import REVIEWS, TWEETS, VAL_SIZE, BenchConfig


@dataclass(frozen=True, eq=False)
class BenchData:
    """Real reviews to train on, a small validation set, and the evaluation sets."""

    label_names: tuple[str, ...]
    train: Encoded  # steps x batch_size reviews
    val: Encoded  # VAL_SIZE reviews
    reviews: Encoded  # evaluation throughput, review_length
    tweets: Encoded  # evaluation throughput, tweet_length


def sample(frame: pd.DataFrame, n: int, seed: int, what: str, option: str) -> pd.DataFrame:
    """``n`` rows drawn with ``seed``, or a UserError naming the ``option`` to lower."""
    if n > len(frame):
        raise UserError(
            f"the benchmark needs {n} {what} but the corpus holds {len(frame)}; lower {option}"
        )
    return frame.sample(n, random_state=seed).reset_index(drop=True)


def load_data(cfg: BenchConfig, data_root, tokenizer) -> BenchData:
    """Sample and tokenise the benchmark's real examples (reviews and tweets)."""
    books = load_corpus(REVIEWS[0], "train", REVIEWS[1], data_root)
    books_val = load_corpus(REVIEWS[0], "validation", REVIEWS[1], data_root).frame
    tweets = load_corpus(TWEETS[0], "train", TWEETS[1], data_root).frame
    train = sample(books.frame, cfg.steps * cfg.batch_size, cfg.seed, "training reviews", "--steps")
    return BenchData(
        label_names=books.label_names,
        train=encode(train, tokenizer, cfg.review_length),
        val=encode(
            sample(books_val, VAL_SIZE, cfg.seed, "validation reviews", "VAL_SIZE"),
            tokenizer,
            cfg.review_length,
        ),
        reviews=encode(
            sample(books.frame, cfg.n_eval_reviews, cfg.seed + 1, "reviews", "n_eval_reviews"),
            tokenizer,
            cfg.review_length,
        ),
        tweets=encode(
            sample(tweets, cfg.n_eval_tweets, cfg.seed, "tweets", "n_eval_tweets"),
            tokenizer,
            cfg.tweet_length,
        ),
    )
