"""Tokenised example sets and their batches: dynamic padding, length-sorted evaluation order.

Texts are tokenised once per (tokenizer, max_length) and kept unpadded; a batch is padded only to
its own longest example. Evaluation sorts by length so that batches carry almost no padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import torch


@dataclass(frozen=True, eq=False)
class Encoded:
    """Unpadded token ids of a set of examples, with their labels, ids and corpora."""

    input_ids: tuple[np.ndarray, ...]
    labels: np.ndarray
    ids: np.ndarray
    sources: np.ndarray
    pad_id: int

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), int, len(self.input_ids))

    def subset(self, index) -> Encoded:
        index = np.asarray(index)
        return Encoded(
            tuple(self.input_ids[i] for i in index),
            self.labels[index],
            self.ids[index],
            self.sources[index],
            self.pad_id,
        )


@lru_cache(maxsize=64)
def _encode_texts(tokenizer, texts: tuple[str, ...], max_length: int) -> tuple[np.ndarray, ...]:
    out = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    return tuple(np.asarray(x, dtype=np.int64) for x in out)


def encode(frame: pd.DataFrame, tokenizer, max_length: int) -> Encoded:
    """Tokenise a frame with columns id, text, label, source (cached per text tuple)."""
    ids = _encode_texts(tokenizer, tuple(frame["text"]), max_length)
    return Encoded(
        ids,
        frame["label"].to_numpy(np.int64),
        frame["id"].to_numpy(str),
        frame["source"].to_numpy(str),
        tokenizer.pad_token_id or 0,
    )


def pad(rows, value: float = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack tensors of different lengths (dim 0), padded with ``value`` to the longest one.

    Returns the padded batch and its attention mask (1 on real positions). The one padding
    routine: token ids, cached prefix features and the benchmark all go through it.
    """
    rows = [torch.as_tensor(r) for r in rows]
    lengths = torch.tensor([len(r) for r in rows])
    padded = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=value)
    mask = (torch.arange(padded.shape[1])[None, :] < lengths[:, None]).long()
    return padded, mask


def collate(data: Encoded, index) -> dict[str, torch.Tensor]:
    """Pad the examples at ``index`` to their longest one; returns model inputs and labels."""
    ids, mask = pad([data.input_ids[i] for i in index], value=data.pad_id)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": torch.from_numpy(data.labels[np.asarray(index)]),
    }


def train_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of indices for one epoch (the last one may be short)."""
    order = rng.permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def eval_batches(data: Encoded, batch_size: int, sort: bool = True) -> list[np.ndarray]:
    """Batches of indices for evaluation; sorted by length so padding is minimal."""
    order = np.argsort(data.lengths, kind="stable") if sort else np.arange(len(data))
    return [order[i : i + batch_size] for i in range(0, len(data), batch_size)]
