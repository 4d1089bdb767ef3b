# Two entry points for a fresh machine (python3, pip, git, make): `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test install clean

$(BIN)/refactor-tool: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

install: $(BIN)/refactor-tool

demo: install
	$(BIN)/refactor-tool demo

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) *.egg-info
