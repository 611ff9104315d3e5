# Every target sets itself up: a fresh clone needs only `make fit` or `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU wheel on our machines' disk; on a GPU machine use e.g. `make install TORCH=torch`.
TORCH ?= torch==2.13.0
ARGS ?=
PYTEST_ARGS ?=
SWEEP ?= configs/sweep/smoke.yaml
COUNT ?=
PARALLEL ?= 1
LOCAL ?=
SWEEP_ROOT ?=
ENTITY ?=
PROJECT ?= robust-transfer
DASHBOARD_ARGS ?=

.PHONY: install fit test test-fast lint bench dashboard sweep clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(BIN)/.installed

fit: install
	$(BIN)/python -m robust_transfer.fit $(ARGS)

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check robust_transfer tests benchmarks
	$(BIN)/ruff format --check robust_transfer tests benchmarks

bench: install
	$(BIN)/python benchmarks/regularizers.py
	$(BIN)/python benchmarks/perturbations.py
	$(BIN)/python benchmarks/padding.py
	$(BIN)/python benchmarks/trainer_baseline.py

# The W&B workspace (add DASHBOARD_ARGS=--report for a report too); needs `wandb login`.
dashboard: install
	@test -n "$(ENTITY)" || { echo "usage: make dashboard ENTITY=<wandb entity> PROJECT=<project>"; exit 2; }
	$(BIN)/python -m robust_transfer.dashboard --entity $(ENTITY) --project $(PROJECT) $(DASHBOARD_ARGS)

# A W&B sweep file: online (W&B API key) creates the sweep and starts an agent; LOCAL=1 (or
# offline) runs it here with the local controller. COUNT=n runs (random/bayes; caps a grid).
sweep: install
	$(BIN)/python -m robust_transfer.sweep $(SWEEP) --parallel $(PARALLEL) $(if $(COUNT),--count $(COUNT)) $(if $(SWEEP_ROOT),--output-root $(SWEEP_ROOT)) $(if $(LOCAL),--local)

clean:
	rm -rf $(VENV) .cache runs wandb
