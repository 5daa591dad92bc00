"""Datasets: readers for the on-disk formats, the synthetic generator, the catalog and the
evaluation settings (vocabulary and label mapping for each zero-shot split)."""
