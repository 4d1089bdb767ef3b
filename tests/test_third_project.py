"""End to end on a third project written apart from the others: ``tests/projects/verdant``.

verdant is a greenhouse tracker (greenhouses, beds, plants, care logs, a forecast service
that builds a weather client from an environment variable unless one is injected) with its
own layout: fixtures in a sub-directory conftest, a manager fixture that builds its manager
without a session, a module whose ``pytestmark`` requests an object fixture for every test (its tests ask
for it as a parameter once the rewrite is done),
a test class with fixtures of its own, a yield fixture whose teardown deletes what it made
through managers (every test has an in-memory database of its own, so the teardown goes and
its tests are rewritten like any other), a fixture defined twice, CLI tests through click's
runner. Six of its tests fail before the refactoring for the stale-collection reason
(``KNOWN_FAILURES.txt``).

The test copies it to a scratch git repository, runs ``refactor-tool apply --all --commit``
through the CLI (exit 0: every gate as expected, the end-state differences only where the
run reported code for a person) and runs the suite: every test that passed before passes,
and so do the known failures.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from refactor_tool.phases import PHASES
from support import clean_env, copy_as_repository, git, known_failures

REPO = Path(__file__).resolve().parent.parent
PROJECT = REPO / "tests" / "projects" / "verdant"
#: the module whose ``pytestmark`` requests an object fixture for every test
MARKED = "verdant/tests/beds/test_bed.py"
#: the yield fixture whose teardown deletes through managers (one of MARKED's tests uses it)
YIELDING = "seeded_bed"

pytestmark = [
    pytest.mark.skipif(
        sorted(PHASES) != [1, 2, 3, 4, 5, 6],
        reason=f"only phases {sorted(PHASES)} are installed",
    ),
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]

def _env() -> dict[str, str]:
    return clean_env("VERDANT_HOME", "VERDANT_DATABASE_URL", "VERDANT_WEATHER_KEY")


def _outcomes(root: Path, report: Path) -> dict[str, bool]:
    """Node id -> passed, for every test of the suite run in ``root`` (a test whose setup,
    call or teardown failed did not pass), read from pytest's report hook."""
    plugin = report.parent / "outcomes_plugin.py"
    plugin.write_text(
        "import json\n"
        "OUT = {}\n"
        "def pytest_runtest_logreport(report):\n"
        "    if report.failed or report.when == 'call':\n"
        "        OUT[report.nodeid] = OUT.get(report.nodeid, True) and report.passed\n"
        "def pytest_sessionfinish(session):\n"
        f"    open({str(report)!r}, 'w').write(json.dumps(OUT))\n"
    )
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin.parent), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "outcomes_plugin"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert report.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(report.read_text())


@pytest.fixture
def verdant(tmp_path: Path) -> Path:
    return copy_as_repository(PROJECT, tmp_path / "verdant", "verdant before the refactoring")


def test_apply_all_keeps_every_passing_test_and_fixes_the_stale_ones(
    verdant: Path, tmp_path: Path
) -> None:
    before = _outcomes(verdant, tmp_path / "before.json")
    assert {n for n, ok in before.items() if not ok} == known_failures(PROJECT)

    result = subprocess.run(
        [sys.executable, "-m", "refactor_tool", "apply", "--all", "--commit", "--target", str(verdant)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert git(verdant, "status", "--porcelain") == ""
    # the mark's fixture is a parameter of the tests it covered, rebuilt where they are rewritten
    assert "usefixtures" not in (verdant / MARKED).read_text()
    assert "usefixtures" not in output, output[-6000:]
    # the yield fixture's teardown did only database work on the test's own database
    assert "yields (a teardown" not in output, output[-6000:]
    tree = ast.parse((verdant / MARKED).read_text())
    requested = {
        arg.arg
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        for arg in node.args.args
    }
    assert YIELDING not in requested

    after = _outcomes(verdant, tmp_path / "after.json")
    assert set(after) == set(before)
    broken = {n for n, ok in after.items() if not ok and before[n]}
    assert broken == set(), broken
    still = {n for n, ok in after.items() if not ok}
    assert still == set(), still
