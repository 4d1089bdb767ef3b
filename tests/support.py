"""Helpers the end-to-end tests on whole projects share."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

#: what a copy of a project leaves out
IGNORE = shutil.ignore_patterns(
    "__pycache__", ".pytest_cache", ".refactor-tool", "*.egg-info", "*.db"
)


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` as a throwaway author; its output."""
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def clean_env(*drop: str) -> dict[str, str]:
    """This process's environment for a project's suite: wide output, no bytecode files, and
    none of pytest's own or the project's variables (``drop``) that could change its run."""
    env = dict(os.environ, COLUMNS="200", PYTHONDONTWRITEBYTECODE="1")
    for name in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", *drop):
        env.pop(name, None)
    return env


def known_failures(project: Path) -> set[str]:
    """The node ids ``KNOWN_FAILURES.txt`` of ``project`` lists (``#`` lines are comments)."""
    lines = (project / "KNOWN_FAILURES.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")}


def copy_as_repository(project: Path, dest: Path, message: str) -> Path:
    """``project`` copied to ``dest`` as a new git repository with one commit."""
    shutil.copytree(project, dest, ignore=IGNORE)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", message)
    return dest
