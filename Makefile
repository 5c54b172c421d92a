# The two commands: `make run` (the default workflow) and `make test`. Both create .venv with
# the pinned requirements on first use; the stamp file keeps later calls from reinstalling.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
SNAKEMAKE := $(BIN)/snakemake --workflow-profile workflow/profiles/default

.PHONY: run dry-run tabarena-dry-run test test-slow lint install

run: $(STAMP)
	$(SNAKEMAKE) --cores $(CORES)

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
