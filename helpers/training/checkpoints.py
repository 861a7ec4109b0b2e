"""Checkpoints as safetensors only, verified by SHA-256 before use.

Two kinds: a stored model (``save_model`` / ``load_model``: a Hugging Face folder written with
safetensors plus a digest file), and a resume point of a training run (``save_resume`` /
``load_resume``: trainable weights, optimiser state, best weights, step and history). A resume
point is written to a fresh folder and then published by atomically replacing the ``LATEST``
pointer, so a kill at any moment leaves either the old point or the new one, never half of one.
Nothing here pickles: tensors go through safetensors, everything else through JSON.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification

from helpers.errors import UserError
from helpers.files import sha256_file, staged_folder, write_json, write_text

# Our own progress bars say what is happening; the per-file load/save bars only add noise.
transformers.utils.logging.disable_progress_bar()

DIGESTS = "sha256.json"
LATEST = "LATEST"
# A stored model's weights: one file, or (a model over 50 GB) the index of its shards.
WEIGHTS = ("model.safetensors", "model.safetensors.index.json")


class CheckpointError(UserError):
    """A stored checkpoint is missing a file or fails its digest check."""


def _write_digests(folder: Path) -> None:
    write_json(
        folder / DIGESTS,
        {
            p.name: sha256_file(p)
            for p in sorted(folder.iterdir())
            if p.is_file() and p.name != DIGESTS
        },
    )


def verify(folder: Path, fix: str) -> None:
    """Raise CheckpointError unless every file listed in the digest file matches."""
    listing = folder / DIGESTS
    if not listing.exists():
        raise CheckpointError(f"checkpoint {folder} has no {DIGESTS}; {fix}")
    for name, digest in json.loads(listing.read_text()).items():
        path = folder / name
        if not path.exists() or sha256_file(path) != digest:
            raise CheckpointError(
                f"checkpoint file {path} fails verification (missing or SHA-256 mismatch); {fix}"
            )


def save_model(model, folder: Path) -> None:
    """Save a plain Hugging Face model as safetensors, with digests of every file.

    Written in a staging folder of its own, removed should the save fail (a full disk).
    """
    with staged_folder(folder) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        _write_digests(tmp)


def load_model(folder: Path):
    """Load a model saved by ``save_model`` after checking its digests and its weights file."""
    fix = f"delete {folder.parent} and rerun to train it again"
    verify(folder, fix)
    if not any((folder / name).is_file() for name in WEIGHTS):
        raise CheckpointError(f"checkpoint {folder} holds no {WEIGHTS[0]}; {fix}")
    try:
        return AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True)
    except OSError as e:  # a config or weights file transformers cannot read
        raise CheckpointError(f"checkpoint {folder} cannot be loaded ({e}); {fix}") from None


def trainable_state(model) -> dict[str, torch.Tensor]:
    """Copies of the trainable weights (the rest cannot change during training), on the CPU."""
    return {
        n: p.detach().cpu().contiguous().clone()
        for n, p in model.named_parameters()
        if p.requires_grad
    }


def _flatten_optimizer(optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars[f"{index}.{key}"] = value
    groups = [{k: v for k, v in g.items()} for g in state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _unflatten_optimizer(tensors: dict, meta: dict) -> dict:
    state: dict[int, dict] = {}
    for flat, value in [*tensors.items(), *meta["scalars"].items()]:
        index, key = flat.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_resume(folder: Path, model, optimizer, progress: dict, best: dict | None) -> None:
    """Write a resume point: trainable weights, optimiser, best weights, progress (JSON)."""
    step = progress["step"]
    target = folder / f"step-{step:07d}"
    with staged_folder(target) as tmp:
        save_file(trainable_state(model), tmp / "weights.safetensors")
        tensors, meta = _flatten_optimizer(optimizer)
        save_file(tensors, tmp / "optimizer.safetensors")
        if best is not None:
            save_file({k: v.contiguous() for k, v in best.items()}, tmp / "best.safetensors")
        (tmp / "progress.json").write_text(json.dumps({**progress, "optimizer": meta}))
        _write_digests(tmp)
    write_text(folder / LATEST, target.name)
    # Keep only the published point (and no staging folder a killed process left behind).
    for old in [*folder.glob("step-*"), *folder.glob(".step-*.tmp")]:
        if old != target:
            shutil.rmtree(old, ignore_errors=True)


def load_resume(folder: Path | None):
    """The latest verified resume point as (weights, optimizer_state, best, progress), or None."""
    if folder is None or not (folder / LATEST).exists():
        return None
    target = folder / (folder / LATEST).read_text().strip()
    verify(target, f"delete {folder} to restart this training run from its beginning")
    progress = json.loads((target / "progress.json").read_text())
    optimizer = _unflatten_optimizer(
        load_file(target / "optimizer.safetensors"), progress.pop("optimizer")
    )
    best_path = target / "best.safetensors"
    best = load_file(best_path) if best_path.exists() else None
    return load_file(target / "weights.safetensors"), optimizer, best, progress


def clear_resume(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
