"""A phase never writes a dangling name: the comparison of ruff's F821 before and after each
phase, and the run that stops before writing when a rule produced one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from refactor_tool import cli
from refactor_tool.dangling import (
    DanglingName,
    SessionlessCall,
    dangling_fixture_requests,
    dangling_names,
    sessionless_manager_calls,
    undefined_names,
)
from refactor_tool.model.changes import FileChange
from refactor_tool.model.project import Project

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "target_project"
IGNORE = shutil.ignore_patterns(
    "__pycache__", ".pytest_cache", ".refactor-tool", "*.egg-info", "*.db"
)

OLD = b'''\
import logging
from helpers import *

logger = logging.getLogger(__name__)


def run(self):
    session, should_close = self._get_session()
    logger.debug(f"closing: {should_close}")
    return star_provided(session)
'''


def test_undefined_names_reads_ruff() -> None:
    found = undefined_names({"pkg/a.py": b"x = y\n", "b.py": b"import os\nos.getcwd()\n"})
    assert found == {"pkg/a.py": [(1, "y")], "b.py": []}


def test_a_name_the_phase_left_undefined_is_found_with_its_line() -> None:
    new = OLD.replace(b"    session, should_close = self._get_session()\n", b"")
    found = dangling_names([(2, [FileChange("core/base.py", OLD, new)])])
    # ``session`` and ``should_close`` lost their binding; ``star_provided`` (from a star
    # import, unknowable to ruff) was undefined to ruff before the phase too
    assert found == [
        DanglingName(2, "core/base.py", 8, "should_close"),
        DanglingName(2, "core/base.py", 9, "session"),
    ]
    assert str(found[0]) == "core/base.py:8: phase 2 would leave `should_close` undefined"


def test_a_rewrite_that_keeps_every_name_bound_passes() -> None:
    new = OLD.replace(
        b"    session, should_close = self._get_session()\n", b"    session = self._session\n"
    ).replace(b'    logger.debug(f"closing: {should_close}")\n', b"")
    assert dangling_names([(2, [FileChange("core/base.py", OLD, new)])]) == []
    # created files count from nothing; deleted and non-Python files are not read
    created = FileChange("core/factory.py", None, b"def make():\n    return Manager()\n")
    gone = FileChange("core/old.py", b"x = 1\n", None)
    notes = FileChange("README.md", b"a\n", b"b\n")
    assert [d.name for d in dangling_names([(3, [created, gone, notes])])] == ["Manager"]


@pytest.mark.skipif(not (TARGET / "pyproject.toml").is_file(), reason="no target_project/")
def test_apply_stops_before_writing_when_a_rule_leaves_a_name_dangling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "target"
    shutil.copytree(TARGET, root, ignore=IGNORE)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    real_compute = cli.compute

    def faulty_compute(*args, **kwargs):  # a rule with a bug: it drops a binding
        records = real_compute(*args, **kwargs)
        change = next(c for c in records[0].changes if c.new is not None)
        change.new = change.new + b"\n\nBROKEN = name_nobody_defines\n"
        change.tree = None
        return records

    monkeypatch.setattr(cli, "compute", faulty_compute)
    # with the gates on, the baseline starts in the background meanwhile: it is cancelled,
    # and no baseline is kept either
    for verify in (["--no-verify"], []):
        result = CliRunner().invoke(
            cli.main, ["apply", "--phase", "1", *verify, "--target", str(root)]
        )
        assert result.exit_code == 1, result.output
        assert "would leave `name_nobody_defines` undefined" in result.output
        assert "Nothing was written" in result.output
        assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


MANAGERS = {
    "sologm/__init__.py": b"",
    "sologm/core/__init__.py": b"",
    "sologm/core/base_manager.py": b"class BaseManager:\n    def __init__(self, session=None):\n        self._session = session\n",
    "sologm/core/game.py": b"from sologm.core.base_manager import BaseManager\n\n\nclass GameManager(BaseManager):\n    pass\n",
    "sologm/cli/__init__.py": b"",
    "sologm/cli/game.py": (
        b"from sologm.core.game import GameManager\n\n\n"
        b"def listing(session):\n"
        b"    a = GameManager(session)\n"
        b"    b = GameManager(session=session)\n"
        b"    c = GameManager(**{'session': session})\n"
        b"    return GameManager()\n"
    ),
    "sologm/tests/test_game.py": b"from sologm.core.game import GameManager\n\n\ndef test_x():\n    GameManager()\n",
}


def _write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_a_manager_left_without_the_session_it_now_requires(tmp_path: Path) -> None:
    _write(tmp_path, MANAGERS)
    base = MANAGERS["sologm/core/base_manager.py"]
    required = FileChange(
        "sologm/core/base_manager.py", base, base.replace(b"session=None", b"session")
    )
    found = sessionless_manager_calls(Project(tmp_path), [(2, [required])])
    # the application's session-less call, not the test's (phases 4 and 5 rewrite tests)
    assert found == [SessionlessCall(2, "sologm/cli/game.py", 8, "GameManager")]
    assert str(found[0]) == (
        "sologm/cli/game.py:8: phase 2 would leave `GameManager(...)` without the session "
        "its constructor requires"
    )
    # a phase that leaves the session optional, or a later phase that does not touch the
    # call, leaves nothing dangling
    assert sessionless_manager_calls(Project(tmp_path), [(1, [])]) == []
    cli = MANAGERS["sologm/cli/game.py"]
    fixed = FileChange("sologm/cli/game.py", cli, cli.replace(b"GameManager()", b"GameManager(session)"))
    assert sessionless_manager_calls(Project(tmp_path), [(2, [required, fixed])]) == []


FIXTURES = {
    "pyproject.toml": b'[project]\nname = "app"\n',
    "app/__init__.py": b"",
    "app/tests/__init__.py": b"",
    "app/tests/conftest.py": (
        b"import pytest\n\n\n"
        b"@pytest.fixture\ndef base_rows():\n    return [1]\n\n\n"
        b"@pytest.fixture\ndef rows(base_rows):\n    return base_rows\n"
    ),
    "app/tests/test_rows.py": (
        b"def test_rows(rows, tmp_path):\n    assert rows\n\n\n"
        b"def test_plugin(mocker):\n    assert mocker\n"
    ),
}


def test_a_request_the_run_leaves_without_a_fixture(tmp_path: Path) -> None:
    _write(tmp_path, FIXTURES)
    conftest = FIXTURES["app/tests/conftest.py"]
    no_base = FileChange(
        "app/tests/conftest.py",
        conftest,
        conftest.replace(b"@pytest.fixture\ndef base_rows():\n    return [1]\n\n\n", b""),
    )
    # the fixture ``rows`` asks for a fixture nothing defines any more: dangling from phase
    # 4 on; ``mocker`` (a plugin's fixture, unknown here) was unanswered before the run too
    found = dangling_fixture_requests(Project(tmp_path), [(4, [no_base])])
    assert [str(d) for d in found] == [
        "app/tests/conftest.py: rows requests fixture 'base_rows', which nothing defines "
        "(after phase 4)"
    ]
    no_rows = FileChange("app/tests/conftest.py", conftest, b"import pytest\n")
    # tests asking for a fixture phase 4 removed are phase 5's to rewrite: not dangling yet
    assert dangling_fixture_requests(Project(tmp_path), [(4, [no_rows])]) == []
    found = dangling_fixture_requests(Project(tmp_path), [(4, [no_rows]), (5, [])])
    assert [str(d) for d in found] == [
        "app/tests/test_rows.py: test_rows requests fixture 'rows', which nothing defines "
        "(after phase 5)"
    ]
    # a run that ends before phase 4 settles nothing about fixtures
    assert dangling_fixture_requests(Project(tmp_path), [(3, [no_rows])]) == []
