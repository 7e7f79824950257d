# The README's two commands: `make demo` and `make test` (plus `make bench`).
# Each step is idempotent: a second run skips what is already done.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Reinstall when the declared dependencies or the compiled kernels' sources change (the editable
# install builds the C extension in place; see llama_data/pipeline/kernels/__init__.py).
INSTALL_INPUTS := setup.cfg pyproject.toml setup.py $(wildcard llama_data/pipeline/kernels/*.c)
STAMP  := $(VENV)/.installed-$(shell cat $(INSTALL_INPUTS) | cksum | cut -d' ' -f1)
KENLM  := $(BIN)/lmplz $(BIN)/build_binary

.PHONY: demo test conformance bench install kenlm chromium lint clean

demo: install kenlm
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/llama-data build

test: install kenlm chromium
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest --ignore=tests/conformance $(PYTEST_ARGS)

# Our functions beside the reference implementations' own code (cc_net, langdetect, TFDS C4,
# datatrove), each installed from PyPI into its own virtual environment under .conformance/.
conformance: install kenlm
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest tests/conformance $(PYTEST_ARGS)

bench: install kenlm
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m benchmarks

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# A C compiler first (the kernels), then torch first and pinned, so pip never resolves the CUDA
# build.
$(STAMP): $(BIN)/python $(INSTALL_INPUTS)
	@bash scripts/install_cc.sh
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

kenlm: $(BIN)/python
	@VENV_BIN="$(CURDIR)/$(BIN)" PYTHON="$(CURDIR)/$(BIN)/python" bash scripts/build_kenlm.sh

# Debian's chromium for the report's headless-browser test (skipped where it cannot be installed).
chromium:
	@bash scripts/install_chromium.sh

clean:
	rm -rf $(VENV) .kenlm-build .conformance
