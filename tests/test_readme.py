"""The README's phase table is the registry's, and its quick start is the Makefile's."""

from __future__ import annotations

import re
from pathlib import Path

from refactor_tool.phases import PHASES, markdown_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_phase_table_is_rendered_from_the_registry() -> None:
    match = re.search(r"<!-- phases:start -->\n(.*?)<!-- phases:end -->", README, re.S)
    assert match, "README.md lost its phase-table markers"
    assert match.group(1) == markdown_table(), "run: python -m refactor_tool.phases and paste"
    assert set(PHASES) == {1, 2, 3, 4, 5, 6}


def test_quick_start_is_two_commands_that_exist() -> None:
    block = re.search(r"## Quick start\n\n```\n(.*?)```", README, re.S)
    assert block
    commands = block.group(1).strip().splitlines()
    assert commands == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for command in commands:
        assert re.search(rf"^{command.split()[1]}:", makefile, re.M)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci
