"""What one phase leaves for a later one, kept between runs in ``.refactor-tool/state.json``.

Phase 4 deletes fixtures that phase 5 still has to inline; the CLI remembers which files the
refactoring changed so that phase 6 formats only those, and which phases it applied with their
gate's verdict, so that ``status`` can tell a phase whose work left nothing for its codemods to
find (applied) from one that never had anything to do (n/a). Nothing here is part of the target's
diff: the file lives beside the baseline, in a directory git is told to ignore.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fixtures import REMOVED_KINDS, FixtureGraph, is_old_style
from .project import Project

STATE_DIR = Project.STATE_DIR
STATE_FILE = "state.json"


#: a phase's gate verdict as the run state records it
GATE_PASSED = "passed"
GATE_FAILED = "failed"
GATE_NOT_VERIFIED = "not verified"
GATE_VERDICTS = (GATE_PASSED, GATE_FAILED, GATE_NOT_VERIFIED)


@dataclass
class AppliedPhase:
    """A phase ``apply`` wrote, with the verdict of its last gate."""

    #: the steps the runs applied (every mechanical step once the whole phase ran)
    steps: list[str] = field(default_factory=list)
    #: passed, failed or not verified (``--no-verify``, or the gate has not run yet)
    gate: str = GATE_NOT_VERIFIED
    #: one line saying why the gate failed ("" otherwise)
    reason: str = ""
    #: the manual-attention items the phase reported: (path, message) each
    reported: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": sorted(self.steps),
            "gate": self.gate,
            "reason": self.reason,
            "reported": [list(item) for item in self.reported],
        }

    @classmethod
    def from_json(cls, data: Any) -> AppliedPhase | None:
        if not isinstance(data, dict):
            return None
        steps = data.get("steps")
        gate = data.get("gate")
        reason = data.get("reason")
        reported = data.get("reported")
        return cls(
            steps=[s for s in steps if isinstance(s, str)] if isinstance(steps, list) else [],
            gate=gate if gate in GATE_VERDICTS else GATE_NOT_VERIFIED,
            reason=reason if isinstance(reason, str) else "",
            reported=[
                (item[0], item[1])
                for item in (reported if isinstance(reported, list) else ())
                if isinstance(item, list)
                and len(item) == 2
                and all(isinstance(x, str) for x in item)
            ],
        )


@dataclass
class RunState:
    #: the fixture graph as it was before phase 4 removed the old fixtures
    fixture_graph: FixtureGraph | None = None
    #: every file the refactoring wrote so far (relative POSIX paths)
    changed_files: list[str] = field(default_factory=list)
    #: the commit the refactoring started from, where the target is a git repository
    base_commit: str | None = None
    #: the phases ``apply`` wrote, by number, with their gate's verdict
    applied: dict[int, AppliedPhase] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "fixture_graph": self.fixture_graph.to_json() if self.fixture_graph else None,
            "changed_files": sorted(self.changed_files),
            "base_commit": self.base_commit,
            "applied": {str(n): a.to_json() for n, a in sorted(self.applied.items())},
        }

    @classmethod
    def from_json(cls, data: Any) -> RunState:
        if not isinstance(data, dict):
            return cls()
        files = data.get("changed_files")
        base = data.get("base_commit")
        applied: dict[int, AppliedPhase] = {}
        raw = data.get("applied")  # absent from state files written before it was kept
        for key, value in raw.items() if isinstance(raw, dict) else ():
            record = AppliedPhase.from_json(value)
            if isinstance(key, str) and key.isdigit() and record is not None:
                applied[int(key)] = record
        return cls(
            fixture_graph=FixtureGraph.from_json(data.get("fixture_graph")),
            changed_files=[f for f in files if isinstance(f, str)] if isinstance(files, list) else [],
            base_commit=base if isinstance(base, str) else None,
            applied=applied,
        )

    def record_applied(
        self, number: int, steps: list[str], reported: Iterable[tuple[str, str]] = ()
    ) -> None:
        """Phase ``number`` (these of its steps) was written, reporting ``reported`` (path,
        message) for a person; its gate has not spoken yet."""
        record = self.applied.setdefault(number, AppliedPhase())
        record.steps = sorted(set(record.steps) | set(steps))
        record.gate, record.reason = GATE_NOT_VERIFIED, ""
        record.reported = list(dict.fromkeys([*record.reported, *reported]))

    def reported(self) -> list[tuple[str, str]]:
        """Every manual-attention item (path, message) of the phases written so far."""
        return [item for n in sorted(self.applied) for item in self.applied[n].reported]

    def record_gate(self, number: int, ok: bool, reason: str = "") -> None:
        """The verdict of phase ``number``'s gate, for a phase the runs applied."""
        record = self.applied.get(number)
        if record is not None:
            record.gate = GATE_PASSED if ok else GATE_FAILED
            record.reason = "" if ok else reason


def load_state(root: Path) -> RunState:
    """The state saved under ``root`` (an empty one when there is none or it is unreadable)."""
    try:
        text = (Path(root) / STATE_DIR / STATE_FILE).read_text(encoding="utf-8")
        return RunState.from_json(json.loads(text))
    except (OSError, ValueError):
        return RunState()


def save_state(root: Path, state: RunState) -> None:
    """Write ``state`` under ``root`` atomically."""
    folder = Path(root) / STATE_DIR
    folder.mkdir(exist_ok=True)
    tmp = folder / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, folder / STATE_FILE)


def state_of(project: Project) -> RunState:
    """The run state of ``project``: loaded once, then shared by every phase of the run
    (runs that write nothing keep it in memory only)."""
    if not isinstance(project.run_state, RunState):
        project.run_state = load_state(project.root)
    return project.run_state


def record_fixture_graph(project: Project, graph: FixtureGraph) -> None:
    """Keep the graph of the old fixtures for phase 5, unless a fuller record is there."""
    if not is_old_style(graph):
        return
    state = state_of(project)
    existing = state.fixture_graph
    if existing is not None and existing.count(REMOVED_KINDS) > graph.count(REMOVED_KINDS):
        return
    state.fixture_graph = graph
