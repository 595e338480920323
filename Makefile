# Two commands from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
MIN_PYTHON := 3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-cluster install lint clean

$(STAMP): pyproject.toml constraints.txt
	@py=$$(test -x $(BIN)/python && echo $(BIN)/python || echo $(PYTHON)); \
	  $$py -c 'import sys; sys.exit(sys.version_info < tuple(map(int, "$(MIN_PYTHON)".split("."))))' 2>/dev/null \
	  || { echo "gansweep needs Python >= $(MIN_PYTHON); $$py is $$($$py --version 2>/dev/null || echo not found). Run: $$(test -d $(VENV) && echo 'rm -rf $(VENV) && ')make demo PYTHON=python3.12 (any Python >= $(MIN_PYTHON))"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# A real small sweep on the embedded defaults (local Ray, sqlite MLflow + ./mlartifacts,
# sqlite Optuna), its top configs confirmed on fresh seeds (ring8.yaml's budget.confirm), then
# promote the most trustworthy generator to the Model Registry.
demo: $(STAMP)
	$(BIN)/gansweep launch search_spaces/ring8.yaml
	$(BIN)/gansweep best ring8
	$(BIN)/gansweep promote ring8 --model-name ring8-generator
	@echo
	@echo
	@echo "Open the MLflow UI on this sweep:  $(BIN)/gansweep ui ring8   (Ctrl-C stops it)"

# Everything but the slow tests (under 10 minutes on 2 cores, the install included).
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not cluster"

# The slow tests: the cluster path as a user meets it (a stock Ray head with token auth in a second
# venv, a sweep checkpointing to a local S3 server, each cluster file's setup commands in a fresh
# venv), the benchmarks' smoke runs, and whole sweeps of a minute (confirm, plug-ins, seeds).
test-cluster: $(STAMP)
	$(BIN)/python -m pytest -q -m cluster

lint: $(STAMP)
	$(BIN)/ruff check orchestrator trainers tests benchmarks

clean:
	rm -rf mlflow.db optuna.db optuna.db.lease.lock mlartifacts checkpoints gansweep.toml
