"""Performance benchmark: ``python -m helpers bench`` measures the engine against its targets.

What is measured, all in one process so that every ratio compares runs made side by side:

* Training step time and throughput of full fine-tuning (``all``), ``first2``, ``last2``,
  ``head``, CBV in weight space and in output space, each fitted through the real path
  (``strategies.adapt``) on real Amazon reviews, and of the same model, batch and sequence length
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
  run without dropout in this project (the training engine puts them in eval mode, cached or not).
  The price of that choice is that frozen layers no longer inject dropout noise into the
  trainable ones; it buys bit-identical cached and recomputed features.
* Achieved FLOP rate of full fine-tuning against the machine's measured matrix-multiply peak
  (the best of several square matmuls: float32 on CPUs, bfloat16 on GPUs, the precision the
  engine trains in). Training FLOPs per example of T real tokens are
  ``6 * N * T + 12 * L * d * T**2``: N parameters outside the embeddings (a lookup costs no
  multiply), and attention scores and mixing (``4 * d * T**2`` per layer forward), times 3 for
  forward plus backward. Padding is not counted, so the rate is useful work.
* Evaluation throughput of ``predictions.predict`` (length-sorted batches padded to their own
  longest example) against the same examples in their given order padded to ``max_length``,
  on real tweets (64 tokens) and real reviews (128 tokens), with the share of identical
  predictions as a check that both paths compute the same thing.
* The cost of an 11-point degradation curve, counted in examples run through the model (a
  forward hook counts them): the project's way predicts two per-corpus test sets once and
  derives every delta from them (``metrics.expected_curve``); the naive way evaluates a
  sampled test mixture per delta. One "evaluation" is one test set of the benchmark's size.
* Optionally, the wall time of one quick-profile experiment: all four notebooks through
  ``runner.run_report`` into a temporary folder.

How to read it: ``bench.md`` lists every target with PASS or MISS and the margin, then the raw
numbers; ``bench.json`` holds every measured number, each run's step times, and the machine
(cores, torch threads, load average before and after). A loaded machine (load average above
the core count) slows everything, and a contended CPU hurts multi-threaded matmuls most, so
compare absolute rates only between runs on the same quiet machine; ratios hold up better.

The benchmark lives outside ``helpers`` so that the research package never imports it: ``config``
(sizes and names), ``machine`` (device, cores, matmul peak), ``data``, ``flops``, ``clock`` (step
timestamps), ``training`` and ``evaluation`` (the measurements), ``targets``, ``markdown`` and
``run`` (the whole benchmark, its files and the command line's entry).
"""
