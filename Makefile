# `make run` opens the app, `make demo` opens it on the demo data, `make test` runs the test suite.
# Each creates .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python main.py

# The app on the built-in summer -> winter demo data, ready to train.
demo: $(STAMP)
	$(BIN)/python main.py --demo

# ruff (pyflakes, import order, bugbear, no function-level imports) and import-linter (the engine never
# imports Qt; layers import downwards; no core module imports the CLI tools). CI runs this before the tests.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# `make test` runs every test, as CI does; `make test-fast` leaves out the slow stress tests for a quick
# loop. Both list the 15 slowest tests. pytest exits 5 when it collects nothing; that is reported, not
# treated as a crash.
PYTEST = $(BIN)/python -m pytest --durations=15

test: $(STAMP)
	@$(PYTEST); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

test-fast: $(STAMP)
	@$(PYTEST) -m "not slow"; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

bench: $(STAMP)
	$(BIN)/python -m engine bench --preset cpu-quick

clean:
	rm -rf $(VENV) build *.egg-info
