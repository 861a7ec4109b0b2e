"""Training step times of every method and of transformers' Trainer, and their summary."""

from __future__ import annotations

import copy
import os
import tempfile
import time
import warnings
from collections.abc import Callable

import numpy as np
from accelerate.state import AcceleratorState
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments
from transformers.trainer_callback import PrinterCallback

from helpers.config.methods import get_method
from helpers.config.settings import TrainConfig
from helpers.training.prefix import CACHE
from helpers.training.strategies import FitInputs, adapt
from tools.bench.clock import step_clock, summarise_steps
from tools.bench.config import METHODS, TRAINER, TWO_EPOCHS, BenchConfig
from tools.bench.data import BenchData
from tools.bench.flops import training_flops


def reset_accelerate() -> None:
    """Forget Accelerate's process-wide state before each run (a private Accelerate API).

    Our engine asks for bf16 autocast on GPUs while a default Trainer asks for none; Accelerate
    refuses a second, different precision in one process unless its state is reset. A no-op in
    effect on CPUs, where both ask for the same.
    """
    AcceleratorState._reset_state(reset_partial_state=True)


def time_method(name: str, source, data: BenchData, cfg: BenchConfig, epochs: int) -> dict:
    """Fit one method through ``strategies.adapt`` from a cold prefix cache; its step times."""
    CACHE.clear()  # a cold cache: the prefix computation is part of what is measured
    computed = CACHE.computed
    train_cfg = TrainConfig(
        epochs=epochs, batch_size=cfg.batch_size, eval_batch_size=cfg.eval_batch_size, seed=cfg.seed
    )
    inputs = FitInputs(
        source=source,
        train=data.train,
        val=data.val,
        label_names=data.label_names,
        cfg=train_cfg,
        progress=False,
    )
    reset_accelerate()
    with step_clock() as clock:
        adapted = adapt(get_method(name), inputs)
    wall = time.perf_counter() - clock["start"]
    out = summarise_steps(clock["start"], clock["stamps"], cfg.steps, epochs)
    cached = adapted.fits[0].cached_prefix if adapted.fits else None
    return {
        **out,
        "wall_s": wall,
        "epochs": epochs,
        "cached_prefix_depth": cached,
        "prefix_examples_computed": CACHE.computed - computed,
    }


def time_trainer(source, data: BenchData, cfg: BenchConfig, tokenizer) -> dict:
    """Full fine-tuning of a fresh copy by transformers' Trainer, default settings; step times.

    Changed from the defaults only what a benchmark must: a temporary output_dir, the batch
    size, one epoch, the seed, and no saving, logging, reporting or progress bar.
    """
    model = copy.deepcopy(source)
    dataset = [
        {"input_ids": ids.tolist(), "labels": int(label)}
        for ids, label in zip(data.train.input_ids, data.train.labels)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=cfg.batch_size,
            num_train_epochs=1,
            seed=cfg.seed,
            report_to=[],
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
        )
        reset_accelerate()
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=dataset,
            data_collator=DataCollatorWithPadding(tokenizer),
        )
        trainer.remove_callback(PrinterCallback)  # without a progress bar it prints metrics
        with step_clock() as clock, warnings.catch_warnings():
            # default pin_memory=True warns on machines without an accelerator; harmless
            warnings.filterwarnings("ignore", message=".*pin_memory.*")
            trainer.train()
        wall = time.perf_counter() - clock["start"]
        optim = str(getattr(args.optim, "value", args.optim))
    out = summarise_steps(clock["start"], clock["stamps"], cfg.steps, 1)
    return {**out, "wall_s": wall, "epochs": 1, "optimizer": optim}


def training_runs(
    source, data: BenchData, cfg: BenchConfig, tokenizer, log: Callable[[str], None] = print
) -> list[dict]:
    """Every method and the Trainer, ``repeats`` times, the order reversed every other time."""
    plan = [TRAINER, *METHODS]
    runs = []
    for rep in range(cfg.repeats):
        for name in plan if rep % 2 == 0 else plan[::-1]:
            epochs = 2 if name in TWO_EPOCHS else 1
            if name == TRAINER:
                run = time_trainer(source, data, cfg, tokenizer)
            else:
                run = time_method(name, source, data, cfg, epochs)
            runs.append({"method": name, "repeat": rep, **run})
            log(
                f"  train {name:<11} repeat {rep}: step {run['step_s']:.3f} s, "
                f"load {os.getloadavg()[0]:.1f}"
            )
    return runs


def summarise_training(
    runs: list[dict], cfg: BenchConfig, shape: dict, lengths: np.ndarray, peak: float
) -> dict:
    """Per method: median step, throughput, epoch times; FLOP rate of full fine-tuning."""
    flops_per_step = training_flops(shape, lengths) / cfg.steps
    out = {}
    for name in [TRAINER, *METHODS]:
        mine = [r for r in runs if r["method"] == name]
        step = float(np.median([d for r in mine for d in r["step_durations_s"]]))
        row = {
            "step_s": step,
            "examples_per_s": cfg.batch_size / step,
            "step_s_per_repeat": [r["step_s"] for r in mine],
            "first_epoch_s": float(np.median([r["first_epoch_s"] for r in mine])),
            "one_off_s": float(np.median([r["one_off_s"] for r in mine])),
            "prefix_examples_computed": mine[0].get("prefix_examples_computed"),
        }
        if name in TWO_EPOCHS:
            row["steady_epoch_s_per_repeat"] = [r["epoch_s"][1] for r in mine]
            row["steady_epoch_s"] = float(np.median(row["steady_epoch_s_per_repeat"]))
        if name in ("all", TRAINER):  # the same FLOPs: every weight trains
            row["flops_per_s"] = flops_per_step / step
            row["peak_fraction"] = row["flops_per_s"] / peak
        out[name] = row
    return out
