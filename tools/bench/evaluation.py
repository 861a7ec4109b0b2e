"""Evaluation throughput against fixed padding, and the forward passes a curve costs."""

from __future__ import annotations

import tempfile
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from helpers.data.encoding import Encoded, eval_batches, pad
from helpers.evaluation.metrics import bootstrap, expected_curve
from helpers.evaluation.predictions import predict
from helpers.study.experiment import open_study
from tools.bench.clock import timed
from tools.bench.config import BenchConfig
from tools.bench.data import sample
from tools.bench.flops import forward_flops
from tools.bench.machine import device


@torch.inference_mode()
def padded_predict(
    model, data: Encoded, batch_size: int, max_length: int, dev: torch.device
) -> np.ndarray:
    """The baseline: examples in their given order, every batch padded to ``max_length``."""
    model.eval()
    preds = []
    for start in range(0, len(data), batch_size):
        ids, mask = pad(data.input_ids[start : start + batch_size], value=data.pad_id)
        # pad() stops at the longest row; the baseline pays for every position up to max_length
        extra = (0, max_length - ids.shape[1])
        ids, mask = F.pad(ids, extra, value=data.pad_id), F.pad(mask, extra, value=0)
        logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits
        preds.append(torch.softmax(logits.float(), -1).argmax(-1).cpu().numpy())
    return np.concatenate(preds)


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
                t, p = timed(
                    lambda: predict(model, data, cfg.eval_batch_size, dev)["pred"].to_numpy()
                )
            else:
                t, p = timed(
                    lambda: padded_predict(model, data, cfg.eval_batch_size, max_length, dev)
                )
            times[way].append(t)
            preds[way] = p
    sorted_s, padded_s = float(np.median(times["sorted"])), float(np.median(times["padded"]))
    useful = forward_flops(shape, lengths)
    return {
        "examples": len(data),
        "max_length": max_length,
        "batch_size": cfg.eval_batch_size,
        "mean_length": float(lengths.mean()),
        "real_tokens": int(lengths.sum()),
        "sorted_tokens_processed": int(sorted_tokens),
        "padded_tokens_processed": int(len(data) * max_length),
        "sorted_s": sorted_s,
        "padded_s": padded_s,
        "sorted_s_all": times["sorted"],
        "padded_s_all": times["padded"],
        "sorted_examples_per_s": len(data) / sorted_s,
        "padded_examples_per_s": len(data) / padded_s,
        "speedup": padded_s / sorted_s,
        "sorted_useful_flops_per_s": useful / sorted_s,
        "padded_useful_flops_per_s": useful / padded_s,
        "same_predictions": float((preds["sorted"] == preds["padded"]).mean()),
    }


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
    """Macro-F1 by delta, from a frame of metric rows."""
    return frame[frame["metric"] == "macro_f1"].set_index("delta")["value"]


def curve_cost(model, cfg: BenchConfig, data_root) -> dict:
    """Forward passes for an 11-point curve: two per-corpus evaluations vs one per delta."""
    with tempfile.TemporaryDirectory() as tmp:  # nothing is stored; the study only samples
        study = open_study(cfg.experiment, cfg.curve_profile, data_root, tmp, progress=False)
    dev, n, e = device(), cfg.n_curve, study.experiment
    deltas = list(study.profile.curve_deltas)
    a_test, b_test = study.pools["test"]
    per_corpus = study.encoded(
        pd.concat(
            [
                sample(c.frame, n, cfg.seed, f"{c.name} test examples", "n_curve")
                for c in (a_test, b_test)
            ],
            ignore_index=True,
        )
    )
    mixtures = [study.encoded(study.mixture("test", d, cfg.seed, n)) for d in deltas]

    with count_forward(model) as ours:
        t_ours, curve = timed(
            lambda: expected_curve(
                predict(model, per_corpus, cfg.eval_batch_size, dev),
                e.source,
                e.target,
                deltas,
                study.label_names,
            )
        )

    def naive_curve():
        return [
            bootstrap(
                predict(model, m, cfg.eval_batch_size, dev), study.label_names, n_boot=1
            ).assign(delta=d)
            for d, m in zip(deltas, mixtures)
        ]

    with count_forward(model) as naive:
        t_naive, sampled = timed(naive_curve)
    gap = (_macro_f1(curve) - _macro_f1(pd.concat(sampled))).abs()
    quick_n = study.size("test")
    quick_per_corpus = len(a_test.frame) + len(b_test.frame)
    return {
        "experiment": e.name,
        "deltas": deltas,
        "evaluation_size": n,
        "ours": {**ours, "seconds": t_ours, "evaluations": ours["examples"] / n},
        "naive": {**naive, "seconds": t_naive, "evaluations": naive["examples"] / n},
        "ratio_naive_to_ours": naive["examples"] / ours["examples"],
        "mean_abs_macro_f1_gap": float(gap.mean()),
        "quick_profile": {
            "test_mixture_size": quick_n,
            "per_corpus_examples": quick_per_corpus,
            "evaluations": quick_per_corpus / quick_n,
            "naive_evaluations": float(len(deltas)),
        },
    }
