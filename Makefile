# `make demo` and `make test` are the whole Quickstart: each creates .venv and installs first.
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: install demo test test-fast bench clean

install:
	@bash scripts/install.sh

demo: install
	$(BIN)/llmassay run --model llamacpp/smollm2-135m --tasks mmlu_sample,arith_sample --limit 40 --output-path runs/demo

# pytest exits 5 when it collected no test: that is a failure here, not a pass.
test: install
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests were collected: failing"; exit 1; fi; exit $$rc

test-fast: install
	@$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests were collected: failing"; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
