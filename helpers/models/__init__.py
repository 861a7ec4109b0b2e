"""Models: loading encoders, their layer groups, and the CBV wrapper."""
