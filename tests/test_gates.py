"""The verification gates: failure kinds from exception types, the suite's results as the
plugin reports them, judging against a baseline, the smoke command, the factory check, the
database-usage analysis and the git helpers.

Real pytest runs (on tiny throwaway projects) provide the results wherever the exact shape of
pytest's reports matters; the judging logic is tested on small hand-built runs.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from refactor_tool import gitops
from refactor_tool.model.config import Config
from refactor_tool.model.project import Project
from refactor_tool.gates import preload
from refactor_tool.gates import (
    Baseline,
    CommandResult,
    DbMap,
    EnvironmentProblem,
    SuiteRun,
    TestOutcome,
    analyze_db_usage,
    baseline_path,
    classify,
    judge,
    judge_command,
    load_baseline,
    outcomes_from_records,
    record_baseline,
    run_factory_check,
    run_smoke,
    run_suite,
)
from support import git


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


# ----------------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("exc_type", "message", "kind"),
    [
        (
            "AttributeError",
            "'DatabaseManager' object has no attribute 'get_session'",
            "removed-session-api",
        ),
        (
            "ImportError",
            "cannot import name 'get_session' from 'app.database.session'",
            "removed-session-api",
        ),
        ("NameError", "name 'get_session' is not defined", "removed-session-api"),
        (
            "AttributeError",
            "'GameManager' object has no attribute '_get_session'",
            "removed-session-api",
        ),
        (
            "TypeError",
            "GameManager.__init__() missing 1 required positional argument: 'session'",
            "missing-session",
        ),
        (
            "TypeError",
            "ActManager.__init__() missing 1 required keyword-only argument: 'session'",
            "missing-session",
        ),
        ("_pytest.fixtures.FixtureLookupError", "fixture 'db_session' not found", "missing-fixture"),
        ("SyntaxError", "invalid syntax (x.py, line 1)", "syntax-error"),
        ("IndentationError", "unexpected indent", "syntax-error"),
        ("ModuleNotFoundError", "No module named 'app.gone'", "import-error"),
        (
            "sqlalchemy.orm.exc.DetachedInstanceError",
            "Parent instance <Game at 0x1> is not bound to a Session",
            "detached-or-stale",
        ),
        ("sqlalchemy.orm.exc.ObjectDeletedError", "Instance has been deleted", "detached-or-stale"),
        ("AssertionError", "assert 1 == 2", "assertion"),
        ("ValueError", "nope", "other"),
        # a TypeError about some other argument is not the missing-session kind
        ("TypeError", "f() missing 1 required positional argument: 'name'", "other"),
        # the kind starts from the type: a message that names get_session is not enough
        ("AssertionError", "assert 'get_session' in names", "assertion"),
        ("ValueError", "get_session is gone", "other"),
        # and a message that merely looks like another exception's does not count
        ("RuntimeError", "TypeError: missing 1 required positional argument: 'session'", "other"),
    ],
)
def test_classify(exc_type: str, message: str, kind: str) -> None:
    assert classify(exc_type, message, Config()) == kind


def test_classify_collection_errors() -> None:
    # a module that does not import, for any reason but a removed API or a syntax error
    assert classify("ModuleNotFoundError", "No module named 'x'", collection=True) == "import-error"
    assert classify("RuntimeError", "boom at import", collection=True) == "import-error"
    assert classify("SyntaxError", "invalid syntax", collection=True) == "syntax-error"
    assert (
        classify("ImportError", "cannot import name 'get_session'", collection=True)
        == "removed-session-api"
    )
    # a fixture lookup is a missing fixture whatever the type says
    assert classify("LookupError", "", fixture_error=True) == "missing-fixture"


def test_classify_uses_configured_names() -> None:
    config = Config(removed_session_apis=("fetch_db",), session_variable="db")
    assert (
        classify("AttributeError", "'Store' object has no attribute 'fetch_db'", config)
        == "removed-session-api"
    )
    assert (
        classify(
            "TypeError", "Repo.__init__() missing 1 required positional argument: 'db'", config
        )
        == "missing-session"
    )
    # with these names, the defaults mean nothing special
    assert (
        classify("AttributeError", "'X' object has no attribute 'get_session'", config)
        == "other"
    )


# ----------------------------------------------------------------------------- results from real pytest runs

SAMPLE_PROJECT = {
    "pyproject.toml": """
        [project]
        name = "app"
        version = "0"
        [project.scripts]
        app = "app.cli:main"
        [tool.pytest.ini_options]
        testpaths = ["app"]
    """,
    "app/__init__.py": "",
    "app/session.py": """
        class DatabaseManager:
            pass
    """,
    "app/cli.py": """
        import os, sys
        def main():
            home = os.environ["SOLOGM_HOME"]
            url = os.environ["SOLOGM_DATABASE_URL"]
            assert os.path.isdir(home) and url.startswith("sqlite:///"), (home, url)
            assert os.environ["HOME"] != os.path.expanduser("~nobody")
            print("args:", " ".join(sys.argv[1:]))
            return 0 if sys.argv[1:] == ["game", "list"] else 3
    """,
    "app/tests/__init__.py": "",
    "app/tests/conftest.py": """
        import pytest
        from app.session import DatabaseManager

        @pytest.fixture
        def db_session():
            return DatabaseManager().get_session()

        @pytest.fixture
        def console():
            return object()
    """,
    "app/tests/test_things.py": """
        import pytest

        def test_passes():
            assert True

        def test_uses_db(db_session):
            assert db_session

        def test_needs_gone(gone_fixture):
            pass

        class TestManager:
            @pytest.mark.parametrize("n", [1, 2])
            def test_param(self, n, console):
                assert n == 1

            def test_missing_session(self):
                class Manager:
                    def __init__(self, session):
                        self.session = session
                Manager()

        @pytest.mark.skip(reason="not today")
        def test_skipped():
            pass
    """,
    "app/tests/test_broken_import.py": """
        from app.session import get_session
    """,
    "app/tests/test_syntax.py": """
        def test_x(:
            pass
    """,
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("sample"), SAMPLE_PROJECT)


@pytest.fixture(scope="module")
def sample_run(sample: Path) -> SuiteRun:
    return run_suite(sample, sys.executable, Config())


def test_run_suite_reads_every_outcome_and_kind(sample_run: SuiteRun) -> None:
    tests = sample_run.tests
    states = {test_id: t.state for test_id, t in tests.items()}
    assert states == {
        "app/tests/test_things.py::test_passes": "passed",
        "app/tests/test_things.py::test_uses_db": "removed-session-api",
        "app/tests/test_things.py::test_needs_gone": "missing-fixture",
        "app/tests/test_things.py::TestManager::test_param[1]": "passed",
        "app/tests/test_things.py::TestManager::test_param[2]": "assertion",
        "app/tests/test_things.py::TestManager::test_missing_session": "missing-session",
        "app/tests/test_things.py::test_skipped": "skipped",
        "app/tests/test_broken_import.py": "removed-session-api",
        "app/tests/test_syntax.py": "syntax-error",
    }
    assert tests["app/tests/test_syntax.py"].collection
    assert not tests["app/tests/test_things.py::test_passes"].collection
    assert tests["app/tests/test_things.py::test_needs_gone"].detail == "gone_fixture"
    assert "get_session" in tests["app/tests/test_things.py::test_uses_db"].message
    assert sample_run.returncode == 1


def test_run_suite_leaves_no_cache_in_the_target(
    sample: Path, sample_run: SuiteRun
) -> None:
    assert not list(sample.rglob("__pycache__"))
    assert not (sample / ".pytest_cache").exists()


def test_outcomes_from_records_worst_phase_wins() -> None:
    def rec(node_id: str, when: str, outcome: str, **kw: object) -> dict[str, object]:
        return {"event": "test", "nodeid": node_id, "when": when, "outcome": outcome, **kw}

    records = [
        {"event": "collected", "count": 4},
        rec("t.py::test_one", "setup", "passed", duration=0.5),
        rec("t.py::test_one", "call", "passed", duration=1.0),
        rec("t.py::test_one", "teardown", "failed", exc_type="ValueError", message="boom"),
        rec("t.py::TestX::test_two", "setup", "skipped", message="later"),
        rec("t.py::TestX::test_two", "teardown", "passed"),
        rec("t.py::test_xfail", "call", "skipped", xfail=True, exc_type="AssertionError",
            message="xfail: known"),
        rec("t.py::test_fix", "setup", "failed", exc_type="_pytest.fixtures.FixtureLookupError",
            message="fixture 'db_session' not found", fixture_error=True, fixture="db_session"),
        rec("t.py::test_fix", "teardown", "passed"),
        {"event": "collect-error", "nodeid": "u.py", "exc_type": "SyntaxError",
         "message": "invalid syntax (u.py, line 1)"},
        # the same collection error from another process of a split run is one result
        {"event": "collect-error", "nodeid": "u.py", "exc_type": "SyntaxError",
         "message": "invalid syntax (u.py, line 1)"},
    ]
    tests, seconds = outcomes_from_records(records)
    assert {k: (t.outcome, t.state) for k, t in tests.items()} == {
        "t.py::test_one": ("error", "other"),
        "t.py::TestX::test_two": ("skipped", "skipped"),
        "t.py::test_xfail": ("skipped", "skipped"),
        "t.py::test_fix": ("error", "missing-fixture"),
        "u.py": ("error", "syntax-error"),
    }
    assert tests["t.py::test_one"].message == "ValueError: boom"
    assert tests["t.py::test_one"].exc_type == "ValueError"
    assert tests["t.py::test_fix"].detail == "db_session"
    assert tests["u.py"].collection
    assert seconds["t.py"] == pytest.approx(1.5)


def test_run_suite_whole_session_failure(tmp_path: Path) -> None:
    """A root conftest that does not import: pytest writes no testcase; one synthetic error."""
    write(
        tmp_path,
        {
            "conftest.py": "from app.session import scoped_session\n",
            "app/__init__.py": "",
            "app/session.py": "",
            "app/test_a.py": "def test_a():\n    pass\n",
        },
    )
    run = run_suite(tmp_path, sys.executable, Config())
    assert list(run.tests) == [""]  # the root conftest: the whole suite
    assert run.tests[""].collection
    assert run.tests[""].kind == "removed-session-api"
    assert run.tests[""].exc_type == "ImportError"


def test_run_suite_without_pytest_is_bad_input(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text(
        f"#!/bin/sh\nexec {sys.executable} -S -c 'import sys; sys.exit(\"No module named pytest\")'\n"
    )
    fake.chmod(0o755)
    with pytest.raises(EnvironmentProblem, match="has no pytest"):
        run_suite(tmp_path, str(fake), Config())


# ----------------------------------------------------------------------------- which tests touch the DB


def test_analyze_db_usage(sample: Path) -> None:
    db = analyze_db_usage(Project(sample, Config()))
    assert "db_session" in db.fixtures
    assert "console" not in db.fixtures
    assert db.tests["app/tests/test_things.py::test_uses_db"] is True
    assert db.tests["app/tests/test_things.py::test_passes"] is False
    assert db.tests["app/tests/test_things.py::TestManager::test_param"] is False
    assert db.touches("app/tests/test_things.py::TestManager::test_param[2]") is False
    assert (
        db.touches("app/tests/test_unknown.py::test_x") is True
    )  # no evidence: never blamed


def test_analyze_db_usage_fixture_chains_and_managers(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/core/base_manager.py": "class BaseManager:\n    pass\n",
        "pkg/core/things.py": "from pkg.core.base_manager import BaseManager\nclass ThingManager(BaseManager):\n    pass\nclass Helper:\n    pass\n",
        "pkg/tests/conftest.py": """
            import pytest
            from sqlalchemy import create_engine

            @pytest.fixture
            def engine():
                return create_engine("sqlite://")

            @pytest.fixture
            def store(engine):
                return engine

            @pytest.fixture(autouse=True)
            def seeded(session_context):
                pass

            @pytest.fixture(name="clock")
            def _clock():
                return 0
        """,
        "pkg/tests/test_x.py": """
            import pytest
            from pkg.core.things import ThingManager, Helper

            def test_store(store):
                pass

            def test_direct():
                ThingManager(session=None)

            def test_helper(clock):
                Helper()

            @pytest.mark.usefixtures("store")
            class TestGroup:
                def test_in_class(self):
                    pass
        """,
    }
    write(tmp_path, files)
    db = analyze_db_usage(
        Project(
            tmp_path,
            Config(package="pkg", base_manager_module="pkg/core/base_manager.py"),
        )
    )
    assert {"engine", "store", "seeded"} <= db.fixtures
    assert "clock" not in db.fixtures
    assert db.tests == {
        "pkg/tests/test_x.py::test_store": True,
        "pkg/tests/test_x.py::test_direct": True,
        "pkg/tests/test_x.py::test_helper": False,  # autouse DB fixtures do not count
        "pkg/tests/test_x.py::TestGroup::test_in_class": True,
    }


# ----------------------------------------------------------------------------- judging


def outcome(test_id: str, state: str, **kw: object) -> TestOutcome:
    if state in ("passed", "skipped"):
        return TestOutcome(test_id, state)
    return TestOutcome(test_id, "failed", state, f"{state} message", **kw)  # type: ignore[arg-type]


def make_run(*outcomes: TestOutcome) -> SuiteRun:
    return SuiteRun({o.id: o for o in outcomes}, 1, 0.1)


def make_baseline(
    *outcomes: TestOutcome,
    touches: dict[str, bool] | None = None,
    fixtures=("db_session",),
) -> Baseline:
    smoke = CommandResult("smoke", "app game list", "ok", 0)
    return Baseline(
        make_run(*outcomes),
        smoke,
        list(fixtures),
        touches or {},
        "then",
        "sha256:x",
        sys.executable,
    )


DB = "t/test_db.py::test_db"
PURE = "t/test_pure.py::test_pure"
OLD = "t/test_db.py::test_already_broken"
BASE = make_baseline(
    outcome(DB, "passed"),
    outcome(PURE, "passed"),
    outcome(OLD, "other"),
    touches={DB: True, PURE: False, OLD: True},
)


def judgements(gate) -> dict[str, str]:
    return {c.id: c.judgement for c in gate.changes}


def test_judge_expected_kind_in_db_test_is_ok() -> None:
    gate = judge(
        1,
        "one",
        BASE,
        make_run(
            outcome(DB, "removed-session-api"),
            outcome(PURE, "passed"),
            outcome(OLD, "other"),
        ),
    )
    assert gate.ok, gate.problems
    assert judgements(gate) == {DB: "expected"}
    assert gate.pre_existing == [OLD]
    rows = {state: (b, n) for state, b, n in gate.rows}
    assert rows["passed"] == (2, 1)
    assert rows["removed-session-api"] == (0, 1)
    assert rows["total"] == (3, 3)


def test_judge_non_db_test_failing_fails_the_gate() -> None:
    gate = judge(
        2,
        "two",
        BASE,
        make_run(
            outcome(DB, "passed"),
            outcome(PURE, "missing-session"),
            outcome(OLD, "other"),
        ),
    )
    assert not gate.ok
    assert judgements(gate) == {PURE: "unexpected"}
    assert PURE in gate.problems[0]


@pytest.mark.parametrize("kind", ["syntax-error", "import-error"])
def test_judge_syntax_and_import_errors_always_fail(kind: str) -> None:
    gate = judge(
        4,
        "four",
        BASE,
        make_run(outcome(DB, kind), outcome(PURE, "passed"), outcome(OLD, "other")),
    )
    assert not gate.ok
    assert judgements(gate) == {DB: "unexpected"}


def test_judge_other_db_failures_are_accepted_in_lenient_phases() -> None:
    gate = judge(
        1,
        "one",
        BASE,
        make_run(
            outcome(DB, "detached-or-stale"),
            outcome(PURE, "passed"),
            outcome(OLD, "other"),
        ),
    )
    assert gate.ok
    assert judgements(gate) == {DB: "accepted"}


def test_judge_missing_fixture_must_be_a_database_fixture() -> None:
    run = make_run(
        outcome(DB, "missing-fixture", detail="db_session"),
        outcome(PURE, "passed"),
        outcome(OLD, "other"),
    )
    assert judge(4, "four", BASE, run).ok
    gate = judge(1, "one", BASE, run)  # phase 1 removes no fixture: a codemod bug
    assert not gate.ok and "phase 4" in gate.changes[0].message
    run = make_run(
        outcome(DB, "missing-fixture", detail="mock_console"),
        outcome(PURE, "passed"),
        outcome(OLD, "other"),
    )
    gate = judge(4, "four", BASE, run)
    assert not gate.ok
    assert "mock_console" in gate.changes[0].message


def test_judge_strict_phase_leaves_a_reported_test_on_a_removed_api_to_a_person() -> None:
    """A test failing on a removed session API that it calls itself, which a phase reported
    for a person (the item starts with the test's name), is not the phase's error; the same
    failure in a test nobody reported is."""
    run = make_run(
        outcome(DB, "removed-session-api"),
        outcome(PURE, "passed"),
        outcome(OLD, "other"),
    )
    reported = [("t/test_db.py", "test_db: `db.get_session()` calls a removed session API")]
    gate = judge(5, "five", BASE, run, reported=reported)
    assert gate.ok, gate.problems
    assert judgements(gate) == {DB: "reported"}
    assert any(DB in m for m in gate.messages)
    other = [("t/test_db.py", "test_other: `db.get_session()` calls a removed session API")]
    assert not judge(5, "five", BASE, run, reported=other).ok


def test_judge_strict_phase_leaves_a_reported_test_building_a_manager_without_session() -> None:
    """So is a reported test failing because it builds a manager without the session it
    requires now; an assertion failure of a reported test is still the phase's error."""
    reported = [("t/test_db.py", "test_db: `GameManager(...)` passes no `session`; rewrite by hand")]
    run = make_run(outcome(DB, "missing-session"), outcome(PURE, "passed"), outcome(OLD, "other"))
    gate = judge(5, "five", BASE, run, reported=reported)
    assert gate.ok, gate.problems
    assert judgements(gate) == {DB: "reported"}
    run = make_run(outcome(DB, "assertion"), outcome(PURE, "passed"), outcome(OLD, "other"))
    assert not judge(5, "five", BASE, run, reported=reported).ok


def test_judge_strict_phase_leaves_a_reported_spy_on_the_commit_to_a_person() -> None:
    """An assertion failure is the person's only in a test reported for spying on a
    session's commit, which managers no longer make."""
    from codemods.phase2 import NO_LONGER_CALLED

    run = make_run(outcome(DB, "assertion"), outcome(PURE, "passed"), outcome(OLD, "other"))
    spy = [("t/test_db.py", f"test_db: spies on the session's `commit`, {NO_LONGER_CALLED}")]
    gate = judge(5, "five", BASE, run, reported=spy)
    assert gate.ok, gate.problems
    assert judgements(gate) == {DB: "reported"}


def test_judge_strict_phase_fails_on_any_regression_and_lists_fixes() -> None:
    gate = judge(
        5,
        "five",
        BASE,
        make_run(
            outcome(DB, "removed-session-api"),
            outcome(PURE, "passed"),
            outcome(OLD, "passed"),
        ),
    )
    assert not gate.ok
    assert judgements(gate) == {DB: "regression", OLD: "fixed"}
    assert gate.fixed == [OLD]
    gate = judge(
        6,
        "six",
        BASE,
        make_run(
            outcome(DB, "passed"), outcome(PURE, "passed"), outcome(OLD, "passed")
        ),
    )
    assert gate.ok
    assert gate.fixed == [OLD]
    # a baseline failure that still fails is pre-existing, never blamed on the phase
    gate = judge(
        5,
        "five",
        BASE,
        make_run(
            outcome(DB, "passed"), outcome(PURE, "passed"), outcome(OLD, "assertion")
        ),
    )
    assert gate.ok
    assert gate.pre_existing == [OLD]


def test_judge_tests_not_run() -> None:
    # covered by a collection error of an expected kind: expected in phase 1
    err = TestOutcome(
        "t/test_db.py",
        "error",
        "removed-session-api",
        "ImportError: get_session",
        collection=True,
    )
    gate = judge(
        1, "one", BASE, make_run(err, outcome(PURE, "passed"), outcome(OLD, "other"))
    )
    assert gate.ok, gate.problems
    assert judgements(gate)[DB] == "expected"
    assert [s for s, _, _ in gate.rows if s == "not run"]
    # vanished without any collection error to explain it
    gate = judge(
        1, "one", BASE, make_run(outcome(PURE, "passed"), outcome(OLD, "other"))
    )
    assert not gate.ok
    assert judgements(gate)[DB] == "unexpected"
    # strict phase: anything not run is a regression
    gate = judge(
        6, "six", BASE, make_run(err, outcome(PURE, "passed"), outcome(OLD, "other"))
    )
    assert not gate.ok


def test_judge_new_failing_test_uses_the_current_analysis() -> None:
    new = "t/test_new.py::test_new"
    run = make_run(
        outcome(DB, "passed"),
        outcome(PURE, "passed"),
        outcome(OLD, "other"),
        outcome(new, "assertion"),
    )
    assert judge(1, "one", BASE, run, DbMap(set(), {new: True})).ok
    assert not judge(1, "one", BASE, run, DbMap(set(), {new: False})).ok


def test_judge_command_smoke() -> None:
    ok = CommandResult("smoke", "app game list", "ok", 0)
    bad = CommandResult("smoke", "app game list", "failed", 1, message="exited 1")
    gate = judge(
        1,
        "one",
        BASE,
        make_run(outcome(DB, "passed"), outcome(PURE, "passed"), outcome(OLD, "other")),
    )
    judge_command(gate, bad, ok)
    assert not gate.ok and "smoke" in gate.problems[0]
    gate = judge(
        1,
        "one",
        BASE,
        make_run(outcome(DB, "passed"), outcome(PURE, "passed"), outcome(OLD, "other")),
    )
    judge_command(gate, bad, bad)  # already broken at baseline: pre-existing
    assert gate.ok and "pre-existing" in gate.messages[-1]


# ----------------------------------------------------------------------------- smoke and factory


def test_run_smoke(sample: Path) -> None:
    result = run_smoke(sample, sys.executable, Config(script="app"))
    assert result.status == "ok", result.output
    assert "args: game list" in result.output
    failed = run_smoke(
        sample, sys.executable, Config(script="app", smoke_args=("nope",))
    )
    assert failed.status == "failed" and failed.returncode == 3
    skipped = run_smoke(sample, sys.executable, Config(script="missing"))
    assert skipped.status == "skipped"
    assert "[project.scripts]" in skipped.message and "app" in skipped.message


@pytest.mark.skipif(not preload.supported(), reason="no fork on this platform")
def test_smoke_forked_from_the_preloading_server_ends_as_a_new_process_does(
    sample: Path,
) -> None:
    """The smoke command forked from the server that preloaded the target's third-party
    modules: the same status, exit code and output as in a process of its own, in its own
    scratch environment, and no ``__pycache__`` written into the target."""
    for args in (("game", "list"), ("nope",)):
        config = Config(script="app", smoke_args=args)
        fresh = run_smoke(sample, sys.executable, config)
        forked = run_smoke(sample, sys.executable, config, preload=["sqlalchemy"])
        assert (forked.status, forked.returncode, forked.output, forked.message) == (
            fresh.status,
            fresh.returncode,
            fresh.output,
            fresh.message,
        )
    assert not list(sample.rglob("__pycache__"))
    assert any(key[2] == ("sqlalchemy",) for key in preload._SERVERS)


FACTORY_PROJECT = {
    "pkg/__init__.py": "",
    "pkg/models.py": """
        from sqlalchemy import Integer
        from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

        class Base(DeclarativeBase):
            pass

        class Thing(Base):
            __tablename__ = "things"
            id: Mapped[int] = mapped_column(Integer, primary_key=True)
    """,
    "pkg/core/__init__.py": "",
    "pkg/core/managers.py": """
        from pkg.models import Thing

        class ThingManager:
            def __init__(self, session):
                self._session = session

            def count(self):
                return self._session.query(Thing).count()
    """,
    "pkg/core/factory.py": """
        from types import SimpleNamespace
        from pkg.core.managers import ThingManager

        def create_all_managers(session):
            things = ThingManager(session=session)
            assert things.count() == 0  # the tables exist
            return SimpleNamespace(thing=things)
    """,
}


def test_run_factory_check(tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    write(tmp_path, FACTORY_PROJECT)
    config = Config(package="pkg", factory_module="pkg/core/factory.py")
    result = run_factory_check(tmp_path, sys.executable, config)
    assert result.status == "ok", result.output
    assert "thing=ThingManager" in result.message
    # forked from the preloading server (sqlalchemy already imported there): the same
    forked = run_factory_check(tmp_path, sys.executable, config, preload=["sqlalchemy"])
    assert (forked.status, forked.message) == (result.status, result.message)
    # a factory that raises fails the check, with the error in the message
    (tmp_path / "pkg/core/factory.py").write_text(
        "def create_all_managers(session):\n    raise RuntimeError('wired wrong')\n"
    )
    result = run_factory_check(tmp_path, sys.executable, config)
    assert result.status == "failed" and "wired wrong" in result.message
    forked = run_factory_check(tmp_path, sys.executable, config, preload=["sqlalchemy"])
    assert (forked.status, forked.message) == (result.status, result.message)
    # no factory at all
    (tmp_path / "pkg/core/factory.py").unlink()
    result = run_factory_check(tmp_path, sys.executable, config)
    assert result.status == "failed" and "pkg/core/factory.py" in result.message


# ----------------------------------------------------------------------------- baseline file


def test_record_and_load_baseline(sample: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(sample, root)
    assert load_baseline(root) is None
    baseline = record_baseline(Project(root, Config(script="app")), sys.executable)
    data = json.loads(baseline_path(root).read_text())
    assert data["test_count"] == len(baseline.suite.tests) == 9
    assert data["smoke"]["status"] == "ok"
    assert data["tree"].startswith("sha256:")
    assert data["touches_db"]["app/tests/test_things.py::test_uses_db"] is True
    loaded = load_baseline(root)
    assert loaded is not None
    assert loaded.suite.tests == baseline.suite.tests
    assert loaded.smoke == baseline.smoke
    baseline_path(root).write_text("{broken")
    assert load_baseline(root) is None


# ----------------------------------------------------------------------------- git helpers


def test_gitops_commit_only_the_phase_files(tmp_path: Path) -> None:
    write(
        tmp_path, {"a.py": "a\n", "b.py": "b\n", "gone.py": "x\n", "user.txt": "mine\n"}
    )
    gitops.init_and_commit(tmp_path, "start")
    assert gitops.dirty_files(tmp_path) == []
    (tmp_path / "a.py").write_text("a2\n")
    (tmp_path / "new.py").write_text("n\n")
    (tmp_path / "gone.py").unlink()
    (tmp_path / "user.txt").write_text("user's own change\n")
    git(tmp_path, "add", "user.txt")  # even staged, it stays out of the phase's commit
    (tmp_path / ".refactor-tool").mkdir()
    (tmp_path / ".refactor-tool" / "baseline.json").write_text("{}")
    dirty = gitops.dirty_files(tmp_path)
    assert not any(".refactor-tool" in line for line in dirty)
    assert len(dirty) == 4
    sha = gitops.commit(
        tmp_path, ["a.py", "new.py", "gone.py"], "refactor-tool: phase 1 - Test"
    )
    assert sha == git(tmp_path, "rev-parse", "HEAD").strip()
    assert (
        git(tmp_path, "log", "-1", "--format=%s").strip()
        == "refactor-tool: phase 1 - Test"
    )
    assert sorted(
        git(tmp_path, "show", "--name-only", "--format=", "HEAD").split()
    ) == ["a.py", "gone.py", "new.py"]
    assert [line[3:] for line in gitops.dirty_files(tmp_path)] == ["user.txt"]


def test_gitops_ensure_excluded(tmp_path: Path) -> None:
    assert gitops.ensure_excluded(tmp_path) is False  # not a repository
    gitops.init_and_commit(write(tmp_path, {"a.py": ""}), "start")
    assert gitops.ensure_excluded(tmp_path) is True
    assert gitops.ensure_excluded(tmp_path) is True
    exclude = (tmp_path / ".git" / "info" / "exclude").read_text()
    assert exclude.count(".refactor-tool/") == 1
    (tmp_path / ".refactor-tool").mkdir()
    (tmp_path / ".refactor-tool" / "baseline.json").write_text("{}")
    assert git(tmp_path, "status", "--porcelain") == ""


def test_end_state_failures_in_reported_code_are_left_for_a_person() -> None:
    from refactor_tool.gates.gate import left_for_a_person

    reported = [
        ("app/tests/conftest.py", "session fixture 'db_session' is kept: still requested by test 'test_a'"),
        ("app/tests/test_a.py", "test_a: requests 'thing' through usefixtures; rewrite by hand"),
    ]
    covered = [
        ["app/tests/conftest.py", 42, "fixture `db_session` still exists; delete it"],
        {"path": "app/tests/test_a.py", "line": 3, "message": "test `test_a` uses the database"},
        # a call named by its callee
        ["app/tests/test_a.py", 4, "`thing(...)` is built without the test's session"],
    ]
    not_covered = [
        # same name, other file
        ["app/tests/test_b.py", 3, "test `test_a` uses the database"],
        # a name no note of the file mentions (a prefix is not the name)
        ["app/tests/conftest.py", 50, "fixture `db` still exists; delete it"],
        ["app/tests/test_a.py", 9, "test `test_ab` uses the database"],
        # no name to match
        ["app/tests/test_a.py", 9, "something is wrong"],
    ]
    assert all(left_for_a_person(f, reported) for f in covered)
    assert not any(left_for_a_person(f, reported) for f in not_covered)
    assert not left_for_a_person(covered[0], [])
    # a test elsewhere that uses the database only through fixtures the run kept (each
    # named in a note, wherever), but not one that uses another fixture as well
    kept = [*reported, ("app/tests/conftest.py", "object fixture 'open_order' is kept: still requested")]
    assert left_for_a_person(
        ["app/tests/test_c.py", 6, "test `test_c` uses the database (open_order, db_session) outside"], kept
    )
    assert not left_for_a_person(
        ["app/tests/test_c.py", 6, "test `test_c` uses the database (open_order, game_manager) outside"], kept
    )


def test_the_targets_own_virtual_environment_runs_its_tests(tmp_path: Path) -> None:
    from refactor_tool.gates.runner import default_python

    assert default_python(tmp_path) == sys.executable  # none: the tool's own
    for name in ("py311", "venv"):
        (tmp_path / name / "bin").mkdir(parents=True)
        (tmp_path / name / "bin" / "python").write_text("")
    # `venv` by its name; `py311`, without a pyvenv.cfg, is no environment yet
    assert default_python(tmp_path) == str(tmp_path / "venv" / "bin" / "python")
    (tmp_path / "venv" / "bin" / "python").unlink()
    assert default_python(tmp_path) == sys.executable
    (tmp_path / "py311" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert default_python(tmp_path) == str(tmp_path / "py311" / "bin" / "python")
