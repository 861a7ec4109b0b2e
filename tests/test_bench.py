"""The benchmark on a tiny model and the fixture corpora: accounting, output, target rows."""

import json

import numpy as np
import pandas as pd
import pytest

from helpers.__main__ import build_parser
from helpers.commands import _bench
from helpers.data.encoding import encode
from helpers.errors import UserError
from helpers.evaluation.predictions import predict
from helpers.models.loading import load_classifier, load_tokenizer
from tools.bench.clock import summarise_steps
from tools.bench.config import BenchConfig
from tools.bench.evaluation import count_forward
from tools.bench.flops import flop_model, forward_flops, training_flops
from tools.bench.run import main, run_bench, write
from tools.bench.targets import target

# Smoke sizes: a 4-layer tiny BERT (so last2 has a frozen prefix to cache), 4 steps per epoch,
# one thread (a shared test machine must not be oversubscribed).
SMOKE = BenchConfig(
    model="tiny-bert-4",
    steps=4,
    repeats=1,
    n_eval_reviews=48,
    n_eval_tweets=96,
    eval_batch_size=32,
    n_curve=16,
    matmul_size=256,
    threads=1,
    curve_profile="smoke",  # the fixture corpora's pools are smaller than the quick profile's
)
TARGETS = [
    "CBV weight-space step / full fine-tuning step",
    "CBV output-space step / full fine-tuning step",
    "full fine-tuning throughput / Trainer throughput",
    "last-two epoch / full fine-tuning epoch (steady state, prefix cached)",
    "11-point degradation curve cost",
    "one quick-profile experiment (four notebooks)",
]


@pytest.fixture(scope="module")
def result(fixture_data):
    return run_bench(SMOKE, fixture_data, log=lambda line: None)


@pytest.mark.parametrize(
    "start, stamps, steps, epochs, expected",
    [
        # two epochs of 1 s steps; the 5 s validation between them is not a step
        (
            0.0,
            [1, 2, 3, 9, 10, 11],
            3,
            2,
            dict(step_s=1.0, epoch_s=[3.0, 3.0], first_epoch_s=3.0, one_off_s=0.0, steps_timed=4),
        ),
        # 2 s of setup before the first step counts in the first epoch only
        (
            0.0,
            [3, 4, 5],
            3,
            1,
            dict(step_s=1.0, epoch_s=[3.0], first_epoch_s=5.0, one_off_s=2.0, steps_timed=2),
        ),
        # the median step ignores one slow outlier
        (
            10.0,
            [11, 12, 13, 23, 24],
            5,
            1,
            dict(step_s=1.0, epoch_s=[5.0], first_epoch_s=14.0, one_off_s=9.0, steps_timed=4),
        ),
    ],
)
def test_step_summary(start, stamps, steps, epochs, expected):
    out = summarise_steps(start, stamps, steps, epochs)
    for key, value in expected.items():
        assert out[key] == pytest.approx(value), key


def test_step_summary_refuses_a_wrong_step_count():
    with pytest.raises(RuntimeError, match="expected 6 optimiser steps, saw 5"):
        summarise_steps(0.0, [1, 2, 3, 4, 5], 3, 2)


@pytest.mark.parametrize(
    "measured, limit, at_most, met, margin",
    [
        (1.0, 1.15, True, True, 0.15),
        (2.5, 2.1, True, False, -0.4),
        (1.0, 0.95, False, True, 0.05),
        (0.9, 0.95, False, False, -0.05),
        (2.0, 2.0, True, True, 0.0),  # exactly at the limit passes
        (None, 15.0, True, None, None),  # not measured: neither met nor missed
    ],
)
def test_target_rows(measured, limit, at_most, met, margin):
    row = target("t", measured, limit, at_most)
    assert row["met"] is met
    assert row["margin"] == (None if margin is None else pytest.approx(margin))


def test_flop_count_by_hand():
    model = load_classifier("tiny-bert-2")
    shape = flop_model(model)
    embeddings = sum(p.numel() for p in model.bert.embeddings.parameters())
    assert shape == {
        "non_embedding_params": sum(p.numel() for p in model.parameters()) - embeddings,
        "layers": 2,
        "hidden": 32,
    }
    n = shape["non_embedding_params"]
    assert forward_flops(shape, np.array([10, 20])) == 2 * n * 30 + 4 * 2 * 32 * (100 + 400)
    assert training_flops(shape, np.array([10])) == 3 * forward_flops(shape, np.array([10]))


def test_forward_counter_counts_every_example():
    model = load_classifier("tiny-bert-2")
    frame = pd.DataFrame(
        {
            "id": [str(i) for i in range(10)],
            "text": ["a b c"] * 10,
            "label": [0, 1] * 5,
            "source": "toy",
        }
    )
    data = encode(frame, load_tokenizer("tiny-bert-2"), 16)
    with count_forward(model) as counts:
        predict(model, data, batch_size=4)
    assert (counts["calls"], counts["examples"]) == (3, 10)


