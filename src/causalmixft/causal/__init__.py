"""The causal parts of CausalMixFT: discover a DAG, fit an SCM on it (the generator built on them,
and the sampling, casting and scoring every generator shares, are the kit's: :mod:`causalmixft.generators`).

Modules, one responsibility each:
- ``ci_data``: the numeric matrix the CI tests see; constant / duplicate / collinear columns;
- ``ci_tests``: the CI tests handed to causal-learn;
- ``discover``: PC + FCI runs (optionally bootstrapped) -> edge frequencies -> DAG;
- ``orient``: the deterministic frequencies-to-DAG procedure;
- ``scm``: dowhy.gcm mechanisms fitted on the DAG;
- ``checks``: the train-table checks the stages share;
- ``plot``: a picture of the DAG;
- ``simulate``: tables from known SCMs (tests, benchmarks);
- ``graph_scores``: scores of an estimated graph against a known DAG (bench, tests).
"""

import importlib

# Imported on first use (PEP 562): a discovery job should not pay for importing dowhy and
# scikit-learn's ensembles, which take seconds.
_EXPORTS = {
    "DiscoveryResult": "discover",
    "DiscoverySettings": "discover",
    "discover_dag": "discover",
    "QUALITIES": "scm",
    "FittedSCM": "scm",
    "fit_scm": "scm",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
