"""The benchmark's result as Markdown: the targets with PASS or MISS, then the raw numbers."""

from __future__ import annotations

from tools.bench.config import TRAINER


def to_markdown(result: dict) -> str:
    """The targets (PASS/MISS and by how much), then the raw numbers, as Markdown."""
    sections = (
        _header,
        _targets,
        _training,
        _flop_rate,
        _evaluation,
        _curve,
        _experiment,
        _scaleout,
        _notes,
    )
    return "\n".join(line for section in sections for line in section(result))


def _verdict(row: dict) -> str:
    """PASS or MISS with the margin, or NOT RUN."""
    if row["met"] is None:
        return "NOT RUN"
    limit = row["target"]
    word = "under" if row["at_most"] else "over"
    if row["met"]:
        return f"PASS ({abs(row['margin']):.3g}{row['unit']} {word})"
    return (
        f"MISS by {abs(row['margin']):.3g}{row['unit']} "
        f"({abs(row['margin']) / limit:.0%} of the target)"
    )


def _fmt(value: float | None, unit: str) -> str:
    """Three significant digits and the unit, or "-" when not measured."""
    return "-" if value is None else f"{value:.3g}{unit}"


def _header(result: dict) -> list[str]:
    """Title, machine and versions, and the load average with a warning when it was busy."""
    m, cfg = result["machine"], result["config"]
    load, load_end = m["load_average"], m["load_average_end"]
    busy = load[0] > m["cpus_usable"] or load_end[0] > m["cpus_usable"]
    return [
        "# Performance benchmark",
        "",
        f"`python -m helpers bench`, {m['date']}, commit {m['git_commit']}: model "
        f"`{cfg['model']}` on {m['device']} ({m['cpus_usable']} cores usable of "
        f"{m['cpu_count']}, {m['torch_threads']} torch threads), torch {m['torch']}, "
        f"transformers {m['transformers']}, accelerate {m['accelerate']}.",
        "",
        f"Load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in load)} at the start, "
        f"{', '.join(f'{x:.2f}' for x in load_end)} at the end."
        + (
            " **The machine was busy with other work**: absolute rates are pessimistic and "
            "noisy; the ratios below come from runs made side by side, in alternating order. "
            "Multi-threaded torch suffers most when cores are shared (`--threads 1` avoids "
            "oversubscribing them)."
            if busy
            else ""
        ),
    ]


def _targets(result: dict) -> list[str]:
    """One row per target: measured, bound, verdict, note and per-repeat ratios."""
    lines = [
        "",
        "## Targets",
        "",
        "| target | measured | target | result | note |",
        "|---|---|---|---|---|",
    ]
    for row in result["targets"]:
        bound = ("<= " if row["at_most"] else ">= ") + _fmt(row["target"], row["unit"])
        note = "; ".join(
            filter(
                None,
                [
                    row["note"],
                    row["per_repeat"]
                    and ("per repeat: " + ", ".join(f"{x:.2f}" for x in row["per_repeat"])),
                ],
            )
        )
        lines.append(
            f"| {row['name']} | {_fmt(row['measured'], row['unit'])} | {bound} | "
            f"{_verdict(row)} | {note} |"
        )
    return lines


