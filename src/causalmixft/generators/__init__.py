"""The generator kit: what every synthetic-data generator's workflow jobs share.

A generator (CausalMixFT in ``causalmixft``, built on :mod:`causalmixft.causal`; the baselines
and causal controls in :mod:`causalmixft.baselines`) is fitted on a fold's real train rows,
pickled, and sampled one size per job, all by the same steps. The kit holds CausalMixFT and
everything around the generators themselves:

- ``protocol``: the :class:`~causalmixft.generators.protocol.Generator` interface;
- ``registry``: every generator by name and module, what each needs from the workflow, building one;
- ``causalmixft``: the CausalMixFT generator (an SCM on the discovered DAG);
- ``job``: a job's (dataset, fold, seed), its stage seeds, and loading its split and pickles;
- ``draw``: nested, label-matched draws from any generator and the sampling settings;
- ``cast``: synthetic rows cast back to the schema;
- ``fidelity``: two-sample test, TSTR, marginal and correlation distances;
- ``sampling``: the one sampling step: the first n rows of a generator's nested draw, written
  with their fidelity report;
- ``steps``: the rule scripts' file-to-file steps (discover a DAG, fit a generator, sample).

Nothing is imported here, so a job that needs one module does not import the others.
"""
