# The two commands: `make run` (the default workflow) and `make test`. Both create .venv with
# the pinned requirements on first use; the stamp file keeps later calls from reinstalling.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
SNAKEMAKE := $(BIN)/snakemake --workflow-profile workflow/profiles/default

.PHONY: run baselines dry-run tabarena-dry-run test test-slow lint install

# --keep-going: a failed job leaves the others running. A generator that cannot fit a (dataset,
# fold) fails its job and leaves a marker under results/failed/ (docs/baselines.md); the second
# call then builds the aggregate from what exists, with those cells listed in
# results/tables/missing.csv, and make still reports the failure.
run: $(STAMP)
	$(SNAKEMAKE) --cores $(CORES) --keep-going || { $(SNAKEMAKE) --cores $(CORES) aggregate; exit 1; }

# Every method, the augmentation baselines and causal controls included (config/baselines.yaml).
baselines: $(STAMP)
	$(SNAKEMAKE) --cores $(CORES) --configfile config/baselines.yaml --keep-going \
		|| { $(SNAKEMAKE) aggregate --cores $(CORES) --configfile config/baselines.yaml; exit 1; }

# The study (config/study.yaml over config.yaml; README "The study"): every shipped TabArena table
# and the TabMWP tasks, every method; hours on 2 cores. Interrupted, it resumes where it stopped.
# make study-pilot: the same run on fold 0 only (config/study-pilot.yaml), the run
# behind docs/results/study-pilot/.
STUDY_CONFIGS := config/study.yaml
study-pilot: STUDY_CONFIGS += config/study-pilot.yaml
study-pilot: CHECKPOINTS = study-checkpoints/study-pilot
# Hours of long jobs with many ready: Snakemake's scheduler re-runs its loop once per finished job per
# rate-limit timespan (1 s by default); 10 s cuts its own CPU (bench/bench_scheduler.py). Not in the
# default profile: a run may wait up to one timespan at its end, which short runs and the tests feel.
STUDY_SCHEDULING := --max-jobs-per-timespan 1000/10s
# The study's checkpoints in the repository (src/causalmixft/study_checkpoints.py): `make study-save`
# (and the end of `make study-part`) packs every cell whose runs all exist into $(CHECKPOINTS) (commit
# it); `make study`, `make study-part` and `make study-restore` first unpack what the checkpoints hold,
# so a fresh checkout resumes the study.
STUDY_NAME ?= study-v3
CHECKPOINTS ?= study-checkpoints/$(STUDY_NAME)
CHECKPOINT := $(BIN)/python -m causalmixft.study_checkpoints
RESTORE = if [ -d $(CHECKPOINTS) ]; then $(CHECKPOINT) restore --configfile $(STUDY_CONFIGS) --folder $(CHECKPOINTS); fi
.PHONY: study study-pilot study-dry-run study-save study-restore
study-save: $(STAMP)
	$(CHECKPOINT) save --configfile $(STUDY_CONFIGS) --folder $(CHECKPOINTS)

study-restore: $(STAMP)
	$(RESTORE)

study study-pilot: $(STAMP)
	$(RESTORE)
	$(SNAKEMAKE) --cores $(CORES) --configfile $(STUDY_CONFIGS) --keep-going $(STUDY_SCHEDULING) $(STUDY_ARGS) \
		|| { $(SNAKEMAKE) aggregate --cores $(CORES) --configfile $(STUDY_CONFIGS); exit 1; }

study-dry-run: $(STAMP)
	$(SNAKEMAKE) --configfile $(STUDY_CONFIGS) --dry-run

# One part of the study that keeps every core busy: WORKERS one-core Snakemakes side by side, each on
# one dataset's runs at a time, for at most HOURS (src/causalmixft/study_parts.py says why). Then
# `make study` writes what remains (the aggregate).
WORKERS ?= 2
HOURS ?= 2.5
.PHONY: study-part
# The part's finished cells are saved as a checkpoint when it ends, also when it failed (then commit it).
study-part: $(STAMP)
	$(RESTORE)
	$(BIN)/python -m causalmixft.study_parts --configfile $(STUDY_CONFIGS) --workers $(WORKERS) --hours $(HOURS) \
		-- $(STUDY_SCHEDULING) $(STUDY_ARGS); status=$$?; \
	$(CHECKPOINT) save --configfile $(STUDY_CONFIGS) --folder $(CHECKPOINTS) && exit $$status

# A finished study's report into docs/results/$(STUDY_NAME) (README written from its tables; refuses to
# overwrite a published report: add PUBLISH_ARGS=--replace to mean it; refuses a run with runs of its
# grid not run: PUBLISH_ARGS=--incomplete publishes it marked so).
STUDY_TITLE ?= Study v3: CausalMixFT where real rows are scarce
.PHONY: publish-study
publish-study: $(STAMP)
	$(BIN)/python -m causalmixft.analysis.publish results docs/results/$(STUDY_NAME) --title "$(STUDY_TITLE)" \
		--config config.yaml $(STUDY_CONFIGS) --readme README.md $(PUBLISH_ARGS)

dry-run: $(STAMP)
	$(SNAKEMAKE) --dry-run

tabarena-dry-run: $(STAMP)
	$(SNAKEMAKE) --configfile config/tabarena.yaml --replace-workflow-config --dry-run

test: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest

test-slow: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -m slow

lint: $(STAMP)
	$(BIN)/snakefmt --check Snakefile workflow/
	$(BIN)/snakemake --lint

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# Published tabular foundation models (docs/backbones.md): one venv per model, .venv-<model>,
# from requirements-<model>.txt, so no model's pins touch the default .venv. `make venv-tabpfn`
# builds one; `make test-tabpfn` runs that adapter's tests in it (random weights, no download).
MODELS := mitra tabpfn tabicl
.PHONY: $(addprefix venv-,$(MODELS)) $(addprefix test-,$(MODELS)) test-models

$(addprefix venv-,$(MODELS)): venv-%: .venv-%/.installed

.venv-%/.installed: requirements-%.txt requirements.txt pyproject.toml
	test -x .venv-$*/bin/python || $(PYTHON) -m venv .venv-$*
	.venv-$*/bin/python -m pip install --quiet -r requirements-$*.txt
	.venv-$*/bin/python -m pip install --quiet --no-deps -e .
	touch $@

$(addprefix test-,$(MODELS)): test-%: .venv-%/.installed
	CAUSALMIXFT_ADAPTER=$* OMP_NUM_THREADS=1 .venv-$*/bin/python -m pytest -m '' tests/test_model_$*.py

test-models: $(addprefix test-,$(MODELS))
