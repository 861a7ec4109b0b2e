"""Data: corpus sources and downloads, file formats, cleaning, corpora, mixtures, encoding."""
