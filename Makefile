# `make demo` and `make test` are the whole Quickstart: each creates .venv and installs first.
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= --durations=15  # the slowest tests, to keep `make test` under its 20-minute budget

.PHONY: install demo test test-fast docs bench clean

install:
	@bash scripts/install.sh

# Every probe's quick preset on the embedded model: the summary table, then report.html.
demo: install
	$(BIN)/llmassay assess --model llamacpp/smollm2-135m --quick --output-path runs/demo

# pytest exits 5 when it collected no test: that is a failure here, not a pass.
test: install
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests were collected: failing"; exit 1; fi; exit $$rc

# No model, server, Ray or browser (tests/conftest.py fails any test that starts one).
test-fast: install
	@LLMASSAY_TEST_TIER=fast $(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests were collected: failing"; exit 1; fi; exit $$rc

# The documentation site into build/site; --strict: a broken link, anchor or missing page fails.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
