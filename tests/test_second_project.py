"""End to end on a second project written apart from the bundled target: ``tests/projects/libris``.

libris is a lending library (branches, books, members, loans, holds, notices), with its own
names, a click CLI, services whose constructors put ``session`` in other positions, a service
that builds an SMTP client from an environment variable, fixtures in sub-directory conftests and
factories that already take the session first. Two of its tests fail before the refactoring for
the stale-collection reason (``KNOWN_FAILURES.txt``); its console script fails in a fresh home
(no ``logs/`` directory), so the smoke command fails at baseline too. Its
``[tool.refactor-tool]`` table names only the smoke command: the package, the session module,
the base manager, the managers' package and the entry point are what the tool finds in the code.

The test copies it to a scratch git repository, checks the baseline, runs
``refactor-tool apply --all --commit`` through the CLI (every gate as expected, exit 0) and
expects the whole suite to pass, the two tests that failed before included.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from refactor_tool.phases import PHASES
from support import clean_env, copy_as_repository, git, known_failures

REPO = Path(__file__).resolve().parent.parent
PROJECT = REPO / "tests" / "projects" / "libris"

pytestmark = [
    pytest.mark.skipif(
        not (PROJECT / "pyproject.toml").is_file(),
        reason="tests/projects/libris is not here",
    ),
    pytest.mark.skipif(
        sorted(PHASES) != [1, 2, 3, 4, 5, 6],
        reason=f"only phases {sorted(PHASES)} are installed",
    ),
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]

def _env() -> dict[str, str]:
    return clean_env("LIBRIS_HOME", "LIBRIS_DATABASE_URL", "LIBRIS_SMTP_URL")


def _node_id(classname: str, name: str, root: Path) -> str:
    parts = classname.split(".")
    for i in range(len(parts), 0, -1):
        candidate = Path(*parts[:i]).with_suffix(".py")
        if (root / candidate).is_file():
            return "::".join([candidate.as_posix(), *parts[i:], name])
    return "::".join([classname.replace(".", "/"), name])


def _run_suite(
    root: Path, junit: Path
) -> tuple[subprocess.CompletedProcess[str], int, set[str]]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={junit}",
        ],
        cwd=root,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert junit.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    failing: set[str] = set()
    total = 0
    for case in ET.parse(junit).getroot().iter("testcase"):
        total += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failing.add(_node_id(case.get("classname", ""), case.get("name", ""), root))
    return proc, total, failing


@pytest.fixture
def libris(tmp_path: Path) -> Path:
    return copy_as_repository(PROJECT, tmp_path / "libris", "libris before the refactoring")


def test_baseline_fails_exactly_the_known_failures(
    libris: Path, tmp_path: Path
) -> None:
    proc, total, failing = _run_suite(libris, tmp_path / "baseline.xml")
    assert 40 <= total <= 80, proc.stdout[-3000:]
    assert failing == known_failures(PROJECT), proc.stdout[-5000:]


def test_apply_all_then_the_whole_suite_passes(libris: Path, tmp_path: Path) -> None:
    _, _, before = _run_suite(libris, tmp_path / "before.xml")
    assert before == known_failures(PROJECT)

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "refactor_tool",
            "apply",
            "--all",
            "--commit",
            "--target",
            str(libris),
        ],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    assert git(libris, "status", "--porcelain") == ""

    proc, total, failing = _run_suite(libris, tmp_path / "after.xml")
    assert total >= 40
    assert failing == set(), proc.stdout[-5000:]
