# Two commands: `make demo` and `make test`. Each one sets up what it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint reproduce clean

$(STAMP): pyproject.toml
	@echo "Setting up $(VENV): a virtual environment with chainrule, NumPy, matplotlib, tqdm,"
	@echo "scikit-learn and the test tools (the first time takes a minute or two)..."
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $(STAMP)
	@echo "$(VENV) is ready."

demo: $(STAMP)
	@$(PY) -m chainrule demo

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/run.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples

reproduce: $(STAMP)
	$(PY) bench/reproduce.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis
