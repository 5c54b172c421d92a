"""One error type for bad input, so every failure names the dataset, the stage and the problem."""


class StageError(RuntimeError):
    """A user-facing failure of one stage on one dataset.

    The message always reads ``[stage] dataset: problem`` so that a Snakemake log or a
    traceback shows at a glance what failed where.
    """

    def __init__(self, stage: str, dataset: str, problem: str):
        self.stage = stage
        self.dataset = dataset
        self.problem = problem
        super().__init__(f"[{stage}] {dataset}: {problem}")
