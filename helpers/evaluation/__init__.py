"""Evaluation: metrics from confusion matrices (torch-free) and model predictions."""
