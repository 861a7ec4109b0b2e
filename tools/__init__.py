"""Developer tools kept outside the research package: the benchmark and the README writer."""
