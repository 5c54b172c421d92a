"""Datasets: sources, preparation (typing, cleaning) and splits."""
