"""Training: the engine, its plans, the fitting strategies, the prefix cache and checkpoints."""
