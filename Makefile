# The course's commands. `make lab` and `make test` are all a newcomer needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help setup jars lab test test-fast lint format demo broker-stop clean

help:  ## Show the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP) jars  ## Create the venv and fetch the locked jars (once)

jars: $(STAMP)  ## Download the jars in jars.lock (a no-op when present)
	$(PY) -m helpers jars fetch

lab: setup  ## Start the broker and open JupyterLab on the notebooks
	$(PY) -m helpers lab

test: setup  ## Run the whole suite: unit, broker, engines, notebooks (nbmake)
	$(PY) -m pytest tests notebooks --nbmake

test-fast: setup  ## The suite without Spark, Flink and the notebooks
	$(PY) -m pytest tests -m "not slow"

lint: $(STAMP)  ## ruff (code and notebooks) and the no-outputs check
	$(PY) -m ruff check helpers tests notebooks tools
	$(PY) -m ruff format --check helpers tests notebooks tools
	$(PY) tools/check_notebooks.py

format: $(STAMP)  ## ruff format, then strip notebook outputs
	$(PY) -m ruff format helpers tests notebooks tools
	$(PY) -m ruff check --fix helpers tests notebooks tools
	$(PY) -m nbstripout notebooks/*.ipynb

demo: setup  ## Headless end-to-end run: producer, all three engines, reconciliation table
	$(PY) -m helpers demo

broker-stop:  ## Stop the embedded broker
	$(PY) -m helpers broker stop

clean: broker-stop  ## Remove broker data, logs and checkpoints (keeps jars and venv)
	rm -rf .course/kafka .course/logs .course/checkpoints .course/test
