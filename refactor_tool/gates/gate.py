"""A phase's gate: run (or reuse) the suite, run again alone what failed only in parallel,
judge against the baseline, and add the phase's commands and checks.

No run that cannot change a verdict: a phase whose changes are proven not to change behaviour
(every changed file is a Python module whose syntax tree is the same before and after, once
comments and formatting are set aside, a docstring being part of the tree; every created
module is one nothing in the target can make run) is judged on the previous run of the
suite, taken on the tree just before the phase. Any other phase runs the whole suite.
"""

from __future__ import annotations

import ast
import re
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..model.imports import referrers
from ..model.project import Project
from ..model.state import load_state
from .baseline import (
    Baseline,
    LastRun,
    app_hash,
    load_last_run,
    preload_modules,
    run_suite_and_smoke,
    save_last_run,
    tree_hash,
)
from .commands import run_factory_check
from .dbusage import analyze_db_usage
from .judge import GateResult, check_as_dict, judge, judge_command
from .results import SuiteRun, TestOutcome
from .runner import SuiteProgress, run_suite

#: label ("phase 3", "phase 3: again alone"), progress
GateProgress = Callable[[str, SuiteProgress], None]


class ChangedFile(Protocol):
    path: str
    old: bytes | None
    new: bytes | None


@dataclass
class Unchanged:
    """Why a phase's changes cannot change behaviour (``proven``), or why they might."""

    proven: bool
    files: int
    reason: str


def _tree(source: bytes) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like
            return ast.dump(ast.parse(source))
    except (SyntaxError, ValueError):
        return None


def behaviour_unchanged(
    phase: int, changes: Iterable[ChangedFile], project: Project | None = None
) -> Unchanged:
    """Whether the phase's changes cannot change what the suite does.

    Proven when every changed Python module has the same syntax tree as before, and every
    module the phase created is one nothing in the target (``project``, the tree after the
    phase) can make run: no import, no string naming it, no entry point, not collected by
    pytest (:func:`refactor_tool.model.imports.referrers`).
    """
    changes = list(changes)
    if not changes:
        return Unchanged(True, 0, f"phase {phase} changed no file")
    created: list[str] = []
    formatted = 0
    for change in changes:
        if not change.path.endswith(".py"):
            return Unchanged(
                False, len(changes), f"{change.path} is not a Python module"
            )
        if change.new is None:
            return Unchanged(False, len(changes), f"phase {phase} deleted {change.path}")
        if change.old is None:
            if project is None:
                return Unchanged(
                    False, len(changes), f"phase {phase} created {change.path}"
                )
            found = referrers(project, change.path)
            if found:
                return Unchanged(
                    False,
                    len(changes),
                    f"phase {phase} created {change.path}, which can run ({found[0]})",
                )
            created.append(change.path)
            continue
        before, after = _tree(change.old), _tree(change.new)
        if before is None or after is None or before != after:
            return Unchanged(
                False, len(changes), f"{change.path}: its statements changed"
            )
        formatted += 1
    parts = []
    if formatted:
        parts.append(
            f"changed only comments and formatting in {formatted} "
            f"file{'s' if formatted != 1 else ''}"
        )
    if created:
        parts.append(
            f"created {', '.join(created)}, which nothing in the target imports or names "
            "(and pytest does not collect)"
        )
    return Unchanged(True, len(changes), f"phase {phase} " + " and ".join(parts))


