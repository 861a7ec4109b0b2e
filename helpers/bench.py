"""Performance benchmark: ``python -m helpers bench`` measures the engine against its targets.

What is measured, all in one process so that every ratio compares runs made side by side:

* Training step time and throughput of full fine-tuning (``all``), ``first2``, ``last2``,
  ``head``, CBV in weight space and in output space, each fitted through the real path
  (``methods.adapt``) on real Amazon reviews, and of the same model, batch and sequence length
  trained by transformers' ``Trainer`` with its default settings. Step times come from a global
  optimiser-step hook: a step is the time between two consecutive optimiser updates within one
  epoch (data collation, forward, backward, clipping, update), so validation passes, which run
  between epochs, never count. Every method runs ``repeats`` times, in alternating order, and
  the median is reported; ratios are of those medians.
* Epoch time of ``last2`` against ``all`` (two epochs each). The first epoch counts everything
  from the call to the end of its last step (copying the model, computing the frozen prefix
  once, every step); a steady-state epoch is ``steps`` times the median step of epoch two. The
  frozen prefix (embeddings and layers 0..3 of the 6-layer default) is computed once per data
  set and reused across epochs, methods and deltas; this is exact because frozen layers always
  run without dropout in this project (``training.fit`` puts them in eval mode, cached or not).
  The price of that choice is that frozen layers no longer inject dropout noise into the
  trainable ones; it buys bit-identical cached and recomputed features.
* Achieved FLOP rate of full fine-tuning against the machine's measured matrix-multiply peak
  (the best of several square matmuls: float32 on CPUs, bfloat16 on GPUs, the precision the
  engine trains in). Training FLOPs per example of T real tokens are
  ``6 * N * T + 12 * L * d * T**2``: N parameters outside the embeddings (a lookup costs no
  multiply), and attention scores and mixing (``4 * d * T**2`` per layer forward), times 3 for
  forward plus backward. Padding is not counted, so the rate is useful work.
* Evaluation throughput of ``evaluation.predict`` (length-sorted batches padded to their own
  longest example) against the same examples in their given order padded to ``max_length``,
  on real tweets (64 tokens) and real reviews (128 tokens), with the share of identical
  predictions as a check that both paths compute the same thing.
* The cost of an 11-point degradation curve, counted in examples run through the model (a
  forward hook counts them): the project's way predicts two per-corpus test sets once and
  derives every delta from them (``evaluation.expected_curve``); the naive way evaluates a
  sampled test mixture per delta. One "evaluation" is one test set of the benchmark's size.
* Optionally, the wall time of one quick-profile experiment: all four notebooks through
  ``report.run_report`` into a temporary folder.

How to read it: ``bench.md`` lists every target with PASS or MISS and the margin, then the raw
numbers; ``bench.json`` holds every measured number, each run's step times, and the machine
(cores, torch threads, load average before and after). A loaded machine (load average above
the core count) slows everything, and a contended CPU hurts multi-threaded matmuls most, so
compare absolute rates only between runs on the same quiet machine; ratios hold up better.
"""
from __future__ import annotations

import copy
import datetime
import os
import platform
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.optim.optimizer as torch_optimizer

from helpers.config import load_experiment, load_profile
from helpers.corpora import load_corpus
from helpers.encoding import Encoded, encode, eval_batches
from helpers.errors import UserError
from helpers.evaluation import bootstrap, expected_curve, predict
from helpers.features import CACHE
from helpers.layers import layer_groups
from helpers.methods import FitInputs, adapt, get_method
from helpers.models import DEFAULT_MODEL, load_classifier, load_tokenizer
from helpers.paths import data_root as resolve_data_root, reports_root
from helpers.results import atomic_write, provenance, write_json
from helpers.training import TrainConfig

METHODS = ("all", "first2", "last2", "head", "cbv_weight", "cbv_output")
TRAINER = "trainer"          # transformers' Trainer, default settings, full fine-tuning
TWO_EPOCHS = ("all", "last2")  # the epoch comparison needs a steady-state second epoch
REVIEWS = ("amazon_books", "sentiment")    # training and review evaluation data
TWEETS = ("tweeteval_hate", "hate")        # tweet evaluation data
VAL_SIZE = 16                # one small validation batch: validation is not what is timed
PROFILE = "quick"            # the curve corpora and the timed experiment come from this profile


