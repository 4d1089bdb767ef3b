"""The few git operations the tool needs: is the tree clean, commit a phase, hide the tool's state.

Everything goes through the ``git`` command line (no library), with messages a person can act
on when git is missing or the target is not a repository.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from .model.project import Project

STATE_PATTERN = f"{Project.STATE_DIR}/"
FALLBACK_IDENTITY = ("refactor-tool", "refactor-tool@localhost")


class GitError(Exception):
    """A git command failed; the message says which and why."""


def git_available() -> bool:
    return shutil.which("git") is not None


def _git(
    root: Path, *args: str, check: bool = True, identity: bool = False
) -> subprocess.CompletedProcess[str]:
    prefix: list[str] = []
    if identity:
        prefix = _identity_args(root)
    try:
        proc = subprocess.run(
            ["git", *prefix, *args],
            check=False,
            cwd=root,
            capture_output=True,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise GitError(f"cannot run git: {exc}") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise GitError(
            f"git {' '.join(args[:2])} failed in {root}: {detail[-1] if detail else proc.returncode}"
        )
    return proc


def _identity_args(root: Path) -> list[str]:
    """``-c user.name=... -c user.email=...`` when the repository has no identity configured."""
    args: list[str] = []
    for key, fallback in zip(("user.name", "user.email"), FALLBACK_IDENTITY):
        if _git(root, "config", key, check=False).returncode != 0:
            args += ["-c", f"{key}={fallback}"]
    return args


def repo_root(path: Path) -> Path | None:
    """The top of the git work tree containing ``path``, or None (not a repo / no git)."""
    if not git_available():
        return None
    proc = _git(Path(path), "rev-parse", "--show-toplevel", check=False)
    if proc.returncode != 0:
        return None
    return Path(proc.stdout.strip()).resolve()


def head(path: Path) -> str | None:
    proc = _git(Path(path), "rev-parse", "--verify", "-q", "HEAD", check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def dirty_files(path: Path) -> list[str]:
    """``git status --porcelain`` lines under ``path``, ignoring the tool's own state directory."""
    proc = _git(Path(path), "status", "--porcelain", "--untracked-files=all", "--", ".")
    lines = []
    for line in proc.stdout.splitlines():
        name = line[3:]
        if f"{Project.STATE_DIR}/" in name or name.endswith(Project.STATE_DIR):
            continue
        lines.append(line)
    return lines


def changed_paths(path: Path) -> set[str]:
    """The files under ``path`` that differ from HEAD, staged or not, or are untracked, as
    POSIX paths relative to ``path`` (the tool's own state directory left out)."""
    root = Path(path)
    prefix = _git(root, "rev-parse", "--show-prefix").stdout.strip()
    proc = _git(root, "status", "--porcelain", "-z", "--untracked-files=all", "--", ".")
    found: list[str] = []
    fields = iter(proc.stdout.split("\0"))
    for entry in fields:
        if len(entry) < 4:
            continue
        found.append(entry[3:])
        if "R" in entry[:2] or "C" in entry[:2]:
            found.append(next(fields, ""))  # a rename's or copy's source follows it
    names: set[str] = set()
    for name in found:
        if not name.startswith(prefix):
            continue
        name = name[len(prefix) :]
        if name and name != Project.STATE_DIR and not name.startswith(f"{Project.STATE_DIR}/"):
            names.add(name)
    return names


def ensure_excluded(path: Path) -> bool:
    """List ``.refactor-tool/`` in the repository's ``info/exclude`` (never in a tracked file).

    Returns True if the target is in a git repository (whether or not the line was added now).
    """
    if repo_root(path) is None:
        return False
    proc = _git(Path(path), "rev-parse", "--git-path", "info/exclude", check=False)
    if proc.returncode != 0:
        return False
    exclude = Path(proc.stdout.strip())
    if not exclude.is_absolute():
        exclude = (Path(path) / exclude).resolve()
    try:
        existing = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
    except OSError:
        return True
    if any(
        line.strip() in (STATE_PATTERN, f"/{STATE_PATTERN}", Project.STATE_DIR)
        for line in existing.splitlines()
    ):
        return True
    exclude.parent.mkdir(parents=True, exist_ok=True)
    prefix = "" if not existing or existing.endswith("\n") else "\n"
    with exclude.open("a", encoding="utf-8") as handle:
        handle.write(
            f"{prefix}# refactor-tool's baseline and state (never committed)\n{STATE_PATTERN}\n"
        )
    return True


def commit(path: Path, relpaths: Sequence[str], message: str) -> str:
    """Commit exactly ``relpaths`` (relative to ``path``) with ``message``; return the new HEAD.

    Only these paths are staged and committed (``git commit --only``), so unrelated changes a
    user allowed with ``--allow-dirty`` stay out of the phase's commit.
    """
    root = Path(path)
    if not relpaths:
        raise GitError("nothing to commit")
    _git(root, "add", "-A", "--", *relpaths)
    _git(root, "commit", "-q", "--only", "-m", message, "--", *relpaths, identity=True)
    return head(root) or ""


def init_and_commit(path: Path, message: str) -> str:
    """``git init`` a directory and commit everything in it (the demo's scratch copy)."""
    root = Path(path)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", message, identity=True)
    return head(root) or ""


def log_oneline(path: Path, count: int = 10) -> list[str]:
    proc = _git(Path(path), "log", "--oneline", f"-{count}", check=False)
    return proc.stdout.splitlines()


def changed_since(path: Path, rev: str) -> Iterable[str]:
    proc = _git(Path(path), "diff", "--name-only", rev, check=False)
    return proc.stdout.splitlines()
