# One entry point for every task. Each target creates .venv and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: quickstart test lint bench serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

## quickstart: start ByteNite Local and run the quickstart notebook end to end
quickstart: $(STAMP)
	$(PY) -m bytenite_nb.cli notebook notebooks/quickstart.ipynb --output test-output/quickstart.executed.ipynb

## test: the whole test suite (unit, integration, notebooks, browser)
test: $(STAMP)
	bash scripts/ensure-chromium.sh
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check bytenite_nb tests benchmarks

## bench: every benchmark (fanout.py also runs fanout_http.py), printing ratios against baselines
bench: $(STAMP)
	for b in fanout scaleout bigdata app_envs frames widget_updates load; do $(PY) benchmarks/$$b.py || exit 1; done

serve: $(STAMP)
	$(VENV)/bin/bytenite-nb serve

clean:
	rm -rf $(VENV) .pytest_cache test-output
