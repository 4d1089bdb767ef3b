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

# The tool's own suite runs in two pytest processes at once: the command-line end-to-end
# tests (each runs the tool and the target's suite in subprocesses) in one, everything else
# in the other, whose output streams; the first one's output follows. It fails if either does.
SLOW_TESTS := tests/test_cli.py tests/test_unseen_project.py tests/test_second_project.py tests/test_third_project.py

test: install
	@tmp=$$(mktemp -d); \
	$(BIN)/python -m pytest -q --basetemp=$$tmp/slow $(SLOW_TESTS) > $$tmp/slow.log 2>&1 & slow=$$!; \
	$(BIN)/python -m pytest -q --basetemp=$$tmp/rest $(foreach f,$(SLOW_TESTS),--ignore=$(f)); rest=$$?; \
	wait $$slow; code=$$?; \
	echo "--- $(SLOW_TESTS)"; cat $$tmp/slow.log; rm -rf $$tmp; \
	test $$code -eq 0 && test $$rest -eq 0

clean:
	rm -rf $(VENV) *.egg-info
