"""Experiment stage: methods and runs (fine-tuning), then aggregation into tables, plots and a report."""
