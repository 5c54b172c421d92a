"""Aggregate stage: every run's metrics -> tables, plots and report/summary.md (docs/metrics.md)."""
