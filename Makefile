# The course's commands. `make lab` and `make test` are all a newcomer needs.
# A Python that PyFlink 2.2 supports (3.11 or 3.12): python3.12, then python3.11, then python3 if it is one
# of those. PYTHON=/path/to/python overrides; setup refuses any other version before creating anything.
SUPPORTED := import sys; sys.exit(sys.version_info[:2] not in ((3, 11), (3, 12)))
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do \
	$$p -c '$(SUPPORTED)' 2>/dev/null && { command -v $$p; break; }; done)
NO_PYTHON := The course needs Python 3.11 or 3.12 (PyFlink 2.2 has no wheel for others); found \
	$(shell python3 --version 2>&1 || echo none). Get one with 'uv python install 3.12', pyenv, the deadsnakes \
	PPA, or 'conda env create -f environment.yml' (brings its own Python and JDK); or set PYTHON=...
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help setup jars archives lab test test-unit test-fast test-notebooks test-cluster test-browser smoke lint format demo bench screenshots broker-stop clean

help:  ## Show the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	@$(if $(PYTHON),,echo "$(NO_PYTHON)" >&2; exit 1)
	@$(PYTHON) -c '$(SUPPORTED)' 2>/dev/null || { echo "$(NO_PYTHON)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP) jars archives  ## Create the venv, fetch the locked jars, make the class archives (once)

jars: $(STAMP)  ## Download the jars in jars.lock (a no-op when present)
	$(PY) -m helpers jars fetch

archives: jars  ## Record Spark's and Flink's classes once, so each engine starts faster (a no-op when made)
	$(PY) -m helpers.class_archive

lab: setup  ## Start the broker and open JupyterLab on the notebooks
	$(PY) -m helpers lab

test: setup  ## Run the whole suite: unit, broker, engines, clusters, browser, notebooks (nbmake)
	$(PY) -m pytest -n 2 tests notebooks --nbmake

test-unit: $(STAMP)  ## Seconds: no broker, no JVM
	$(PY) -m pytest tests -m unit

test-fast: setup  ## Unit and broker tests: no Spark, Flink, cluster, browser or notebook
	$(PY) -m pytest tests -m "not jvm and not notebook and not cluster and not browser"

test-notebooks: setup  ## Every chapter under nbmake, top to bottom
	$(PY) -m pytest notebooks --nbmake

test-cluster: setup  ## The multi-node cluster tests
	$(PY) -m pytest tests -m cluster

test-browser: setup  ## JupyterLab in Chromium, as a learner uses it
	$(PY) -m pytest tests -m browser

smoke: $(STAMP) archives  ## A quick check of one install (its jars and class archives): broker, engines, one chapter
	$(PY) -m pytest tests/test_engines.py tests/test_jvm_tokens.py notebooks/01_create_a_topic.ipynb --nbmake

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

bench: setup  ## Speed table: our producer and counters beside Kafka's own tools (a few minutes)
	$(PY) -m helpers jars fetch --role bench
	$(PY) tools/bench.py

screenshots: setup  ## Run the browser tests; copy one picture per live chapter into docs/screenshots/
	$(PY) -m pytest tests/test_browser.py
	mkdir -p docs/screenshots
	for shot in test-artifacts/*-live.png; do cp "$$shot" "docs/screenshots/$$(basename "$$shot" -live.png).png"; done
	cp test-artifacts/02_produce_words-fast.png docs/screenshots/02_produce_words.png

broker-stop:  ## Stop the embedded broker
	$(PY) -m helpers broker stop

clean: broker-stop  ## Remove broker data, logs and checkpoints (keeps jars and venv)
	rm -rf .course/kafka .course/logs .course/checkpoints .course/test