@dataclass(frozen=True)
class BenchConfig:
    """Sizes of the benchmark; the defaults take a few minutes on a quiet 2-core CPU."""

    model: str = DEFAULT_MODEL     # the packaged 6-layer MiniLM
    steps: int = 16                # optimiser steps per epoch: 256 reviews at batch 16
    batch_size: int = 16           # the quick profile's training batch
    review_length: int = 128       # the sentiment task's max_length
    tweet_length: int = 64         # the hate task's max_length
    n_eval_reviews: int = 256
    n_eval_tweets: int = 512
    eval_batch_size: int = 128     # TrainConfig's default evaluation batch
    n_curve: int = 64              # examples per test set in the curve accounting
    repeats: int = 2               # runs per method, alternating order; medians reported
    experiment: str = "books_to_dvd"  # its corpora give the degradation curve
    matmul_size: int | None = None  # None: 2048 (float32) on CPUs, 8192 (bfloat16) on GPUs
    threads: int | None = None     # torch CPU threads; None keeps torch's default
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "review_length", "tweet_length", "n_eval_reviews",
                     "n_eval_tweets", "eval_batch_size", "n_curve", "repeats"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"bench setting {name} must be at least 1, "
                                f"got {getattr(self, name)}")
        if self.steps < 3:
            raise UserError(f"bench needs at least 3 steps per epoch (step times are the gaps "
                            f"between updates within an epoch), got --steps {self.steps}")
        for name in ("matmul_size", "threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UserError(f"bench setting {name} must be at least 1 or unset")

    def to_dict(self) -> dict:
        return asdict(self)


def device() -> torch.device:
    """Where the engine trains: the GPU when there is one (bf16 autocast), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


# ---- the machine ---------------------------------------------------------------------------
def _usable_cpus() -> int:
    """Cores this process may run on (its affinity where the OS reports one)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count()


def machine() -> dict:
    """Cores, threads, load, device and library versions, recorded beside every number."""
    import accelerate
    import transformers

    cuda = torch.cuda.is_available()
    return {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "platform": platform.platform(), "processor": platform.processor() or None,
            "cpu_count": os.cpu_count(), "cpus_usable": _usable_cpus(),
            "torch_threads": torch.get_num_threads(), "load_average": list(os.getloadavg()),
            "device": torch.cuda.get_device_name(0) if cuda else "cpu",
            "torch": torch.__version__, "transformers": transformers.__version__,
            "accelerate": accelerate.__version__, "git_commit": provenance()["git_commit"]}


def matmul_peak(size: int | None = None, repeats: int = 5) -> dict:
    """The machine's matrix-multiply rate: the best of ``repeats`` square matmuls (2 n^3 FLOPs)."""
    dev = device()
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    n = size or (8192 if dev.type == "cuda" else 2048)
    gen = torch.Generator(device=dev).manual_seed(0)
    a = torch.randn(n, n, device=dev, dtype=dtype, generator=gen)
    b = torch.randn(n, n, device=dev, dtype=dtype, generator=gen)
    a @ b  # warm-up: thread pools, kernels
    _sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        _sync()
        best = min(best, time.perf_counter() - start)
    return {"n": n, "dtype": str(dtype).removeprefix("torch."), "repeats": repeats,
            "best_s": best, "flops_per_s": 2 * n ** 3 / best}


# ---- data ----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class BenchData:
    """Real reviews to train on, a small validation set, and the evaluation sets."""

    label_names: tuple[str, ...]
    train: Encoded    # steps x batch_size reviews
    val: Encoded      # VAL_SIZE reviews
    reviews: Encoded  # evaluation throughput, review_length
    tweets: Encoded   # evaluation throughput, tweet_length


def _sample(frame: pd.DataFrame, n: int, seed: int, what: str, option: str) -> pd.DataFrame:
    if n > len(frame):
        raise UserError(f"the benchmark needs {n} {what} but the corpus holds {len(frame)}; "
                        f"lower {option}")
    return frame.sample(n, random_state=seed).reset_index(drop=True)


def load_data(cfg: BenchConfig, data_root, tokenizer) -> BenchData:
    """Sample and tokenise the benchmark's real examples (reviews and tweets)."""
    books = load_corpus(REVIEWS[0], "train", REVIEWS[1], data_root)
    books_val = load_corpus(REVIEWS[0], "validation", REVIEWS[1], data_root).frame
    tweets = load_corpus(TWEETS[0], "train", TWEETS[1], data_root).frame
    train = _sample(books.frame, cfg.steps * cfg.batch_size, cfg.seed, "training reviews",
                    "--steps")
    return BenchData(
        label_names=books.label_names,
        train=encode(train, tokenizer, cfg.review_length),
        val=encode(_sample(books_val, VAL_SIZE, cfg.seed, "validation reviews", "VAL_SIZE"),
                   tokenizer, cfg.review_length),
        reviews=encode(_sample(books.frame, cfg.n_eval_reviews, cfg.seed + 1, "reviews",
                               "n_eval_reviews"), tokenizer, cfg.review_length),
        tweets=encode(_sample(tweets, cfg.n_eval_tweets, cfg.seed, "tweets", "n_eval_tweets"),
                      tokenizer, cfg.tweet_length))


# ---- FLOPs ---------------------------------------------------------------------------------
def flop_model(model) -> dict:
    """N (parameters outside the embeddings), L (layers) and d (hidden size) of a classifier."""
    groups = layer_groups(model)
    embedding = {id(p) for _, p in groups.parameters(model, "embeddings")}
    n = sum(p.numel() for p in model.parameters() if id(p) not in embedding)
    hidden = getattr(model.config, "hidden_size", None) or model.config.dim
    return {"non_embedding_params": n, "layers": groups.num_layers, "hidden": hidden}


def forward_flops(shape: dict, lengths: np.ndarray) -> float:
    """Forward FLOPs over examples of the given real lengths: 2 N T + 4 L d T^2 each."""
    t = np.asarray(lengths, dtype=np.float64)
    return float((2 * shape["non_embedding_params"] * t
                  + 4 * shape["layers"] * shape["hidden"] * t ** 2).sum())


def training_flops(shape: dict, lengths: np.ndarray) -> float:
    """Training FLOPs (forward + backward = 3 forwards): 6 N T + 12 L d T^2 per example."""
    return 3 * forward_flops(shape, lengths)


# ---- step timing ---------------------------------------------------------------------------
@contextmanager
def step_clock():
    """Timestamps at the end of every optimiser step of any optimiser (a global torch hook).

    Yields a dict with ``start`` (entry time) and ``stamps``; on a GPU each stamp waits for the
    queued work, so a stamp is when the step really finished.
    """
    record = {"start": 0.0, "stamps": []}

    def hook(_optimizer, _args, _kwargs):
        _sync()
        record["stamps"].append(time.perf_counter())

    handle = torch_optimizer.register_optimizer_step_post_hook(hook)
    try:
        _sync()
        record["start"] = time.perf_counter()
        yield record
    finally:
        handle.remove()


def summarise_steps(start: float, stamps: list[float], steps_per_epoch: int,
                    epochs: int) -> dict:
    """Step and epoch times from optimiser-step timestamps.

    A step time is the gap between two consecutive updates within one epoch, so the
    validation pass between epochs is never counted. ``first_epoch_s`` runs from ``start``
    (the call) to the end of epoch one: setup (model copies, frozen-prefix features, optimiser)
    plus every step. ``epoch_s[e]`` is ``steps_per_epoch`` times the median step of epoch e;
    ``one_off_s`` is what the first epoch costs beyond that (an estimate: noise can make it
    slightly negative when there is almost no setup).
    """
    if len(stamps) != steps_per_epoch * epochs:
        raise RuntimeError(f"expected {steps_per_epoch * epochs} optimiser steps, "
                           f"saw {len(stamps)}")
    per_epoch = np.asarray(stamps, dtype=np.float64).reshape(epochs, steps_per_epoch)
    within = np.diff(per_epoch, axis=1)
    epoch_s = [float(steps_per_epoch * np.median(w)) for w in within]
    first = float(per_epoch[0, -1] - start)
    return {"step_s": float(np.median(within)), "steps_timed": int(within.size),
            "step_durations_s": [round(float(x), 6) for x in within.ravel()],
            "first_epoch_s": first, "one_off_s": first - epoch_s[0], "epoch_s": epoch_s}


def _reset_accelerate() -> None:
    """Forget Accelerate's process-wide state before each run.

    Our engine asks for bf16 autocast on GPUs while a default Trainer asks for none; Accelerate
    refuses a second, different precision in one process unless its state is reset. A no-op in
    effect on CPUs, where both ask for the same.
    """
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


def time_method(name: str, source, data: BenchData, cfg: BenchConfig, epochs: int) -> dict:
    """Fit one method through ``methods.adapt`` from a cold prefix cache; its step times."""
    CACHE.clear()   # a cold cache: the prefix computation is part of what is measured
    computed = CACHE.computed
    train_cfg = TrainConfig(epochs=epochs, batch_size=cfg.batch_size,
                            eval_batch_size=cfg.eval_batch_size, seed=cfg.seed)
    inputs = FitInputs(source, data.train, data.val, data.label_names, train_cfg,
                       progress=False)
    _reset_accelerate()
    with step_clock() as clock:
        adapted = adapt(get_method(name), inputs)
    wall = time.perf_counter() - clock["start"]
    out = summarise_steps(clock["start"], clock["stamps"], cfg.steps, epochs)
    cached = adapted.fits[0].cached_prefix if adapted.fits else None
    return {**out, "wall_s": wall, "epochs": epochs, "cached_prefix_depth": cached,
            "prefix_examples_computed": CACHE.computed - computed}


def time_trainer(source, data: BenchData, cfg: BenchConfig, tokenizer) -> dict:
    """Full fine-tuning of a fresh copy by transformers' Trainer, default settings; step times.

    Changed from the defaults only what a benchmark must: a temporary output_dir, the batch
    size, one epoch, the seed, and no saving, logging, reporting or progress bar.
    """
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    model = copy.deepcopy(source)
    dataset = [{"input_ids": ids.tolist(), "labels": int(label)}
               for ids, label in zip(data.train.input_ids, data.train.labels)]
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=cfg.batch_size,
                                 num_train_epochs=1, seed=cfg.seed, report_to=[],
                                 save_strategy="no", logging_strategy="no", disable_tqdm=True)
        _reset_accelerate()
        trainer = Trainer(model=model, args=args, train_dataset=dataset,
                          data_collator=DataCollatorWithPadding(tokenizer))
        trainer.remove_callback(PrinterCallback)   # without a progress bar it prints metrics
        with step_clock() as clock, warnings.catch_warnings():
            # default pin_memory=True warns on machines without an accelerator; harmless
            warnings.filterwarnings("ignore", message=".*pin_memory.*")
            trainer.train()
        wall = time.perf_counter() - clock["start"]
        optim = str(getattr(args.optim, "value", args.optim))
    out = summarise_steps(clock["start"], clock["stamps"], cfg.steps, 1)
    return {**out, "wall_s": wall, "epochs": 1, "optimizer": optim}


