"""Methods of the study: which rows a fine-tuning run trains on.

A method pairs a training pool with, optionally, a synthetic-data generator:

- ``none``: no fine-tuning; the pre-trained backbone predicts with the real train rows as context;
- ``real``: the real train rows only;
- ``real+synthetic``: the real train rows plus the first n rows of a generator's draw;
- ``synthetic``: the first n synthetic rows only.

A method may also *select on synthetic rows*: the step (and, in the report, the size) is then
chosen on the real validation rows plus ``synthetic.selection_rows`` further rows of the same
generator's draw, rows ``n..`` that the run never trains on; the real validation rows are still
recorded apart (``val``) beside the selection set (``select``). ``causalmixft_synthval`` tests the
mechanism behind the claim that SCM rows narrow the validation-test gap when validation is scarce.

Methods whose pool has no synthetic part do not depend on the synthetic size and run once per
(dataset, fold), at ``n0``; the others run at every size above 0.
"""

from __future__ import annotations

from dataclasses import dataclass

POOLS = ("none", "real", "real+synthetic", "synthetic")


@dataclass(frozen=True)
class Method:
    name: str
    pool: str
    generator: str | None = None
    selects_on_synthetic: bool = False  # the selection set adds unseen rows of the generator's draw

    def __post_init__(self):
        if self.pool not in POOLS:
            raise ValueError(f"method {self.name}: unknown pool {self.pool!r}; expected one of {POOLS}")
        if (self.generator is None) != (self.pool in ("none", "real")):
            raise ValueError(f"method {self.name}: pool {self.pool!r} and generator {self.generator!r} do not fit")
        if self.selects_on_synthetic and self.generator is None:
            raise ValueError(f"method {self.name}: selecting on synthetic rows needs a generator")

    @property
    def uses_real(self) -> bool:
        return self.pool in ("real", "real+synthetic")

    @property
    def size_dependent(self) -> bool:
        return self.generator is not None

    @property
    def finetunes(self) -> bool:
        return self.pool != "none"


BUILTIN_METHODS = {
    m.name: m
    for m in (
        Method("zeroshot", "none"),
        Method("finetune", "real"),
        Method("causalmixft", "real+synthetic", "causalmixft"),
        Method("scm_only", "synthetic", "causalmixft"),
        Method("causalmixft_synthval", "real+synthetic", "causalmixft", selects_on_synthetic=True),
        # augmentation baselines and causal controls (causalmixft.baselines, docs/baselines.md)
        Method("ctgan", "real+synthetic", "ctgan"),
        Method("ctgan_only", "synthetic", "ctgan"),
        Method("tabebm", "real+synthetic", "tabebm"),
        Method("smote", "real+synthetic", "smote"),
        Method("scm_randomdag", "real+synthetic", "scm_randomdag"),
        Method("scm_emptydag", "real+synthetic", "scm_emptydag"),
    )
}


def resolve_method(name: str, extra: dict | None = None) -> Method:
    """A built-in method, or one declared in the config as ``{pool, generator}``."""
    if extra and name in extra:
        spec = extra[name]
        return Method(name, spec["pool"], spec.get("generator"), bool(spec.get("selects_on_synthetic", False)))
    if name not in BUILTIN_METHODS:
        raise ValueError(f"unknown method {name!r}; built-in methods: {sorted(BUILTIN_METHODS)}")
    return BUILTIN_METHODS[name]
