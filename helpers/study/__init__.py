"""The study: one experiment under one profile, and the store of its runs."""