#: the first name in backquotes of a message: ``name`` or a call of it, ``Name(...)``
_NAMED = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)(?:\(\.\.\.\))?`")


def left_for_a_person(failure: Any, reported: Sequence[tuple[str, str]]) -> bool:
    """Whether an end-state ``failure`` (path, line, message) is in code the refactoring
    reported for a person: a manual-attention item of the same file names the fixture or
    test the failure names (the first name in backquotes of its message)."""
    if isinstance(failure, dict):
        path, message = failure.get("path"), failure.get("message")
    elif isinstance(failure, (list, tuple)) and len(failure) == 3:
        path, _, message = failure
    else:
        return False
    if not isinstance(path, str) or not isinstance(message, str):
        return False
    found = _NAMED.search(message)
    if found is None:
        return False
    if _names_in(found.group(1), [m for p, m in reported if p == path]):
        return True
    # a test that uses the database only through fixtures the run kept, each reported
    # (``uses the database (a, b) outside ...``)
    used = _USES.search(message)
    if used is None:
        return False
    fixtures = [n.strip() for n in used.group(1).split(",") if n.strip()]
    messages = [m for _, m in reported]
    return bool(fixtures) and all(_names_in(f"'{n}'", messages) for n in fixtures)


_USES = re.compile(r"uses the database \(([^)]*)\)")


def _names_in(name: str, messages: Sequence[str]) -> bool:
    word = re.compile(rf"(?<![\w]){re.escape(name)}(?![\w])")
    return any(word.search(m) for m in messages)


def _rerun_candidates(
    gate: GateResult, current: SuiteRun, baseline: Baseline
) -> list[str]:
    """Tests a parallel run blames on the phase that passed at baseline: run them again alone."""
    ids = []
    for change in gate.changes:
        if not change.bad:
            continue
        now = current.tests.get(change.id)
        before = baseline.suite.tests.get(change.id)
        if now is None or now.collection or now.ok or before is None or not before.ok:
            continue
        ids.append(change.id)
    return ids


def _merge_alone(current: SuiteRun, alone: SuiteRun, ids: Sequence[str]) -> None:
    for test_id in ids:
        parallel = current.tests[test_id]
        result = alone.tests.get(test_id)
        if result is None:
            continue  # not run alone (deselected, or a collection error): the parallel result stands
        if result.ok:
            current.tests[test_id] = TestOutcome(
                test_id,
                result.outcome,
                message=f"failed in the parallel run ({parallel.message}); passes alone",
                order_dependent=True,
                parallel=parallel.state,
            )
        else:
            current.tests[test_id] = result


def run_gate(
    project: Project,
    phase: int,
    title: str,
    baseline: Baseline,
    python: str,
    *,
    jobs: int = 1,
    mode: str = "auto",
    changes: Sequence[ChangedFile] | None = None,
    checks: Callable[[Project], list[Any]] | None = None,
    on_step: Callable[[str], None] | None = None,
    progress: GateProgress | None = None,
) -> GateResult:
    """Run phase ``phase``'s verification on the tree as it is on disk now.

    ``changes``: what the phase wrote (its files' bytes before and after), if known: a phase
    proven not to change behaviour is judged on the previous run. ``checks``: the end-state
    invariants (phase 6), as ``refactor-tool check`` runs them.
    """
    started = time.monotonic()
    root = project.root
    config = project.config
    current_tree = tree_hash(project)
    reused_from: str | None = None
    smoke_note = ""
    app = ""
    previous = load_last_run(root)
    # the end-state invariants read the tree on disk, as the suite does: they are checked
    # while it runs
    pool = ThreadPoolExecutor(max_workers=1)
    pending_checks = (
        pool.submit(checks, project) if phase == 6 and checks is not None else None
    )
    unchanged = (
        behaviour_unchanged(phase, changes, project) if changes is not None else None
    )
    if (
        unchanged is not None
        and unchanged.proven
        and previous is not None
        and previous.python == python
        and previous.tree == tree_hash(project, {c.path: c.old for c in changes or ()})
    ):
        current, smoke = previous.suite, previous.smoke
        reused_from = previous.source
    else:
        app = app_hash(project)
        stands = (
            previous is not None and previous.python == python and previous.app == app
        )
        if on_step:
            on_step(f"phase {phase}: running the target's tests")
        current, smoke = run_suite_and_smoke(
            project,
            python,
            jobs=jobs,
            mode=mode,
            weights=baseline.suite.module_seconds or None,
            progress=(lambda p: progress(f"phase {phase}", p)) if progress else None,
            smoke=previous.smoke if stands and previous is not None else None,
        )
        if stands and previous is not None:
            smoke_note = (
                "smoke: not run again: the application's modules are as they were for "
                f"{previous.source}, whose result stands"
            )
    db_now = analyze_db_usage(project)
    gate = judge(phase, title, baseline, current, db_now, load_state(root).reported())
    if reused_from is None and current.jobs > 1:
        again = _rerun_candidates(gate, current, baseline)
        if again:
            if on_step:
                on_step(f"phase {phase}: running {len(again)} test(s) again alone")
            alone = run_suite(
                root,
                python,
                config,
                jobs=1,
                select=again,
                preload=preload_modules(project),
                progress=(lambda p: progress(f"phase {phase}: again alone", p))
                if progress
                else None,
            )
            _merge_alone(current, alone, again)
            gate = judge(phase, title, baseline, current, db_now, load_state(root).reported())
    if reused_from is not None:
        assert unchanged is not None
        gate.reused = f"reused the previous run: {unchanged.reason}"
        gate.run = f"the run of {reused_from}"
        gate.messages.insert(
            0, f"{gate.reused} (the run of {reused_from} stands for this one)"
        )
        # the run stands for this tree too: a later phase that changes only comments and
        # formatting again can reuse it as well
        save_last_run(
            root,
            LastRun(
                current, smoke, current_tree, python, reused_from, app_hash(project)
            ),
        )
    else:
        gate.run = current.how
        current.tree = current_tree
        save_last_run(
            root,
            LastRun(current, smoke, current_tree, python, f"phase {phase}'s gate", app),
        )
    if smoke_note:
        gate.messages.append(smoke_note)
    judge_command(gate, smoke, baseline.smoke)
    if phase == 3:
        if on_step:
            on_step("phase 3: calling the factory on a real session")
        judge_command(
            gate,
            run_factory_check(root, python, config, preload_modules(project)),
            None,
        )
    if phase == 6:
        if checks is None:
            gate.messages.append("check: not available in this installation")
        else:
            if on_step:
                on_step("phase 6: checking the end-state invariants")
            assert pending_checks is not None
            results = [check_as_dict(r) for r in pending_checks.result()]
            gate.checks = results
            reported = load_state(root).reported()
            failing = [
                c
                for c in results
                if not c["ok"]
                and not all(left_for_a_person(f, reported) for f in c.get("failures", ()))
            ]
            left = sum(
                1
                for c in results
                if not c["ok"]
                for f in c.get("failures", ())
                if left_for_a_person(f, reported)
            )
            if left:
                gate.messages.append(
                    f"check: {left} place(s) still differ from the end state where the "
                    "refactoring reported code for a person to rewrite (see the "
                    "manual-attention items and `refactor-tool check`)"
                )
            if failing:
                gate.problems.append(
                    f"{len(failing)} end-state invariant(s) fail (see `refactor-tool check`)"
                )
                gate.verdict = "failed"
    pool.shutdown(wait=True)
    gate.duration = time.monotonic() - started
    return gate
