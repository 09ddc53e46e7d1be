# landuse — two commands: `make demo` and `make test`. Both are idempotent.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
EXTRAS  ?= all,dev

.PHONY: demo test lint venv browser clean bench

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

# Headless Chromium for the web-map tests (Debian packages; needs root or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
	  { echo "installing chromium + chromium-driver (Debian)"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

demo: venv
	$(BIN)/landuse run workflows/sample_county.yaml

lint: venv
	$(BIN)/ruff check landuse tests benchmarks workflows
	$(BIN)/mypy landuse

test: venv browser lint
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

bench: venv
	$(BIN)/python benchmarks/bench_read.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache .ruff_cache .mypy_cache
