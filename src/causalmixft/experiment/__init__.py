"""Fine-tuning runs: one run's pools, fine-tuning and metrics.json (`runs`), and checks of a run's files (`run_files`)."""
