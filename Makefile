# Two commands: `make demo` and `make test`. Each one sets up what it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint reproduce docs notebooks clean

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
	$(VENV)/bin/ruff check src tests bench examples tools

# The documentation site, built offline into site/; any warning fails it (mkdocs.yml: strict).
# The docs extra is part of dev, which $(STAMP) installs.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# notebooks/ made from the tutorial pages (their code, no outputs)
notebooks: $(STAMP)
	$(PY) tools/make_notebooks.py

reproduce: $(STAMP)
	$(PY) bench/reproduce.py

clean:
	rm -rf $(VENV) build site src/*.egg-info .pytest_cache .hypothesis
