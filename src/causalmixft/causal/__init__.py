"""The causal stages: discover a DAG, fit an SCM on it, draw nested synthetic samples, score them.

Modules, one responsibility each:
- ``ci_data``: the numeric matrix the CI tests see; constant / duplicate / collinear columns;
- ``ci_tests``: the CI tests handed to causal-learn;
- ``discover``: PC + FCI runs (optionally bootstrapped) -> edge frequencies -> DAG;
- ``orient``: the deterministic frequencies-to-DAG procedure;
- ``scm``: dowhy.gcm mechanisms fitted on the DAG;
- ``generator``: the CausalMixFT generator (the interface every generator implements, the
  registry and the workflow's file-to-file steps are the kit's: :mod:`causalmixft.generators`);
- ``cast``: synthetic rows cast back to the schema;
- ``sample``: nested, label-matched samples from any generator;
- ``fidelity``: two-sample test, TSTR, marginal and correlation distances;
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
    "fidelity_report": "fidelity",
    "CausalMixFTGenerator": "generator",
    "SamplingOptions": "sample",
    "SyntheticDraw": "sample",
    "sample_synthetic": "sample",
    "QUALITIES": "scm",
    "FittedSCM": "scm",
    "fit_scm": "scm",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