def training_runs(source, data: BenchData, cfg: BenchConfig, tokenizer,
                  log: Callable[[str], None] = print) -> list[dict]:
    """Every method and the Trainer, ``repeats`` times, the order reversed every other time."""
    plan = [TRAINER, *METHODS]
    runs = []
    for rep in range(cfg.repeats):
        for name in (plan if rep % 2 == 0 else plan[::-1]):
            epochs = 2 if name in TWO_EPOCHS else 1
            if name == TRAINER:
                run = time_trainer(source, data, cfg, tokenizer)
            else:
                run = time_method(name, source, data, cfg, epochs)
            runs.append({"method": name, "repeat": rep, **run})
            log(f"  train {name:<11} repeat {rep}: step {run['step_s']:.3f} s, "
                f"load {os.getloadavg()[0]:.1f}")
    return runs


def summarise_training(runs: list[dict], cfg: BenchConfig, shape: dict, lengths: np.ndarray,
                       peak: float) -> dict:
    """Per method: median step, throughput, epoch times; FLOP rate of full fine-tuning."""
    flops_per_step = training_flops(shape, lengths) / cfg.steps
    out = {}
    for name in [TRAINER, *METHODS]:
        mine = [r for r in runs if r["method"] == name]
        step = float(np.median([d for r in mine for d in r["step_durations_s"]]))
        row = {"step_s": step, "examples_per_s": cfg.batch_size / step,
               "step_s_per_repeat": [r["step_s"] for r in mine],
               "first_epoch_s": float(np.median([r["first_epoch_s"] for r in mine])),
               "one_off_s": float(np.median([r["one_off_s"] for r in mine])),
               "prefix_examples_computed": mine[0].get("prefix_examples_computed")}
        if name in TWO_EPOCHS:
            row["steady_epoch_s_per_repeat"] = [r["epoch_s"][1] for r in mine]
            row["steady_epoch_s"] = float(np.median(row["steady_epoch_s_per_repeat"]))
        if name in ("all", TRAINER):  # the same FLOPs: every weight trains
            row["flops_per_s"] = flops_per_step / step
            row["peak_fraction"] = row["flops_per_s"] / peak
        out[name] = row
    return out


# ---- evaluation throughput -----------------------------------------------------------------
@torch.inference_mode()
def padded_predict(model, data: Encoded, batch_size: int, max_length: int,
                   dev: torch.device) -> np.ndarray:
    """The baseline: examples in their given order, every batch padded to ``max_length``."""
    model.eval()
    preds = []
    for start in range(0, len(data), batch_size):
        rows = data.input_ids[start:start + batch_size]
        ids = np.full((len(rows), max_length), data.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), max_length), dtype=np.int64)
        for j, r in enumerate(rows):
            ids[j, :len(r)] = r
            mask[j, :len(r)] = 1
        logits = model(input_ids=torch.from_numpy(ids).to(dev),
                       attention_mask=torch.from_numpy(mask).to(dev)).logits
        preds.append(torch.softmax(logits.float(), -1).argmax(-1).cpu().numpy())
    return np.concatenate(preds)


def _timed(fn):
    _sync()
    start = time.perf_counter()
    value = fn()
    _sync()
    return time.perf_counter() - start, value


def time_eval(model, data: Encoded, max_length: int, cfg: BenchConfig, shape: dict) -> dict:
    """Length-sorted dynamic padding (``predict``) against fixed order padded to max_length."""
    dev = device()
    lengths = data.lengths
    sorted_tokens = sum(len(b) * lengths[b].max() for b in eval_batches(data, cfg.eval_batch_size))
    padded_predict(model, data.subset(np.arange(min(8, len(data)))), 8, max_length, dev)  # warm-up
    times = {"sorted": [], "padded": []}
    preds = {}
    for rep in range(cfg.repeats):
        order = ["sorted", "padded"] if rep % 2 == 0 else ["padded", "sorted"]
        for way in order:
            if way == "sorted":
                t, p = _timed(lambda: predict(model, data, cfg.eval_batch_size, dev)["pred"]
                              .to_numpy())
            else:
                t, p = _timed(lambda: padded_predict(model, data, cfg.eval_batch_size,
                                                     max_length, dev))
            times[way].append(t)
            preds[way] = p
    sorted_s, padded_s = float(np.median(times["sorted"])), float(np.median(times["padded"]))
    useful = forward_flops(shape, lengths)
    return {"examples": len(data), "max_length": max_length, "batch_size": cfg.eval_batch_size,
            "mean_length": float(lengths.mean()), "real_tokens": int(lengths.sum()),
            "sorted_tokens_processed": int(sorted_tokens),
            "padded_tokens_processed": int(len(data) * max_length),
            "sorted_s": sorted_s, "padded_s": padded_s, "sorted_s_all": times["sorted"],
            "padded_s_all": times["padded"],
            "sorted_examples_per_s": len(data) / sorted_s,
            "padded_examples_per_s": len(data) / padded_s, "speedup": padded_s / sorted_s,
            "sorted_useful_flops_per_s": useful / sorted_s,
            "padded_useful_flops_per_s": useful / padded_s,
            "same_predictions": float((preds["sorted"] == preds["padded"]).mean())}