def test_result_is_plain_json_with_every_section(result):
    again = json.loads(json.dumps(result))
    assert set(again) >= {
        "config",
        "machine",
        "matmul_peak",
        "flop_model",
        "training",
        "evaluation",
        "degradation_curve",
        "quick_experiment",
        "targets",
    }
    assert set(again["machine"]) >= {
        "cpu_count",
        "torch_threads",
        "load_average",
        "load_average_end",
        "torch",
        "transformers",
        "date",
    }
    assert again["machine"]["torch_threads"] == 1
    methods = again["training"]["methods"]
    assert set(methods) == {"trainer", "all", "first2", "last2", "head", "cbv_weight", "cbv_output"}
    assert all(m["step_s"] > 0 and m["examples_per_s"] > 0 for m in methods.values())
    assert {"tweets", "reviews"} == set(again["evaluation"])
    assert all(
        e["speedup"] > 0 and e["same_predictions"] >= 0.9 for e in again["evaluation"].values()
    )


def test_every_target_has_a_row(result):
    rows = {row["name"]: row for row in result["targets"]}
    assert list(rows) == TARGETS
    for row in result["targets"][:5]:
        assert isinstance(row["met"], bool) and row["measured"] > 0
    assert rows[TARGETS[-1]]["met"] is None  # the quick experiment was not run


def test_curve_costs_exactly_two_evaluations(result):
    curve = result["degradation_curve"]
    assert curve["ours"]["examples"] == 2 * SMOKE.n_curve
    assert curve["ours"]["evaluations"] == 2.0
    assert curve["naive"]["evaluations"] == 11.0
    assert result["targets"][4]["measured"] == 2.0 and result["targets"][4]["met"]


def test_prefix_is_computed_once_for_both_epochs(result):
    last2 = result["training"]["methods"]["last2"]
    train = result["training"]["data"]
    assert last2["prefix_examples_computed"] == train["examples"] + train["validation_examples"]
    assert result["training"]["methods"]["all"]["prefix_examples_computed"] == 0


def test_written_files(result, tmp_path):
    paths = write(result, [tmp_path / "a", tmp_path / "b", tmp_path / "a"])
    assert sorted(p.relative_to(tmp_path).as_posix() for p in paths) == [
        "a/bench.json",
        "a/bench.md",
        "b/bench.json",
        "b/bench.md",
    ]
    assert json.loads((tmp_path / "b" / "bench.json").read_text())["targets"]
    table = (tmp_path / "a" / "bench.md").read_text()
    for name in TARGETS:
        line = next(row for row in table.splitlines() if row.startswith(f"| {name} |"))
        assert any(word in line for word in ("PASS", "MISS by", "NOT RUN"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(steps=2), "at least 3 steps"),
        (dict(repeats=0), "repeats must be at least 1"),
        (dict(threads=0), "threads must be at least 1"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(UserError, match=message):
        BenchConfig(**kwargs)


def test_bad_names_fail_before_any_work(fixture_data, tmp_path):
    with pytest.raises(UserError, match="unknown experiment 'books_to_mars'"):
        run_bench(BenchConfig(experiment="books_to_mars"), fixture_data)
    with pytest.raises(UserError, match="does not exist"):
        run_bench(SMOKE, tmp_path / "missing")


def test_command_line_options():
    args = build_parser().parse_args(
        ["bench", "--skip-experiment", "--steps", "4", "--out", "x", "--data-dir", "d"]
    )
    assert args.func is _bench
    assert (args.steps, args.out, args.data_dir, args.quick_experiment, args.repeats) == (
        4,
        "x",
        "d",
        "books_to_dvd",
        None,
    )
    assert args.skip_experiment


def test_main_maps_the_options_and_writes_every_folder(result, monkeypatch, tmp_path, capsys):
    seen = {}

    def fake_run_bench(cfg, data_root, quick_experiment, scaleout):
        seen.update(
            cfg=cfg, data_root=data_root, quick_experiment=quick_experiment, scaleout=scaleout
        )
        return result

    monkeypatch.setattr("tools.bench.run.run_bench", fake_run_bench)
    monkeypatch.setenv("CBV_REPORTS_DIR", str(tmp_path / "reports"))
    args = build_parser().parse_args(
        [
            "bench",
            "--skip-experiment",
            "--skip-scaleout",
            "--steps",
            "4",
            "--threads",
            "1",
            "--out",
            str(tmp_path / "out"),
            "--data-dir",
            "d",
        ]
    )
    assert main(args) is result
    assert seen == {
        "cfg": BenchConfig(steps=4, threads=1),
        "data_root": "d",
        "quick_experiment": False,
        "scaleout": False,
    }
    assert (tmp_path / "reports" / "bench" / "bench.md").is_file()
    assert (tmp_path / "out" / "bench.json").is_file()
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in printed[-len(TARGETS) :]] == [
        {True: "PASS", False: "MISS", None: "NOT"}[row["met"]] for row in result["targets"]
    ]


def test_the_plans_flop_count_holds_each_tuned_methods_trials_once(fixture_data, tmp_path):
    from helpers.config.experiments import load_profile
    from helpers.config.methods import get_method
    from helpers.study.adaptation import profile_methods
    from helpers.study.experiment import open_study
    from tools.bench.throughput import planned_flops

    plan = planned_flops("smoke", fixture_data, tmp_path, ["books_to_dvd"])
    prof = load_profile("smoke")
    study = open_study("books_to_dvd", "smoke", fixture_data, tmp_path, False)
    tuned = [m for m in profile_methods(study) if get_method(m).tuned_settings()]
    parts = plan.groupby("part").size()
    # a method's trials are its budget, however many rates it tunes (CBV: two)
    assert parts["tuning"] == len(tuned) * prof.tune.trials * prof.tune.seeds
    assert parts["source model training"] == len(prof.seeds)  # one model per seed
    assert (plan["flops"][plan["part"] != "source"] > 0).all()
