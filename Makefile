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
