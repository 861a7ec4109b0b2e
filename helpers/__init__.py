"""Thin helpers behind the CBV fine-tuning report series (see README.md)."""
