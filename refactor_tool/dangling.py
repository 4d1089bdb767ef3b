"""No phase writes a tree with a dangling name.

Before anything is written, every phase's output is compared with its input, in memory: a
name that ruff's F821 ("undefined name") reports in a changed file after the phase, and not
as often before it, is one the phase left dangling (a variable of a removed helper still read
in a log message, a fixture parameter dropped while the body still reads it). Such a phase is
a bug in one of its rules: the run stops before writing, with file:line for each name.

The comparison is what makes the check safe on any project: names ruff cannot see defined
before the phase (star imports, names injected at run time) are the same after it.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from codemods.phase6 import ruff_command

from .model.changes import FileChange


@dataclass(frozen=True)
class DanglingName:
    phase: int
    path: str
    line: int
    name: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: phase {self.phase} would leave `{self.name}` undefined"


def undefined_names(files: dict[str, bytes]) -> dict[str, list[tuple[int, str]]]:
    """ruff's F821 findings per file (path -> [(line, name)]), for contents held in memory;
    in a module with a star import, ruff's F405 (a name that may come from it) stands for
    F821.

    One ruff run over a scratch copy of the files (their relative paths kept), with no
    configuration of the target's: the same rule set before and after a phase.
    """
    found: dict[str, list[tuple[int, str]]] = {rel: [] for rel in files}
    if not files:
        return found
    with tempfile.TemporaryDirectory(prefix="refactor-tool-names-") as tmp:
        root = Path(tmp)
        for rel, data in files.items():
            path = root / PurePosixPath(rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        proc = subprocess.run(
            [
                *ruff_command(),
                "check",
                "--isolated",
                "--no-cache",
                "--select",
                "F821,F405",
                "--output-format",
                "json",
                "--exit-zero",
                ".",
            ],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"ruff could not check for undefined names: {proc.stderr.strip()}"
            )
        for item in json.loads(proc.stdout or "[]"):
            rel = (
                Path(item["filename"]).resolve().relative_to(root.resolve()).as_posix()
            )
            message = str(item.get("message", ""))
            name = message.split("`")[1] if message.count("`") >= 2 else message
            found.setdefault(rel, []).append((int(item["location"]["row"]), name))
    return found


def _key(index: int, side: str, rel: str) -> str:
    return f"{index}/{side}/{rel}"


def dangling_names(
    phases: Sequence[tuple[int, Iterable[FileChange]]],
) -> list[DanglingName]:
    """Names each phase leaves undefined in the Python files it changes (see the module)."""
    files: dict[str, bytes] = {}
    checked: list[tuple[int, int, FileChange]] = []
    for index, (number, changes) in enumerate(phases):
        for change in changes:
            if not change.path.endswith(".py") or change.new is None:
                continue
            checked.append((index, number, change))
            files[_key(index, "new", change.path)] = change.new
            if change.old is not None:
                files[_key(index, "old", change.path)] = change.old
    found = undefined_names(files)
    out: list[DanglingName] = []
    for index, number, change in checked:
        before = Counter(
            name for _, name in found.get(_key(index, "old", change.path), [])
        )
        after = found.get(_key(index, "new", change.path), [])
        extra = Counter(name for _, name in after) - before
        for line, name in after:
            if extra[name] > 0:
                out.append(DanglingName(number, change.path, line, name))
        # every occurrence of a name that became (more often) undefined is shown: the reader
        # cannot tell which of them the phase added
    return out