# ---- the degradation curve -----------------------------------------------------------------
@contextmanager
def count_forward(model):
    """Count the examples (and padded tokens) every call of ``model`` runs."""
    counts = {"calls": 0, "examples": 0, "tokens": 0}

    def hook(_module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        counts["calls"] += 1
        counts["examples"] += int(ids.shape[0])
        counts["tokens"] += int(ids.numel())

    handle = model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield counts
    finally:
        handle.remove()


def _macro_f1(frame: pd.DataFrame) -> pd.Series:
    return frame[frame["metric"] == "macro_f1"].set_index("delta")["value"]


def curve_cost(model, cfg: BenchConfig, data_root) -> dict:
    """Forward passes for an 11-point curve: two per-corpus evaluations vs one per delta."""
    from helpers.study import open_study

    with tempfile.TemporaryDirectory() as tmp:   # nothing is stored; the study only samples
        study = open_study(cfg.experiment, PROFILE, data_root, tmp, progress=False)
    dev, n, e = device(), cfg.n_curve, study.experiment
    deltas = list(study.profile.curve_deltas)
    a_test, b_test = study.pools["test"]
    per_corpus = study.encoded(pd.concat(
        [_sample(c.frame, n, cfg.seed, f"{c.name} test examples", "n_curve")
         for c in (a_test, b_test)], ignore_index=True))
    mixtures = [study.encoded(study.mixture("test", d, cfg.seed, n)) for d in deltas]

    with count_forward(model) as ours:
        t_ours, curve = _timed(lambda: expected_curve(
            predict(model, per_corpus, cfg.eval_batch_size, dev), e.source, e.target, deltas,
            study.label_names))

    def naive_curve():
        return [bootstrap(predict(model, m, cfg.eval_batch_size, dev), study.label_names,
                          n_boot=1).assign(delta=d) for d, m in zip(deltas, mixtures)]

    with count_forward(model) as naive:
        t_naive, sampled = _timed(naive_curve)
    gap = (_macro_f1(curve) - _macro_f1(pd.concat(sampled))).abs()
    quick_n = study.size("test")
    quick_per_corpus = len(a_test.frame) + len(b_test.frame)
    return {"experiment": e.name, "deltas": deltas, "evaluation_size": n,
            "ours": {**ours, "seconds": t_ours, "evaluations": ours["examples"] / n},
            "naive": {**naive, "seconds": t_naive, "evaluations": naive["examples"] / n},
            "ratio_naive_to_ours": naive["examples"] / ours["examples"],
            "mean_abs_macro_f1_gap": float(gap.mean()),
            "quick_profile": {"test_mixture_size": quick_n,
                              "per_corpus_examples": quick_per_corpus,
                              "evaluations": quick_per_corpus / quick_n,
                              "naive_evaluations": float(len(deltas))}}


# ---- the quick-profile experiment ----------------------------------------------------------
def time_quick_experiment(experiment: str, data_root, log: Callable[[str], None] = print
                          ) -> dict:
    """Wall time of one experiment under the quick profile: notebooks 01-04, fresh reports."""
    from helpers.report import run_report

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        try:
            run_report(PROFILE, [experiment], data_dir=data_root, reports_dir=Path(tmp) / "r",
                       figures_dir=Path(tmp) / "f", analysis=True)
            failed = False
        except SystemExit:    # run_report exits 1 when a notebook failed; still timed
            failed = True
        seconds = time.perf_counter() - start
    log(f"  quick experiment {experiment}: {seconds / 60:.1f} min" + (" (FAILED)" * failed))
    return {"experiment": experiment, "profile": PROFILE, "seconds": seconds,
            "minutes": seconds / 60, "failed": failed}


# ---- targets -------------------------------------------------------------------------------
def target(name: str, measured: float | None, limit: float, at_most: bool = True,
           unit: str = "x", note: str = "", per_repeat=None) -> dict:
    """One target row: met, and the margin (positive: room to spare; negative: missed by)."""
    row = {"name": name, "measured": None, "target": limit, "at_most": at_most, "unit": unit,
           "met": None, "margin": None, "relative_margin": None, "note": note,
           "per_repeat": None if per_repeat is None else [float(x) for x in per_repeat]}
    if measured is None:
        return row
    margin = (limit - measured) if at_most else (measured - limit)
    return {**row, "measured": float(measured), "met": bool(margin >= 0),
            "margin": float(margin), "relative_margin": float(margin / limit)}


def _ratios(numerator: list[float], denominator: list[float]) -> list[float]:
    """Ratio within each repeat (runs of one repeat were made back to back)."""
    return [a / b for a, b in zip(numerator, denominator)]


def targets(training: dict, curve: dict, quick: dict | None) -> list[dict]:
    """The issue's targets, each as a ratio of medians measured in this run."""
    t = training
    steps = {k: v["step_s_per_repeat"] for k, v in t.items()}
    last2, full = t["last2"], t["all"]
    return [
        target("CBV weight-space step / full fine-tuning step",
               t["cbv_weight"]["step_s"] / full["step_s"], 1.15,
               per_repeat=_ratios(steps["cbv_weight"], steps["all"])),
        target("CBV output-space step / full fine-tuning step",
               t["cbv_output"]["step_s"] / full["step_s"], 2.1,
               per_repeat=_ratios(steps["cbv_output"], steps["all"])),
        target("full fine-tuning throughput / Trainer throughput",
               full["examples_per_s"] / t[TRAINER]["examples_per_s"], 0.95, at_most=False,
               per_repeat=_ratios(steps[TRAINER], steps["all"])),
        target("last-two epoch / full fine-tuning epoch (steady state, prefix cached)",
               last2["steady_epoch_s"] / full["steady_epoch_s"], 0.4,
               note=f"first epoch incl. computing the prefix: "
                    f"{last2['first_epoch_s'] / full['first_epoch_s']:.2f}x",
               per_repeat=_ratios(last2["steady_epoch_s_per_repeat"],
                                  full["steady_epoch_s_per_repeat"])),
        target("11-point degradation curve cost", curve["ours"]["evaluations"], 2.0,
               unit=" evaluations", note=f"naive: {curve['naive']['evaluations']:g} evaluations"),
        target("one quick-profile experiment (four notebooks)",
               None if quick is None else quick["minutes"], 15.0, unit=" min",
               note="not run (--skip-experiment)" if quick is None else
               ("a notebook FAILED" if quick["failed"] else quick["experiment"])),
    ]


# ---- the whole benchmark -------------------------------------------------------------------
def run_bench(cfg: BenchConfig = BenchConfig(), data_root=None, quick_experiment: bool = False,
              log: Callable[[str], None] = print) -> dict:
    """Run every measurement and return one dict of numbers, machine, and target rows.

    ``quick_experiment`` also times one quick-profile experiment (about 15 minutes on 2 cores).
    """
    root = resolve_data_root(data_root)
    if not root.is_dir():
        raise UserError(f"data root {root} does not exist; pass --data-dir (or set "
                        "$CBV_DATA_DIR) to the folder holding the corpora, or fetch them with "
                        "`python -m helpers download`")
    load_experiment(cfg.experiment, load_profile(PROFILE))   # a bad name fails before any work
    threads = torch.get_num_threads()
    try:
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        return _measure(cfg, root, quick_experiment, log)
    finally:
        torch.set_num_threads(threads)   # the setting is process-wide: leave it as found


def _measure(cfg: BenchConfig, root: Path, quick_experiment: bool,
             log: Callable[[str], None]) -> dict:
    start, info = time.perf_counter(), machine()
    log(f"bench: {cfg.model} on {info['device']}, {info['cpus_usable']} cores, "
        f"{info['torch_threads']} torch threads, load average {info['load_average'][0]:.2f}")
    tokenizer = load_tokenizer(cfg.model)
    data = load_data(cfg, root, tokenizer)
    source = load_classifier(cfg.model, data.label_names, seed=cfg.seed)
    shape = flop_model(source)
    peak = matmul_peak(cfg.matmul_size)
    log(f"  matmul peak {peak['flops_per_s'] / 1e9:.1f} GFLOP/s ({peak['dtype']}, n={peak['n']})")

    runs = training_runs(source, data, cfg, tokenizer, log)
    training = summarise_training(runs, cfg, shape, data.train.lengths, peak["flops_per_s"])

    model = copy.deepcopy(source).to(device()).eval()
    evaluation = {"tweets": time_eval(model, data.tweets, cfg.tweet_length, cfg, shape),
                  "reviews": time_eval(model, data.reviews, cfg.review_length, cfg, shape)}
    log("  evaluation speed-up: " + ", ".join(f"{k} {v['speedup']:.2f}x"
                                                for k, v in evaluation.items()))
    curve = curve_cost(model, cfg, root)
    log(f"  degradation curve: {curve['ours']['evaluations']:g} evaluations "
        f"(naive {curve['naive']['evaluations']:g})")
    quick = time_quick_experiment(cfg.experiment, root, log) if quick_experiment else None

    info["load_average_end"] = list(os.getloadavg())
    return {"config": cfg.to_dict(), "machine": info, "seconds": time.perf_counter() - start,
            "matmul_peak": peak, "flop_model": {**shape, "training_per_example":
                                                "6*N*T + 12*L*d*T^2 (T real tokens)"},
            "training": {"data": {"corpus": REVIEWS[0], "examples": len(data.train),
                                  "max_length": cfg.review_length,
                                  "mean_length": float(data.train.lengths.mean()),
                                  "batch_size": cfg.batch_size, "steps_per_epoch": cfg.steps,
                                  "validation_examples": len(data.val)},
                         "methods": training, "runs": runs},
            "evaluation": evaluation, "degradation_curve": curve, "quick_experiment": quick,
            "targets": targets(training, curve, quick)}


# ---- output --------------------------------------------------------------------------------
def _verdict(row: dict) -> str:
    if row["met"] is None:
        return "NOT RUN"
    limit = row["target"]
    word = "under" if row["at_most"] else "over"
    if row["met"]:
        return f"PASS ({abs(row['margin']):.3g}{row['unit']} {word})"
    return (f"MISS by {abs(row['margin']):.3g}{row['unit']} "
            f"({abs(row['margin']) / limit:.0%} of the target)")


def _fmt(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:.3g}{unit}"


def to_markdown(result: dict) -> str:
    """The targets (PASS/MISS and by how much), then the raw numbers, as Markdown."""
    m, cfg, tr = result["machine"], result["config"], result["training"]
    load, load_end = m["load_average"], m["load_average_end"]
    busy = load[0] > m["cpus_usable"] or load_end[0] > m["cpus_usable"]
    lines = [
        "# Performance benchmark", "",
        f"`python -m helpers bench`, {m['date']}, commit {m['git_commit']}: model "
        f"`{cfg['model']}` on {m['device']} ({m['cpus_usable']} cores usable of "
        f"{m['cpu_count']}, {m['torch_threads']} torch threads), torch {m['torch']}, "
        f"transformers {m['transformers']}, accelerate {m['accelerate']}.", "",
        f"Load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in load)} at the start, "
        f"{', '.join(f'{x:.2f}' for x in load_end)} at the end."
        + (" **The machine was busy with other work**: absolute rates are pessimistic and "
           "noisy; the ratios below come from runs made side by side, in alternating order. "
           "Multi-threaded torch suffers most when cores are shared (`--threads 1` avoids "
           "oversubscribing them)." if busy else ""), "",
        "## Targets", "",
        "| target | measured | target | result | note |", "|---|---|---|---|---|"]
    for row in result["targets"]:
        bound = ("<= " if row["at_most"] else ">= ") + _fmt(row["target"], row["unit"])
        note = "; ".join(filter(None, [row["note"], row["per_repeat"] and (
            "per repeat: " + ", ".join(f"{x:.2f}" for x in row["per_repeat"]))]))
        lines.append(f"| {row['name']} | {_fmt(row['measured'], row['unit'])} | {bound} | "
                     f"{_verdict(row)} | {note} |")

    d = tr["data"]
    lines += [
        "", "## Training", "",
        f"{d['examples']} real `{d['corpus']}` reviews (mean {d['mean_length']:.0f} tokens, "
        f"max_length {d['max_length']}), batch {d['batch_size']}, {d['steps_per_epoch']} steps "
        f"per epoch, {cfg['repeats']} runs per method in alternating order. Step: median gap "
        "between optimiser updates within an epoch (validation excluded). First epoch: from "
        "the call to the end of epoch one, with every one-off cost (model copies, frozen-prefix "
        "features from a cold cache, optimiser); one-off: that minus steps x its median step. "
        "Steady epoch: steps x median step of epoch two.",
        "", "| method | step (s) | examples/s | x full FT step | first epoch (s) "
            "| steady epoch (s) | one-off (s) | prefix examples computed |",
        "|---|---|---|---|---|---|---|---|"]
    full = tr["methods"]["all"]["step_s"]
    for name, row in tr["methods"].items():
        computed = row["prefix_examples_computed"]
        lines.append(f"| {name} | {row['step_s']:.3f} | {row['examples_per_s']:.1f} | "
                     f"{row['step_s'] / full:.2f} | {row['first_epoch_s']:.1f} | "
                     f"{_fmt(row.get('steady_epoch_s'), '')} | {row['one_off_s']:.2f} | "
                     f"{'-' if computed is None else computed} |")
    peak, fm = result["matmul_peak"], result["flop_model"]
    trainer_optim = next((r["optimizer"] for r in tr["runs"] if r["method"] == TRAINER), "?")
    lines += [
        "", f"`trainer` is transformers' Trainer with default TrainingArguments (optimizer "
            f"`{trainer_optim}`); only output_dir, batch size, epochs, seed and "
            "saving/logging/progress were set.", "",
        "## Achieved FLOP rate", "",
        f"Matmul peak: {peak['flops_per_s'] / 1e9:.1f} GFLOP/s (best of {peak['repeats']} "
        f"{peak['n']}x{peak['n']} {peak['dtype']} matmuls). Training FLOPs per example: "
        f"{fm['training_per_example']}, N = {fm['non_embedding_params']:,} parameters outside "
        f"the embeddings, L = {fm['layers']}, d = {fm['hidden']}.", "",
        "| run | GFLOP/s | share of matmul peak |", "|---|---|---|"]
    for name in ("all", TRAINER):
        row = tr["methods"][name]
        lines.append(f"| {name} | {row['flops_per_s'] / 1e9:.1f} | {row['peak_fraction']:.0%} |")

    lines += ["", "## Evaluation throughput", "",
              "`predict` (length-sorted, each batch padded to its longest example) against the "
              "same examples in their given order padded to max_length.", "",
              "| data | examples | mean / max length | sorted (ex/s) | padded (ex/s) | speed-up "
              "| tokens processed sorted / padded | same predictions |",
              "|---|---|---|---|---|---|---|---|"]
    for name, row in result["evaluation"].items():
        lines.append(f"| {name} | {row['examples']} | {row['mean_length']:.0f} / "
                     f"{row['max_length']} | {row['sorted_examples_per_s']:.1f} | "
                     f"{row['padded_examples_per_s']:.1f} | {row['speedup']:.2f}x | "
                     f"{row['sorted_tokens_processed']:,} / {row['padded_tokens_processed']:,} | "
                     f"{row['same_predictions']:.1%} |")

    c = result["degradation_curve"]
    q = c["quick_profile"]
    lines += ["", "## Degradation curve cost", "",
              f"{len(c['deltas'])}-point curve on `{c['experiment']}`, test sets of "
              f"{c['evaluation_size']} examples, examples counted by a forward hook.", "",
              "| way | examples run | evaluations | seconds |", "|---|---|---|---|",
              f"| per-corpus predictions, every delta derived | {c['ours']['examples']} | "
              f"{c['ours']['evaluations']:g} | {c['ours']['seconds']:.1f} |",
              f"| a sampled mixture evaluated per delta | {c['naive']['examples']} | "
              f"{c['naive']['evaluations']:g} | {c['naive']['seconds']:.1f} |", "",
              f"Mean |macro-F1 gap| between the derived (expected) curve and the sampled one: "
              f"{c['mean_abs_macro_f1_gap']:.3f} (sampling noise). In the quick profile the two "
              f"whole per-corpus test splits hold {q['per_corpus_examples']} examples, "
              f"{q['evaluations']:.2f} evaluations of its {q['test_mixture_size']}-example test "
              f"mixture, against {q['naive_evaluations']:g} the naive way."]

    quick = result["quick_experiment"]
    lines += ["", "## Quick-profile experiment", "",
              "Not run (`--skip-experiment`)." if quick is None else
              f"`{quick['experiment']}`, notebooks 01-04: {quick['minutes']:.1f} min"
              + (" (a notebook failed)" if quick["failed"] else "") + "."]
    lines += ["", "## Notes", "",
              "- Frozen layers run without dropout (eval mode) in every method, cached or not, "
              "so cached prefix features are exactly the recomputed ones; the prefix is "
              "computed once per data set and reused across epochs, methods and deltas.",
              "- `all` (full fine-tuning) also trains the embeddings, as the Trainer does; CBV "
              "keeps them frozen at the source, so a CBV step skips their gradient and update.",
              "- On GPUs our engine trains under bf16 autocast; a default Trainer trains in "
              "float32, so the Trainer ratio there also measures that choice.",
              f"- Whole benchmark: {result['seconds'] / 60:.1f} min.", ""]
    return "\n".join(lines)


def write(result: dict, folders) -> list[Path]:
    """Write bench.json and bench.md into each folder (atomically); returns the paths."""
    written, text = [], to_markdown(result)
    for folder in dict.fromkeys(Path(f).resolve() for f in folders):
        write_json(folder / "bench.json", result)
        atomic_write(folder / "bench.md", lambda t: t.write_text(text, encoding="utf-8"))
        written += [folder / "bench.json", folder / "bench.md"]
    return written


def default_folder() -> Path:
    """reports/bench (or $CBV_REPORTS_DIR/bench): where every run leaves its results."""
    return reports_root() / "bench"
