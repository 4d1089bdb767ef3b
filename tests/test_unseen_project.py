"""The tool on a project it was not built against: the bundled target, grown and renamed the
way another team's code base would differ, migrated end to end through the real CLI.

The variant differs from ``target_project/`` in every name the tool could have learnt by
heart: the package (``questlog``), its entry point and environment variables, a manager class
(``GameManager`` is ``CampaignManager``, so its short name is ``campaign``), the session
fixture (``dbs``). Its shared fixtures live in a plain module that the root conftest loads
with ``pytest_plugins`` (no star imports). It also has a manager the bundled target lacks
(``StatsManager``, which depends on another manager), whose fixture lives in a
sub-directory conftest, and tests of it in the shapes phase 5 rewrites. Its
``[tool.refactor-tool]`` table names only the smoke command: the package, its modules, the
session fixture and the entry point are what the tool finds in the code.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from refactor_tool.phases import PHASES

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "target_project"

pytestmark = [
    pytest.mark.skipif(
        not (TARGET / "pyproject.toml").is_file(), reason="target_project/ is not here"
    ),
    pytest.mark.skipif(
        sorted(PHASES) != [1, 2, 3, 4, 5, 6],
        reason=f"only phases {sorted(PHASES)} are installed",
    ),
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]

RENAMES = [
    (r"\bsologm\b", "questlog"),
    (r"\bSOLOGM_", "QUESTLOG_"),
    (r"\bGameManager\b", "CampaignManager"),
    (r"\bdb_session\b", "dbs"),
]

# the package, its modules, the session fixture, the entry point and the variables the smoke
# command is pointed with are found in the code; the smoke command itself is the project's choice
CONFIG = """
[tool.refactor-tool]
smoke_args = ["game", "list"]
"""

STATS_MANAGER = '''\
"""Numbers about a campaign."""

from typing import Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from questlog.core.base_manager import BaseManager
from questlog.core.game import CampaignManager
from questlog.models.game import Game


class StatsManager(BaseManager[Game, Game]):
    """Counts what the other managers wrote."""

    def __init__(
        self,
        campaign_manager: Optional[CampaignManager] = None,
        session: Optional[Session] = None,
    ):
        super().__init__(session=session)
        self._campaign_manager = campaign_manager

    @property
    def campaign_manager(self) -> CampaignManager:
        return self._lazy_init_manager(
            "_campaign_manager", "questlog.core.game.CampaignManager"
        )

    def count_games(self) -> int:
        def _count(session: Session) -> int:
            return session.scalar(select(func.count()).select_from(Game))

        return self._execute_db_operation("count_games", _count)
'''

STATS_FIXTURE = '''
from questlog.core.stats import StatsManager  # noqa: E402


@pytest.fixture
def stats_manager(dbs, game_manager):  # the campaign manager's fixture kept its old name
    return StatsManager(campaign_manager=game_manager, session=dbs)
'''

STATS_TESTS = '''\
"""Tests of the manager only this project has."""

import pytest


def test_counts_games(stats_manager, create_test_game, dbs):
    create_test_game(name="One")
    create_test_game(name="Two")
    dbs.flush()
    assert stats_manager.count_games() == 2


class TestStats:
    @pytest.mark.parametrize("count", [0, 3])
    def test_counts_what_was_created(self, stats_manager, game_manager, count):
        for i in range(count):
            game_manager.create_game(f"Game {i}")
        assert stats_manager.count_games() == count

    def test_shares_the_campaign_manager(self, stats_manager, test_game):
        assert stats_manager.campaign_manager.get_game(test_game.id).name == test_game.name
'''


def make_variant(dest: Path) -> Path:
    """A renamed, grown copy of the bundled target at ``dest``, committed to git."""
    shutil.copytree(
        TARGET,
        dest,
        ignore=shutil.ignore_patterns(
            "__pycache__", ".pytest_cache", "*.db", ".refactor-tool", "*.egg-info"
        ),
    )
    (dest / "sologm").rename(dest / "questlog")
    for path in dest.rglob("*"):
        if path.is_file() and path.suffix in {".py", ".toml", ".txt", ".md"}:
            text = path.read_text(encoding="utf-8")
            new = text
            for pattern, replacement in RENAMES:
                new = re.sub(pattern, replacement, new)
            if new != text:
                path.write_text(new, encoding="utf-8")
    with (dest / "pyproject.toml").open("a", encoding="utf-8") as handle:
        handle.write(CONFIG)
    # the shared fixtures become a plugin module that a root conftest loads with
    # ``pytest_plugins``; the sub-directory conftests no longer star-import them
    (dest / "questlog/tests/conftest.py").rename(dest / "questlog/tests/fixtures.py")
    (dest / "conftest.py").write_text(
        'pytest_plugins = ["questlog.tests.fixtures"]\n', encoding="utf-8"
    )
    for conftest in dest.glob("questlog/*/tests/conftest.py"):
        text = conftest.read_text(encoding="utf-8")
        conftest.write_text(
            re.sub(r"(?m)^from questlog\.tests\.conftest import \*.*\n", "", text),
            encoding="utf-8",
        )
    (dest / "questlog/core/stats.py").write_text(STATS_MANAGER, encoding="utf-8")
    with (dest / "questlog/core/tests/conftest.py").open("a", encoding="utf-8") as handle:
        handle.write(STATS_FIXTURE)
    (dest / "questlog/core/tests/test_stats.py").write_text(STATS_TESTS, encoding="utf-8")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "questlog"]):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=dest,
            check=True,
            capture_output=True,
        )
    return dest


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200", PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def test_all_phases_on_a_renamed_and_grown_project(tmp_path: Path) -> None:
    root = make_variant(tmp_path / "questlog-app")
    before = run("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=root)
    # the same genuine failures as the bundled target, under the new names; the new tests pass
    assert "4 failed, 219 passed" in before.stdout, before.stdout[-2000:]

    # the gates of every phase run end to end on the bundled target (the demo) and on a
    # project written apart from it (tests/test_second_project.py); here the suite runs once
    # after all six phases
    result = run(
        "-m", "refactor_tool", "apply", "--all", "--no-verify", "--commit", "--target", str(root)
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for number in range(1, 7):
        assert f"refactor-tool: phase {number} " in output  # committed
    assert "sologm" not in output

    after = run("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=root)
    assert after.returncode == 0 and "223 passed" in after.stdout, after.stdout[-2000:]
    check = run("-m", "refactor_tool", "check", "--target", str(root))
    assert check.returncode == 0, check.stdout + check.stderr

    # the new manager is in the generated factory, after the manager it depends on
    factory = (root / "questlog/core/factory.py").read_text(encoding="utf-8")
    assert factory.index("campaign_manager = CampaignManager(") < factory.index(
        "stats_manager = StatsManager(session=session, campaign_manager=campaign_manager)"
    )
    assert "stats=stats_manager" in factory
    # its fixture is gone, and its tests were rewritten under the derived short names
    conftest = (root / "questlog/core/tests/conftest.py").read_text(encoding="utf-8")
    assert "def stats_manager" not in conftest
    plugin = (root / "questlog/tests/fixtures.py").read_text(encoding="utf-8")
    assert "def dbs(" not in plugin and "def game_manager(" not in plugin
    assert "def create_test_game(" in plugin
    tests = (root / "questlog/core/tests/test_stats.py").read_text(encoding="utf-8")
    assert "with session_context as session:" in tests
    assert "managers.stats.count_games()" in tests
    assert "managers.campaign.create_game(" in tests
    assert not re.search(r"\b(dbs|stats_manager|game_manager)\b", tests), tests
    log = subprocess.run(
        ["git", "log", "--format=%s"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(log) == 7 and all(s.startswith("refactor-tool: phase") for s in log[:6])