def _training(result: dict) -> list[str]:
    """Step, throughput and epoch times of every method and the Trainer."""
    cfg, tr = result["config"], result["training"]
    d = tr["data"]
    lines = [
        "",
        "## Training",
        "",
        f"{d['examples']} real `{d['corpus']}` reviews (mean {d['mean_length']:.0f} tokens, "
        f"max_length {d['max_length']}), batch {d['batch_size']}, {d['steps_per_epoch']} steps "
        f"per epoch, {cfg['repeats']} runs per method in alternating order. Step: median gap "
        "between optimiser updates within an epoch (validation excluded). First epoch: from "
        "the call to the end of epoch one, with every one-off cost (model copies, frozen-prefix "
        "features from a cold cache, optimiser); one-off: that minus steps x its median step. "
        "Steady epoch: steps x median step of epoch two.",
        "",
        "| method | step (s) | examples/s | x full FT step | first epoch (s) "
        "| steady epoch (s) | one-off (s) | prefix examples computed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    full = tr["methods"]["all"]["step_s"]
    for name, row in tr["methods"].items():
        computed = row["prefix_examples_computed"]
        lines.append(
            f"| {name} | {row['step_s']:.3f} | {row['examples_per_s']:.1f} | "
            f"{row['step_s'] / full:.2f} | {row['first_epoch_s']:.1f} | "
            f"{_fmt(row.get('steady_epoch_s'), '')} | {row['one_off_s']:.2f} | "
            f"{'-' if computed is None else computed} |"
        )
    trainer_optim = next((r["optimizer"] for r in tr["runs"] if r["method"] == TRAINER), "?")
    return lines + [
        "",
        f"`trainer` is transformers' Trainer with default TrainingArguments (optimizer "
        f"`{trainer_optim}`); only output_dir, batch size, epochs, seed and "
        "saving/logging/progress were set.",
    ]


def _flop_rate(result: dict) -> list[str]:
    """Achieved FLOP rate of full fine-tuning and the Trainer against the matmul peak."""
    peak, fm, methods = result["matmul_peak"], result["flop_model"], result["training"]["methods"]
    lines = [
        "",
        "## Achieved FLOP rate",
        "",
        f"Matmul peak: {peak['flops_per_s'] / 1e9:.1f} GFLOP/s (best of {peak['repeats']} "
        f"{peak['n']}x{peak['n']} {peak['dtype']} matmuls). Training FLOPs per example: "
        f"{fm['training_per_example']}, N = {fm['non_embedding_params']:,} parameters outside "
        f"the embeddings, L = {fm['layers']}, d = {fm['hidden']}.",
        "",
        "| run | GFLOP/s | share of matmul peak |",
        "|---|---|---|",
    ]
    for name in ("all", TRAINER):
        row = methods[name]
        lines.append(f"| {name} | {row['flops_per_s'] / 1e9:.1f} | {row['peak_fraction']:.0%} |")
    return lines


def _evaluation(result: dict) -> list[str]:
    """Evaluation throughput, length-sorted against padded to max_length."""
    lines = [
        "",
        "## Evaluation throughput",
        "",
        "`predict` (length-sorted, each batch padded to its longest example) against the "
        "same examples in their given order padded to max_length.",
        "",
        "| data | examples | mean / max length | sorted (ex/s) | padded (ex/s) | speed-up "
        "| tokens processed sorted / padded | same predictions |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in result["evaluation"].items():
        lines.append(
            f"| {name} | {row['examples']} | {row['mean_length']:.0f} / "
            f"{row['max_length']} | {row['sorted_examples_per_s']:.1f} | "
            f"{row['padded_examples_per_s']:.1f} | {row['speedup']:.2f}x | "
            f"{row['sorted_tokens_processed']:,} / {row['padded_tokens_processed']:,} | "
            f"{row['same_predictions']:.1%} |"
        )
    return lines


def _curve(result: dict) -> list[str]:
    """Examples run for a degradation curve, our way and the naive way."""
    c = result["degradation_curve"]
    q = c["quick_profile"]
    return [
        "",
        "## Degradation curve cost",
        "",
        f"{len(c['deltas'])}-point curve on `{c['experiment']}`, test sets of "
        f"{c['evaluation_size']} examples, examples counted by a forward hook.",
        "",
        "| way | examples run | evaluations | seconds |",
        "|---|---|---|---|",
        f"| per-corpus predictions, every delta derived | {c['ours']['examples']} | "
        f"{c['ours']['evaluations']:g} | {c['ours']['seconds']:.1f} |",
        f"| a sampled mixture evaluated per delta | {c['naive']['examples']} | "
        f"{c['naive']['evaluations']:g} | {c['naive']['seconds']:.1f} |",
        "",
        f"Mean |macro-F1 gap| between the derived (expected) curve and the sampled one: "
        f"{c['mean_abs_macro_f1_gap']:.3f} (sampling noise). In the quick profile the two "
        f"whole per-corpus test splits hold {q['per_corpus_examples']} examples, "
        f"{q['evaluations']:.2f} evaluations of its {q['test_mixture_size']}-example test "
        f"mixture, against {q['naive_evaluations']:g} the naive way.",
    ]


def _experiment(result: dict) -> list[str]:
    """Wall time of the quick-profile experiment, or that it was not run."""
    quick = result["quick_experiment"]
    return [
        "",
        "## Quick-profile experiment",
        "",
        "Not run (`--skip-experiment`)."
        if quick is None
        else f"`{quick['experiment']}`, notebooks 01-04: {quick['minutes']:.1f} min"
        + (" (a notebook failed)" if quick["failed"] else "")
        + ".",
    ]


def _scaleout(result: dict) -> list[str]:
    """Wall time of one experiment's runs under each way of spending the cores."""
    s = result.get("scaleout")
    if not s:
        return []
    lines = [
        "",
        "## Scale-out",
        "",
        f"`python -m helpers run --profile {s['profile']} --experiments {s['experiment']}` on "
        "a fresh store per layout; whole command, start-up included.",
        "",
        "| layout | wall time (s) | runs stored | speed-up | worker time idle |",
        "|---|---|---|---|---|",
    ]
    for r in s["rows"]:
        failed = " (FAILED)" if r["failed"] else ""
        lines.append(
            f"| {r['layout']}{failed} | {r['seconds']:.1f} | {r['runs']} | {r['speedup']:.2f}x "
            f"| {r.get('idle_share', float('nan')):.0%} |"
        )
    return lines


def _notes(result: dict) -> list[str]:
    """What the numbers depend on, and how long the whole benchmark took."""
    return [
        "",
        "## Notes",
        "",
        "- Frozen layers run without dropout (eval mode) in every method, cached or not, "
        "so cached prefix features are exactly the recomputed ones; the prefix is "
        "computed once per data set and reused across epochs, methods and deltas.",
        "- `all` (full fine-tuning) also trains the embeddings, as the Trainer does; CBV "
        "keeps them frozen at the source, so a CBV step skips their gradient and update.",
        "- On GPUs our engine trains under bf16 autocast; a default Trainer trains in "
        "float32, so the Trainer ratio there also measures that choice.",
        f"- Whole benchmark: {result['seconds'] / 60:.1f} min.",
        "",
    ]
