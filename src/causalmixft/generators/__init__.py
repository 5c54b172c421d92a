"""The generator kit: what every synthetic-data generator's workflow jobs share.

A generator (CausalMixFT in :mod:`causalmixft.causal`, the baselines and causal controls in
:mod:`causalmixft.baselines`) is fitted on a fold's real train rows, pickled, and sampled one
size per job. The kit holds everything around the generators themselves:

- ``protocol``: the :class:`~causalmixft.generators.protocol.Generator` interface;
- ``registry``: every generator by name, what each needs from the workflow, building one;
- ``job``: a job's (dataset, fold, seed), its stage seeds, and loading its split and pickles;
- ``sampling``: the one sampling step: the first n rows of a generator's nested draw, written
  with their fidelity report;
- ``steps``: the rule scripts' file-to-file steps (discover, fit, fit a generator, sample).

Nothing is imported here, so a job that needs one module does not import the others.
"""
