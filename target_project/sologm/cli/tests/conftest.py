"""Fixtures for the CLI tests."""

from typing import List

import pytest

from sologm.cli.main import main
from sologm.tests.conftest import *  # noqa: F401,F403


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process and return ``(exit_code, stdout, stderr)``."""

    def _run(*argv: str):
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return _run
