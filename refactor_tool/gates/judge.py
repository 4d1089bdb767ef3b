"""Judging a run of the target's suite against the baseline, under a phase's expectation.

* a test that already failed at baseline is *pre-existing*, never blamed on the phase;
* a test that failed at baseline and passes now is *fixed*;
* a test that failed in a parallel run, passed at baseline and passes when run again alone is
  *order-dependent*: its failure depends on the tests that ran before it in the same process,
  not on the phase, and it is reported as such;
* a test that passed at baseline and fails now is judged by the phase's expectation:

  - phases 1-4 (docs/plan.md: "expect failures"): accepted if the test touches the database and
    the failure is of a kind docs/plan.md names for this phase or an earlier one (phase 1: removed
    session APIs; 2 and 3: also a missing ``session`` argument; 4: also a missing database
    fixture), or of a kind docs/plan.md does not name at all (an assertion, a detached object: the
    plan says such failures "relate to session handling"). A SyntaxError, an ImportError at
    collection, a kind docs/plan.md names only for a later phase (a missing fixture after phase 1),
    a missing fixture that is not a database fixture, or a newly failing test that touches no
    database fails the gate: that is a codemod bug, not an expected consequence of the plan;
  - phases 5 and 6 ("all tests passing"): any test that passed at baseline and does not now
    fails the gate.

Nothing here runs anything: :func:`judge` compares two runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from codemods.phase2 import NO_LONGER_CALLED

from .commands import CommandResult
from .dbusage import DbMap
from .results import KIND_HELP, KINDS, SuiteRun, TestOutcome

if TYPE_CHECKING:
    from .baseline import Baseline

#: failure kinds docs/plan.md names for each phase's "expect failures" verification, cumulative
#: (a phase's tree still has the previous phases' consequences until phase 5 repairs them)
EXPECTED_KINDS: dict[int, frozenset[str]] = {
    1: frozenset({"removed-session-api"}),
    2: frozenset({"removed-session-api", "missing-session"}),
    3: frozenset({"removed-session-api", "missing-session"}),
    4: frozenset({"removed-session-api", "missing-session", "missing-fixture"}),
}
#: phases whose verification is "all tests passing": no test may get worse than at baseline
STRICT_PHASES = frozenset({5, 6})
ALWAYS_UNEXPECTED = frozenset({"syntax-error", "import-error"})
#: the kinds docs/plan.md names; outside the phases that name them they point at a codemod bug
PLAN_KINDS = frozenset().union(*EXPECTED_KINDS.values())


@dataclass
class TestChange:
    __test__ = False

    id: str
    before: str  # state at baseline (passed/skipped/<kind>/not run)
    after: str  # state now
    #: expected | accepted | unexpected | regression | fixed | pre-existing | order-dependent
    #: | reported (left for a person, see ``judge``)
    judgement: str
    message: str = ""

    @property
    def bad(self) -> bool:
        return self.judgement in ("unexpected", "regression")


@dataclass
class GateResult:
    phase: int
    title: str
    expectation: str
    verdict: str = "ok"  # ok | failed
    rows: list[tuple[str, int, int]] = field(
        default_factory=list
    )  # state, baseline, now
    changes: list[TestChange] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    pre_existing: list[str] = field(default_factory=list)
    commands: list[CommandResult] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    duration: float = 0.0
    baseline_taken_at: str = ""
    order_dependent: list[str] = field(default_factory=list)
    #: how the suite ran for this gate ("split by test module over 2 processes", ...), or
    #: why the previous run stands for this one
    run: str = ""
    reused: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "title": self.title,
            "expectation": self.expectation,
            "verdict": self.verdict,
            "counts": [{"state": s, "baseline": b, "now": n} for s, b, n in self.rows],
            "changed_tests": [asdict(c) for c in self.changes],
            "fixed": self.fixed,
            "pre_existing_failures": self.pre_existing,
            "commands": [asdict(c) for c in self.commands],
            "checks": self.checks,
            "problems": self.problems,
            "messages": self.messages,
            "duration": round(self.duration, 3),
            "baseline_taken_at": self.baseline_taken_at,
            "order_dependent": self.order_dependent,
            "run": self.run,
            "reused": self.reused,
        }


def expectation_text(phase: int) -> str:
    if phase in STRICT_PHASES or phase not in EXPECTED_KINDS:
        return "no test that passed at baseline may fail now"
    kinds = ", ".join(sorted(EXPECTED_KINDS[phase]))
    return f"new failures must touch the database and relate to it (expected kinds: {kinds})"


def _covering_collection_error(
    test_id: str, errors: list[TestOutcome]
) -> TestOutcome | None:
    path = test_id.split("::", 1)[0]
    for err in errors:
        if err.id == "" or path == err.id or path.startswith(err.id.rstrip("/") + "/"):
            return err
    return None


#: failures of a test the run reported for a person (its own code calls a removed session
#: API, or builds a manager without the session it requires now, or spies on a session's
#: commit that managers no longer call): not the phase's error. Kind -> (what the note must
#: say, if anything in particular; what the gate says of it)
REPORTED_KINDS = {
    "removed-session-api": (
        "",
        "calls a removed session API itself; reported for a person to rewrite",
    ),
    "missing-session": (
        "",
        "builds a manager without the session it requires now; reported for a person to rewrite",
    ),
    "assertion": (
        NO_LONGER_CALLED,
        "checks a commit or rollback managers no longer make; reported for a person to rewrite",
    ),
}


def reported_test(
    test_id: str, reported: Sequence[tuple[str, str]], saying: str = ""
) -> bool:
    """Whether a manual-attention item of the test's file starts with the test's name
    (``test_x: `db.get_session()` calls a removed session API; ...``), and says ``saying``:
    the run left code of that test for a person."""
    path, _, rest = test_id.partition("::")
    name = rest.split("[", 1)[0].rsplit("::", 1)[-1]
    return bool(name) and any(
        p == path and m.startswith(f"{name}: ") and saying in m for p, m in reported
    )


def judge(
    phase: int,
    title: str,
    baseline: Baseline,
    current: SuiteRun,
    db_now: DbMap | None = None,
    reported: Sequence[tuple[str, str]] = (),
) -> GateResult:
    """Compare a run with the baseline under the phase's expectation (no I/O).

    ``reported``: the manual-attention items (path, message) of the phases written so far.
    In phases 5 and 6, a test that now fails on a removed session API it calls itself, on a
    manager it builds without the session, or on an assertion about a session's commit that
    managers no longer make, reported for a person, is *reported*: not the phase's error,
    and listed."""
    gate = GateResult(
        phase, title, expectation_text(phase), baseline_taken_at=baseline.taken_at
    )
    strict = phase in STRICT_PHASES or phase not in EXPECTED_KINDS
    expected = EXPECTED_KINDS.get(phase, frozenset())
    db_base = baseline.db_map
    base_tests = baseline.suite.tests
    now_tests = current.tests
    errors_now = current.collection_errors

    def touches(test_id: str) -> bool:
        base = test_id.split("[", 1)[0]
        if base in db_base.tests:
            return db_base.tests[base]
        if db_now is not None and base in db_now.tests:
            return db_now.tests[base]
        return True

    def judge_new_failure(test_id: str, outcome: TestOutcome) -> tuple[str, str]:
        kind = outcome.kind or "other"
        if strict and kind in REPORTED_KINDS:
            saying, why = REPORTED_KINDS[kind]
            if reported_test(test_id, reported, saying):
                return "reported", why
        if strict:
            return "regression", f"passed at baseline, now {kind}"
        if kind in ALWAYS_UNEXPECTED:
            return (
                "unexpected",
                f"{kind} is never an expected consequence of phase {phase}",
            )
        if outcome.collection:
            return (
                ("expected", "collection error of an expected kind")
                if kind in expected
                else (
                    "unexpected",
                    f"collection error of kind {kind}",
                )
            )
        if not touches(test_id):
            return "unexpected", "a test that touches no database fails now"
        if (
            kind == "missing-fixture"
            and outcome.detail
            and outcome.detail not in db_base.fixtures
        ):
            return (
                "unexpected",
                f"fixture {outcome.detail!r} is missing, but it is not a database fixture",
            )
        if kind in expected:
            return "expected", KIND_HELP[kind]
        if kind in PLAN_KINDS:
            later = min(n for n, kinds in EXPECTED_KINDS.items() if kind in kinds)
            return (
                "unexpected",
                f"{kind} is not a consequence of phase {phase} (docs/plan.md expects it from phase {later} on)",
            )
        return (
            "accepted",
            f"{kind} in a test that touches the database (PLAN: failures relate to session handling)",
        )

    for test_id in sorted(set(base_tests) | set(now_tests)):
        before = base_tests.get(test_id)
        after = now_tests.get(test_id)
        if after is None:
            if before is None or not before.ok:
                continue  # failed before and is gone (e.g. a collection error that is fixed)
            err = _covering_collection_error(test_id, errors_now)
            if err is not None:
                judgement, why = judge_new_failure(err.id or test_id, err)
                gate.changes.append(
                    TestChange(
                        test_id,
                        before.state,
                        f"not run ({err.state})",
                        judgement,
                        err.message or why,
                    )
                )
            else:
                gate.changes.append(
                    TestChange(
                        test_id,
                        before.state,
                        "not run",
                        "regression" if strict else "unexpected",
                        "ran at baseline, not collected now and no collection error explains it",
                    )
                )
            continue
        if after.order_dependent and after.ok:
            gate.order_dependent.append(test_id)
            gate.changes.append(
                TestChange(
                    test_id,
                    before.state if before is not None else "-",
                    f"{after.parallel or 'failed'} in parallel, passed alone",
                    "order-dependent",
                    after.message,
                )
            )
            continue
        if before is None:
            if after.ok:
                continue
            judgement, why = judge_new_failure(test_id, after)
            message = (
                after.message
                if judgement in ("expected", "accepted")
                else f"{why}: {after.message}"
            )
            gate.changes.append(
                TestChange(test_id, "-", after.state, judgement, message)
            )
            continue
        if before.ok and after.ok:
            if before.outcome == "passed" and after.outcome == "skipped" and strict:
                gate.changes.append(
                    TestChange(
                        test_id, "passed", "skipped", "regression", after.message
                    )
                )
            continue
        if not before.ok and after.ok:
            if after.outcome == "passed":
                gate.fixed.append(test_id)
                gate.changes.append(
                    TestChange(test_id, before.state, after.state, "fixed", "")
                )
            continue
        if not before.ok and not after.ok:
            gate.pre_existing.append(test_id)
            if before.state != after.state:
                gate.changes.append(
                    TestChange(
                        test_id,
                        before.state,
                        after.state,
                        "pre-existing",
                        "failed at baseline too; " + after.message,
                    )
                )
            continue
        judgement, why = judge_new_failure(test_id, after)
        message = (
            after.message
            if judgement in ("expected", "accepted")
            else f"{why}: {after.message}"
        )
        gate.changes.append(
            TestChange(test_id, before.state, after.state, judgement, message)
        )

    # counts by state
    base_counts = baseline.suite.counts()
    now_counts = current.counts()
    missing = sum(1 for t in base_tests if t not in now_tests)
    order = ["passed", "skipped", *KINDS]
    for state in order:
        b, n = base_counts.get(state, 0), now_counts.get(state, 0)
        if b or n:
            gate.rows.append((state, b, n))
    if missing:
        gate.rows.append(("not run", 0, missing))
    gate.rows.append(("total", len(base_tests), len(now_tests)))

    bad = [c for c in gate.changes if c.bad]
    if bad:
        gate.problems.append(
            f"{len(bad)} test(s) changed in a way phase {phase} does not explain: "
            + ", ".join(c.id for c in bad[:5])
            + (" …" if len(bad) > 5 else "")
        )
    if gate.fixed:
        gate.messages.append(
            f"{len(gate.fixed)} test(s) that failed at baseline pass now"
        )
    left = [c.id for c in gate.changes if c.judgement == "reported"]
    if left:
        gate.messages.append(
            f"{len(left)} test(s) fail on session plumbing the refactoring removed, which "
            "their own code uses; reported for a person (see the manual-attention items): "
            + ", ".join(left)
        )
    if gate.order_dependent:
        gate.messages.append(
            f"{len(gate.order_dependent)} test(s) failed only in the parallel run and pass when "
            f"run alone (order-dependent): not blamed on phase {phase}"
        )
    if gate.pre_existing:
        gate.messages.append(
            f"{len(gate.pre_existing)} failure(s) were already there at baseline (pre-existing)"
        )
    if not base_tests:
        gate.messages.append(
            "the baseline has no tests: the suite proves nothing about this phase"
        )
    gate.verdict = "failed" if gate.problems else "ok"
    return gate


def judge_command(
    gate: GateResult, result: CommandResult, baseline_result: CommandResult | None
) -> None:
    """Add the smoke command (or the factory check) to a gate."""
    gate.commands.append(result)
    if result.status == "skipped":
        gate.messages.append(f"{result.name}: skipped: {result.message}")
        return
    if result.ok:
        return
    if baseline_result is not None and baseline_result.status == "failed":
        gate.messages.append(
            f"{result.name}: failed at baseline too (pre-existing): {result.message}"
        )
        return
    gate.problems.append(f"{result.name}: {result.message}")
    gate.verdict = "failed"


def check_as_dict(result: Any) -> dict[str, Any]:
    """A CheckResult as plain data, tolerant of its exact shape."""
    if hasattr(result, "as_dict"):
        data = dict(result.as_dict())
    elif hasattr(result, "__dataclass_fields__"):
        data = asdict(result)
    else:
        data = dict(vars(result))
    ok = data.get("ok", data.get("passed"))
    if ok is None:
        failures = data.get("failures", data.get("locations", data.get("problems", [])))
        ok = not failures
    data["ok"] = bool(ok)
    return json.loads(json.dumps(data, default=str))
