# The two set-up commands (README): `make run` and `make test`. Everything else helps them.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODEL_DIR ?= $(or $(TEXTCLS_MODEL_DIR),./models)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run venv example serve test lint types bench bench-quick clean

run: venv example serve

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip "setuptools>=78.1.1"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Train the bundled example unless the model repository already holds a model.
example: venv
	@if $(PY) -c "import sys; from pathlib import Path; from training.artifact import model_names; sys.exit(0 if model_names(Path('$(MODEL_DIR)')) else 1)"; then \
		echo "models found in $(MODEL_DIR); not training the example"; \
	else \
		$(VENV)/bin/textcls train --model-dir $(MODEL_DIR); \
	fi

serve: venv
	$(VENV)/bin/textcls serve --host $(HOST) --port $(PORT) --model-dir $(MODEL_DIR)

test: venv
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check app training tests bench clients
	$(VENV)/bin/ruff format --check app training tests bench clients

# Strict, but for what TensorFlow's missing types force on training/ (see pyproject.toml).
types: venv
	$(VENV)/bin/mypy app training

bench: venv
	$(PY) -m bench

bench-quick: venv
	$(PY) -m bench --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
