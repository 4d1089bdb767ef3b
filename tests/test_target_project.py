"""The bundled target project (target_project/) is in its exact "before" state.

Its own test suite runs in a scratch copy (never inside target_project/) and
must fail exactly the tests listed in target_project/KNOWN_FAILURES.txt; its
CLI must answer ``game list`` on an empty database. The tool's whole run over a
copy (``refactor-tool apply --all``) brings its test modules no lint finding of
the kinds a rewrite can introduce (unused names and imports, unsorted imports)
that the same modules did not have before.
"""

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Set

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET = REPO_ROOT / "target_project"
MIN_TESTS = 120


def _copy_target(tmp_path: Path) -> Path:
    dest = tmp_path / "target_project"
    shutil.copytree(
        TARGET,
        dest,
        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc", "*.db", ".venv"),
    )
    return dest


def _clean_env(tmp_path: Path) -> Dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_PLUGINS", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["SOLOGM_HOME"] = str(tmp_path / "sologm-home")
    env.pop("SOLOGM_DATABASE_URL", None)
    return env


def read_known_failures() -> Set[str]:
    lines = (TARGET / "KNOWN_FAILURES.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.strip().startswith("#")}


def _node_id(classname: str, name: str, root: Path) -> str:
    """Turn JUnit's ``pkg.mod.Class`` + ``name`` into ``pkg/mod.py::Class::name``."""
    parts = classname.split(".")
    # Longest dotted prefix that is a module file; the rest are classes.
    for i in range(len(parts), 0, -1):
        candidate = Path(*parts[:i]).with_suffix(".py")
        if (root / candidate).is_file():
            return "::".join([candidate.as_posix(), *parts[i:], name])
    return "::".join([classname.replace(".", "/"), name])


def _run_suite(copy: Path, tmp_path: Path):
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"],
        cwd=copy,
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert junit.exists(), f"pytest wrote no JUnit XML\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    failing: Set[str] = set()
    total = 0
    for case in ET.parse(junit).getroot().iter("testcase"):
        total += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failing.add(_node_id(case.get("classname", ""), case.get("name", ""), copy))
    return proc, total, failing


def test_known_failures_file_is_short():
    known = read_known_failures()
    assert 1 <= len(known) <= 5
    for node in known:
        path = node.split("::", 1)[0]
        assert (TARGET / path).is_file(), node


def test_target_suite_fails_exactly_the_known_failures(tmp_path):
    copy = _copy_target(tmp_path)
    proc, total, failing = _run_suite(copy, tmp_path)

    assert total >= MIN_TESTS, f"only {total} tests ran\n{proc.stdout[-3000:]}"
    assert proc.returncode == 1, proc.stdout[-3000:]
    known = read_known_failures()
    assert failing == known, (
        f"unexpected failures: {sorted(failing - known)}\n"
        f"known failures that passed: {sorted(known - failing)}\n{proc.stdout[-5000:]}"
    )


def test_target_cli_game_list_on_empty_database(tmp_path):
    copy = _copy_target(tmp_path)
    env = _clean_env(tmp_path)
    env["SOLOGM_DATABASE_URL"] = f"sqlite:///{tmp_path / 'empty.db'}"
    proc = subprocess.run(
        [sys.executable, "-m", "sologm", "game", "list"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "No games found" in proc.stdout
    assert (tmp_path / "empty.db").exists()


def test_target_cli_uses_sologm_home_by_default(tmp_path):
    copy = _copy_target(tmp_path)
    env = _clean_env(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "sologm", "game", "list"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "No games found" in proc.stdout
    assert (Path(env["SOLOGM_HOME"]) / "sologm.db").exists()


@pytest.mark.parametrize(
    "classname,name,expected",
    [
        (
            "sologm.core.tests.test_event.TestEventManager",
            "test_add_event_with_active_scene",
            "sologm/core/tests/test_event.py::TestEventManager::test_add_event_with_active_scene",
        ),
        (
            "sologm.core.tests.test_game",
            "test_slugify[Simple-simple]",
            "sologm/core/tests/test_game.py::test_slugify[Simple-simple]",
        ),
    ],
)
def test_node_id_from_junit(classname, name, expected):
    assert _node_id(classname, name, TARGET) == expected


# the findings a rewrite of test code can introduce: an unused local or import, an unsorted
# import block, a name defined twice
LINT_CODES = "F841,I001,F401,F811"


def _ruff() -> list:
    from codemods.phase6 import ruff_command

    return ruff_command()


def _lint(root: Path, rels) -> dict[str, set[tuple]]:
    """rel -> {(code, message)} of ``ruff check`` with its defaults (no configuration)."""
    proc = subprocess.run(
        [*_ruff(), "check", "--isolated", "--select", LINT_CODES, "--output-format",
         "json", "--exit-zero", *rels],
        cwd=root,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    found: dict[str, set[tuple]] = {rel: set() for rel in rels}
    for item in json.loads(proc.stdout):
        rel = Path(item["filename"]).resolve().relative_to(root.resolve()).as_posix()
        found[rel].add((item["code"], item["message"]))
    return found


def test_the_rewrite_brings_no_new_lint_findings(tmp_path):
    copy = _copy_target(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "refactor_tool", "apply", "--all", "--no-verify",
         "--target", str(copy)],
        cwd=REPO_ROOT,
        env=_clean_env(tmp_path),
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    changed = sorted(
        path.relative_to(copy).as_posix()
        for path in copy.rglob("*.py")
        if "tests" in path.relative_to(copy).parts
        and (TARGET / path.relative_to(copy)).is_file()
        and path.read_bytes() != (TARGET / path.relative_to(copy)).read_bytes()
    )
    assert changed, "the run changed no test module"
    before = _lint(_copy_target(tmp_path / "original"), changed)
    after = _lint(copy, changed)
    new = {rel: sorted(after[rel] - before[rel]) for rel in changed if after[rel] - before[rel]}
    assert not new, new
