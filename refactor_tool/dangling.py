"""No phase writes a tree with a dangling name, fixture request, or a manager built without
its session.

Before anything is written, every phase's output is compared with its input, in memory: a
name that ruff's F821 ("undefined name") reports in a changed file after the phase, and not
as often before it, is one the phase left dangling (a variable of a removed helper still read
in a log message, a fixture parameter dropped while the body still reads it). Such a phase is
a bug in one of its rules: the run stops before writing, with file:line for each name.

The comparison is what makes the check safe on any project: names ruff cannot see defined
before the phase (star imports, names injected at run time) are the same after it.

Likewise for fixtures: a run that ends with phase 4 leaves no fixture requesting one that
nothing defines any more, and one that ends with phase 5 or later no test either (between
the two, tests asking for the fixtures phase 4 deleted are what phase 5 rewrites; phase 4's
gate expects them to fail), where the request was answered before the run.

And for the session a manager now requires (phase 2): after each phase, no application
module (test code is rewritten by phases 4 and 5, and its gates expect it to fail until
then) may construct a manager without the session its constructor requires, where the call
worked before the phase (the session was optional then) or the phase wrote it.
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
from .model.fixtures import unresolved_requests
from .model.managers import (
    ManagerGraph,
    analyze_managers,
    calls_without_session,
    is_test_path,
)
from .model.project import InputError, Project, location
from .model.syntax import line_of


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


@dataclass(frozen=True)
class SessionlessCall:
    phase: int
    path: str
    line: int | None
    manager: str

    def __str__(self) -> str:
        return (
            f"{location(self.path, self.line)}: phase {self.phase} would leave `{self.manager}(...)` without the "
            "session its constructor requires"
        )


def _requires_session(graph: ManagerGraph | None) -> dict[str, bool]:
    """Manager qualified name -> whether its constructor requires the session."""
    if graph is None:
        return {}
    session = graph.config.session_variable
    out = {}
    for cls in graph.classes.values():
        params = graph.init_params(cls)
        out[cls.qualified] = any(p.name == session and not p.has_default for p in params)
    return out


def _managers(project: Project) -> ManagerGraph | None:
    try:
        return analyze_managers(project)
    except InputError:
        return None


def _may_change_managers(graph: ManagerGraph | None, changes: Sequence[FileChange]) -> bool:
    """Whether the manager classes can differ after ``changes``: a file the analysis read
    changed, or a changed file defines a class that may derive from a manager."""
    if graph is None:
        return True
    names = [c.name.encode() for c in graph.classes.values()]
    for change in changes:
        if change.path in graph.scanned or change.path in graph.by_rel:
            return True
        new = change.new or b""
        if b"class " in new and any(n in new for n in names):
            return True
    return False


def _may_write_calls(graph: ManagerGraph | None, change: FileChange, session: str) -> bool:
    """Whether ``change`` may write a manager call without the session: it adds a call of a
    manager class by name, or takes away a mention of the session."""
    if change.new is None or graph is None:
        return False
    old = change.old or b""
    if change.new.count(session.encode()) < old.count(session.encode()):
        return True
    return any(
        change.new.count(call) > old.count(call)
        for call in {f"{c.name}(".encode() for c in graph.classes.values()}
    )


def sessionless_manager_calls(
    base: Project, phases: Sequence[tuple[int, Iterable[FileChange]]]
) -> list[SessionlessCall]:
    """Application code each phase leaves constructing a manager without its session."""
    out: list[SessionlessCall] = []
    overlay: dict[str, bytes | None] = dict(base.overlay)
    session = base.config.session_variable
    graph = _managers(base)
    before = _requires_session(graph)
    for number, changes in phases:
        changes = [c for c in changes if c.path.endswith(".py")]
        for change in changes:
            overlay[change.path] = change.new
        after_project = Project(base.root, base.config, dict(overlay))
        after_project.share_caches(base)
        if _may_change_managers(graph, changes):
            graph = _managers(after_project)
        after = _requires_session(graph)
        written = {c.path for c in changes if _may_write_calls(graph, c, session)}
        newly = {q for q, required in after.items() if required and not before.get(q, False)}
        # a constructor that now requires the session is checked everywhere; otherwise only
        # the calls the phase wrote
        candidates = [
            rel
            for rel in (after_project.python_files() if newly else sorted(written))
            if not is_test_path(rel)
        ]
        for rel in candidates if graph is not None else ():
            for call, cls in calls_without_session(after_project, graph, rel):
                if cls.qualified in newly or rel in written:
                    line = line_of(after_project.parse(rel), call)
                    out.append(SessionlessCall(number, rel, line, cls.name))
        before = after
    return out


#: the first phase after which no fixture, and the first after which no test, may request a
#: fixture nothing defines (docs/plan.md: phase 4 rewrites the conftests, phase 5 the tests)
FIXTURES_SETTLED, TESTS_SETTLED = 4, 5


@dataclass(frozen=True)
class DanglingRequest:
    phase: int
    request: str

    def __str__(self) -> str:
        return f"{self.request} (after phase {self.phase})"


def dangling_fixture_requests(
    base: Project, phases: Sequence[tuple[int, Iterable[FileChange]]]
) -> list[DanglingRequest]:
    """Fixture requests the run leaves unanswered that were answered before it.

    The tree the run ends with is checked (a request a phase leaves dangling stays so: no
    later phase adds fixtures), against what the last phase of the run settles: the
    fixtures' requests from phase 4 on, the tests' from phase 5 on.
    """
    last = max((number for number, _ in phases), default=0)
    if last < FIXTURES_SETTLED:
        return []
    overlay: dict[str, bytes | None] = dict(base.overlay)
    for _, changes in phases:
        for change in changes:
            overlay[change.path] = change.new
    after_project = Project(base.root, base.config, overlay)
    after_project.share_caches(base)
    after = [
        r
        for r in unresolved_requests(after_project)
        if not (r.from_test and last < TESTS_SETTLED)
    ]
    if not after:
        return []
    before = {(r.rel, r.by, r.name) for r in unresolved_requests(base)}
    return [
        DanglingRequest(last, str(r)) for r in after if (r.rel, r.by, r.name) not in before
    ]
