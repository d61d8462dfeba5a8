# The two set-up commands (README): `make run` and `make test`. Everything else helps them.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODEL_DIR ?= $(or $(TEXTCLS_MODEL_DIR),./models)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run venv example serve test lint types docs docs-build bench bench-quick clean

run: venv example serve

venv: $(STAMP)

# pip prints each package it collects and downloads, so a long install shows it is alive.
# Redone when pyproject.toml or this file (the extras installed) changes.
$(STAMP): pyproject.toml Makefile
	@start=$$(date +%s); \
	echo "==> setting up $(VENV): textcls and its dependencies (once; TensorFlow is most of it,"; \
	echo "    about 1 GB to download: a few minutes on a fast network, longer on a slow one)"; \
	test -x $(PY) || python3 -m venv $(VENV) || exit 1; \
	$(PY) -m pip install --quiet --upgrade pip "setuptools>=78.1.1" || exit 1; \
	$(PY) -m pip install -e ".[dev,encoder]" || exit 1; \
	touch $(STAMP); \
	echo "==> $(VENV) ready in $$(( $$(date +%s) - start ))s"

# Train the bundled example unless the model repository already holds a model.
example: venv
	@if $(PY) -c "import sys; from pathlib import Path; from training.artifact import model_names; sys.exit(0 if model_names(Path('$(MODEL_DIR)')) else 1)"; then \
		echo "models found in $(MODEL_DIR); not training the example"; \
	else \
		echo "==> training the bundled example model into $(MODEL_DIR) (about a minute on a laptop CPU)"; \
		$(VENV)/bin/textcls train --model-dir $(MODEL_DIR); \
	fi

serve: venv
	@echo "==> serving $(MODEL_DIR) on http://$(HOST):$(PORT) (API docs: http://$(HOST):$(PORT)/docs; Ctrl-C stops)"
	$(VENV)/bin/textcls serve --host $(HOST) --port $(PORT) --model-dir $(MODEL_DIR)

test: venv
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check app training tests bench clients docs/hooks
	$(VENV)/bin/ruff format --check app training tests bench clients docs/hooks

# Strict, but for what TensorFlow's missing types force on training/ (see pyproject.toml).
types: venv
	$(VENV)/bin/mypy app training docs/hooks

# The documentation site (mkdocs.yml, docs/): served with live reload, or built as CI does.
# NO_MKDOCS_2_WARNING: Material's banner about MkDocs' future, printed on every build.
DOCS_ADDR ?= 127.0.0.1:8080
docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --strict --dev-addr $(DOCS_ADDR)

docs-build: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

bench: venv
	$(PY) -m bench

bench-quick: venv
	$(PY) -m bench --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache site
