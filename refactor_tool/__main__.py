"""``python -m refactor_tool``: the same command line as ``refactor-tool``."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="refactor-tool")
