# `make run` opens the app, `make test` runs the test suite. Each creates .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench demo clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python main.py

# ruff (pyflakes, import order, bugbear, no function-level imports) and import-linter (the engine never
# imports Qt; layers import downwards; no core module imports the CLI tools). CI runs this before the tests.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# pytest exits 5 when it collects nothing; that is reported, not treated as a crash.
test: $(STAMP)
	@$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

bench: $(STAMP)
	$(BIN)/python -m engine bench --preset cpu-quick

clean:
	rm -rf $(VENV) build *.egg-info
