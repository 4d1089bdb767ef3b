"""Phases 1-3 on a scratch copy of the bundled target, plus the analysis' bad-input cases.

The fixture pairs (tests/test_fixture_pairs.py) pin the codemods' output file by file; the
tests here check what those outputs *do*: the rewritten application still runs, the generated
factory builds every manager on one real session, the ``flush()`` that replaces the removed
commit keeps pending rows visible and constraint errors where they were, the savepoint around
each manager operation leaves the session usable after a failed one (with the SQLite
``begin`` listener of phase 1 keeping released savepoints inside the session's transaction),
and a second run of every phase changes nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from codemods import phase2
from refactor_tool.engine import run_phase, write_changes
from refactor_tool.model.config import Config
from refactor_tool.model.project import InputError, Project
from refactor_tool.phases import PHASES

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "target_project"

pytestmark = pytest.mark.skipif(
    not (TARGET / "pyproject.toml").is_file(), reason="target_project/ is not there"
)


def _copy_target(tmp_path: Path) -> Path:
    dest = tmp_path / "target"
    shutil.copytree(
        TARGET, dest, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache")
    )
    return dest


def _apply(root: Path, *numbers: int) -> dict[int, list[str]]:
    """Apply phases in order; return the changed paths per phase. Each phase is run a second
    time on its own output, which must change nothing."""
    changed: dict[int, list[str]] = {}
    for number in numbers:
        result = run_phase(Project(root), PHASES[number])
        write_changes(Project(root), result.changes)
        changed[number] = result.changed_paths
        again = run_phase(Project(root), PHASES[number])
        assert again.changes == [], (
            f"phase {number} is not idempotent: {again.changed_paths}"
        )
    return changed


def _python(
    root: Path, code: str, *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("SOLOGM_DATABASE_URL", None)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def refactored(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[int, list[str]]]:
    """A copy of the target with phases 1, 2 and 3 applied (shared by the tests below)."""
    root = _copy_target(tmp_path_factory.mktemp("p123"))
    return root, _apply(root, 1, 2, 3)


# ----------------------------------------------------------------------------- end to end


def test_phases_change_what_they_name(
    refactored: tuple[Path, dict[int, list[str]]],
) -> None:
    _, changed = refactored
    config = Config()
    assert config.session_module in changed[1]
    assert config.base_manager_module in changed[2]
    assert changed[3] == [config.factory_module]
    # nothing outside the application package's sources, and no test module in 1-3 but the
    # one where step 2.1 folds `games._session = db_session` into `GameManager(...)`, the
    # conftest whose session fixture step 1.3 moves from `get_session()` to the sessionmaker
    # and the conftests whose fixtures build a manager without a session (step 2.1 passes
    # them the session fixture, requesting it where they did not)
    expected_tests = {
        (1, "sologm/tests/conftest.py"),
        (2, "sologm/core/tests/test_game.py"),
        (2, "sologm/core/tests/conftest.py"),
        (2, "sologm/tests/conftest.py"),
    }
    for number, paths in changed.items():
        for path in paths:
            assert path.startswith(config.package + "/")
            if (number, path) in expected_tests:
                continue
            assert "/tests/" not in path, path
    assert (1, "sologm/tests/conftest.py") in {(1, p) for p in changed[1]}


def test_factory_builds_every_manager_on_one_session(
    refactored: tuple[Path, dict[int, list[str]]],
) -> None:
    """The generated factory, imported and called on a real session, builds every concrete
    manager of the package (found here by runtime reflection, independently of the
    codemods' static analysis), all sharing the session and wired to each other."""
    root, _ = refactored
    _python(
        root,
        """
        import importlib, inspect, pkgutil, re
        from types import SimpleNamespace
        from sqlalchemy import create_engine
        import sologm.core
        from sologm.core.base_manager import BaseManager
        from sologm.database.session import DatabaseManager
        from sologm.core.factory import create_all_managers

        for info in pkgutil.walk_packages(sologm.core.__path__, "sologm.core."):
            if ".tests" not in info.name:
                importlib.import_module(info.name)

        def subclasses(cls):
            for sub in cls.__subclasses__():
                yield sub
                yield from subclasses(sub)

        expected = {
            re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", c.__name__[: -len("Manager")]).lower(): c
            for c in subclasses(BaseManager)
            if c.__module__.startswith("sologm.") and ".tests" not in c.__module__
        }
        assert len(expected) >= 2, expected

        db = DatabaseManager(engine=create_engine("sqlite://"))
        db.create_tables()
        session = db.session()
        # a manager that builds its client from the environment (an API key) gets a
        # stand-in through the factory's keyword, as the target's own tests hand it a mock
        stand_ins = {
            name: object()
            for name, p in inspect.signature(create_all_managers).parameters.items()
            if p.kind is p.KEYWORD_ONLY
        }
        assert stand_ins, "the OracleManager's client is a keyword of the factory"
        managers = create_all_managers(session, **stand_ins)
        assert isinstance(managers, SimpleNamespace)
        # managers that take a client are built on first access: ask for every one
        built = {n: getattr(managers, n) for n in dir(managers) if not n.startswith("_")}
        assert set(built) == set(expected), (sorted(built), sorted(expected))
        ids = {id(m) for m in built.values()}
        for name, manager in built.items():
            assert type(manager) is expected[name], (name, type(manager))
            assert manager._session is session, name
            # every manager it holds is the factory's own instance of that manager
            for attr, value in vars(manager).items():
                if isinstance(value, BaseManager):
                    assert id(value) in ids, (name, attr)
        # lazily created dependencies share the session too
        for manager in built.values():
            props = [p for p in dir(type(manager)) if isinstance(getattr(type(manager), p), property)]
            for prop in [p for p in props if p.endswith("_manager")]:
                dependency = getattr(manager, prop)
                assert dependency._session is session, (type(manager).__name__, prop)
        session.close()
        print("ok", sorted(built))
        """,
    )


def test_cli_still_runs_after_phase_1(tmp_path: Path) -> None:
    """PLAN's phase-1 gate: a basic command initialises an empty database without errors."""
    root = _copy_target(tmp_path)
    _apply(root, 1)
    db = tmp_path / "empty.db"
    proc = subprocess.run(
        [sys.executable, "-m", Config().package, *Config().smoke_args],
        cwd=root,
        env={
            **os.environ,
            "PYTHONPATH": str(root),
            "SOLOGM_DATABASE_URL": f"sqlite:///{db}",
            "SOLOGM_HOME": str(tmp_path),
            "PYTHONDONTWRITEBYTECODE": "1",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_reapplying_earlier_phases_after_later_ones_changes_nothing(
    refactored: tuple[Path, dict[int, list[str]]],
) -> None:
    root, _ = refactored
    for number in (1, 2, 3):
        assert run_phase(Project(root), PHASES[number]).changes == []


def test_phase_1_reports_the_call_sites_it_leaves(tmp_path: Path) -> None:
    """Every reported place names a file and line that really holds a removed name."""
    root = _copy_target(tmp_path)
    result = run_phase(Project(root), PHASES[1])
    removed = Config().removed_session_apis
    for note in result.notes:
        assert note.line, str(note)
        line = (root / note.path).read_text().splitlines()[note.line - 1]
        assert any(name in line for name in removed), str(note)


def test_phases_parse_only_files_that_mention_their_names(tmp_path: Path) -> None:
    root = _copy_target(tmp_path)
    project = Project(root)
    config = project.config
    result = run_phase(project, PHASES[1])
    needles = [*config.removed_session_apis]
    assert result.candidates < len(project.python_files())
    parsed = {rel for rel, _ in project._parse_cache}
    # besides the files naming a removed API, phase 1 reads what the managers' analysis
    # reads and the files that build a manager without visibly passing a session (step
    # 1.3 hands those a session where they fetched one)
    analysed = Project(root)
    callers = phase2.analyze(analysed).step_files["2.1"]
    managers = {rel for rel, _ in analysed._parse_cache} | callers
    for rel in parsed - managers:
        text = (root / rel).read_text()
        assert rel == config.session_module or any(n in text for n in needles), rel
    assert not any(rel.startswith(f"{config.package}/models/") for rel in parsed)
    # phase 2 parses the manager hierarchy and the callers of managers, never the models
    project = Project(root)
    run_phase(project, PHASES[2])
    parsed = {rel for rel, _ in project._parse_cache}
    assert not any(rel.startswith(f"{config.package}/models/") for rel in parsed), (
        sorted(parsed)
    )


# ----------------------------------------------------------------------------- behaviour of the flush

_SETUP = """
    from sqlalchemy import create_engine
    from sqlalchemy.exc import IntegrityError
    from sologm.core.factory import create_all_managers
    from sologm.database.session import DatabaseManager, SessionContext
    from sologm.models.game import Game

    db = DatabaseManager(engine=create_engine("sqlite://"))
    db.create_tables()
    assert db.session.kw["autoflush"] is False  # the target never autoflushes
"""

# a row added by one manager's operation is visible to the next query of another manager
_VISIBLE = (
    _SETUP
    + """
    with SessionContext(db) as session:
        managers = create_all_managers(session)
        game = Game.create(name="Pending")
        managers.game._execute_db_operation("add game", lambda s: s.add(game))
        act = managers.act.create_act(game_id=game.id, title="First")
        assert act.game_id == game.id
        assert [g.id for g in managers.game.list_games()] == [game.id]
    print("visible")
"""
)

# a constraint violation raises at the manager call (where it is logged), not later at commit
_CONSTRAINT = (
    _SETUP
    + """
    with SessionContext(db) as session:
        taken = create_all_managers(session).game.create_game("Taken")
    with SessionContext(db) as session:
        managers = create_all_managers(session)
        clash = Game(id="other-id", slug=taken.slug, name="Clash")
        try:
            managers.game._execute_db_operation("add clash", lambda s: s.add(clash))
        except IntegrityError:
            print("raised at the call")
            raise SystemExit(0)
        print("not raised at the call")
    raise SystemExit(3)
"""
)


def test_flush_keeps_pending_rows_visible_and_errors_in_place(
    refactored: tuple[Path, dict[int, list[str]]],
) -> None:
    root, _ = refactored
    assert "visible" in _python(root, _VISIBLE).stdout
    assert "raised at the call" in _python(root, _CONSTRAINT).stdout


def _without(root: Path, rel: str, old: str, new: str) -> None:
    """Take something the phases wrote out of a copy again (a control)."""
    path = root / rel
    text = path.read_text()
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new))


def _copy_refactored(
    refactored: tuple[Path, dict[int, list[str]]], tmp_path: Path
) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(refactored[0], root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_without_the_flush_the_behaviour_changes(
    refactored: tuple[Path, dict[int, list[str]]], tmp_path: Path
) -> None:
    """The control: the same scripts against phases 1-3 with the flush taken out again
    (the commit simply deleted, as docs/plan.md words it) fail, so the test above can fail.
    The savepoint goes too: releasing it flushes as well."""
    root = _copy_refactored(refactored, tmp_path)
    base = Config().base_manager_module
    _without(root, base, "self._session.flush()", "pass")
    _without(root, base, "with self._session.begin_nested():", "if True:")
    visible = _python(root, _VISIBLE, check=False)
    assert visible.returncode != 0 and "visible" not in visible.stdout, (
        visible.stdout + visible.stderr
    )
    constraint = _python(root, _CONSTRAINT, check=False)
    assert constraint.returncode != 0, constraint.stdout + constraint.stderr
    assert "not raised at the call" in constraint.stdout


# ----------------------------------------------------------------------------- behaviour of the savepoint

# The engines the application meets: the one the target's test suite builds (a single
# in-memory connection, made by create_all before the DatabaseManager exists) and a
# database file opened by URL, as the CLI does.
_ENGINES = {
    "test-suite": """
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool
    from sologm.models.base import Base

    engine = create_engine(
        "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
    )
    Base.metadata.create_all(engine)
    db = DatabaseManager(engine=engine)
""",
    "file": """
    db = DatabaseManager(db_url="sqlite:///app.db")
""",
}

_SAVEPOINT_SETUP = """
    from sqlalchemy.exc import IntegrityError
    from sologm.core.factory import create_all_managers
    from sologm.database.session import DatabaseManager, SessionContext
    from sologm.models.act import Act
    from sologm.models.game import Game
{engine}
    db.create_tables()

    def names():
        with SessionContext(db) as session:
            return sorted(g.name for g in session.query(Game))

    with SessionContext(db) as session:
        taken = create_all_managers(session).game.create_game("Taken")

    def clash(session):
        # a valid row, then one whose slug is taken: the operation fails when it flushes
        session.add(Game.create(name="Partial"))
        session.add(Game(id="clash-id", slug=taken.slug, name="Clash"))
"""

# a failed operation, caught by the caller: the session goes on, and what succeeded before
# and after it is committed when the block ends; the failed operation left nothing behind
_CAUGHT = """
    with SessionContext(db) as session:
        managers = create_all_managers(session)
        managers.game.create_game("Before", is_active=False)
        try:
            managers.game._execute_db_operation("clash", clash)
        except IntegrityError:
            print("raised at the call")
        assert sorted(g.name for g in managers.game.list_games()) == ["Before", "Taken"]
        managers.game.create_game("After", is_active=False)
    assert names() == ["After", "Before", "Taken"], names()
    print("committed")
"""

# operations inside an operation: a failed inner one caught by the outer one is undone
# alone; an outer one that fails takes its successful inner ones with it
_NESTED = """
    with SessionContext(db) as session:
        managers = create_all_managers(session)

        def outer(session):
            game = managers.game.create_game("Outer", is_active=False)
            try:
                managers.game._execute_db_operation("inner clash", clash)
            except IntegrityError:
                print("inner raised")
            return managers.act.create_act(game_id=game.id, title="First")

        managers.game._execute_db_operation("outer", outer)

        def failing_outer(session):
            managers.game.create_game("Lost", is_active=False)
            managers.game._execute_db_operation("inner clash", clash)

        try:
            managers.game._execute_db_operation("failing outer", failing_outer)
        except IntegrityError:
            print("outer raised")
        assert sorted(g.name for g in managers.game.list_games()) == ["Outer", "Taken"]
    assert names() == ["Outer", "Taken"], names()
    with SessionContext(db) as session:
        assert [a.title for a in session.query(Act)] == ["First"]
    print("committed")
"""

# SessionContext still owns the transaction: a block that fails after a successful
# operation rolls it back (a released savepoint is part of the session's transaction)
_ROLLED_BACK = """
    try:
        with SessionContext(db) as session:
            create_all_managers(session).game.create_game("Undone", is_active=False)
            raise RuntimeError("the block fails after the operation")
    except RuntimeError:
        pass
    assert names() == ["Taken"], names()
    print("rolled back")
"""


def _savepoint_script(engine: str, body: str) -> str:
    return _SAVEPOINT_SETUP.format(engine=_ENGINES[engine]) + body


def _run_in_scratch(root: Path, engine: str, body: str, *, check: bool = True):
    """Run a script in the copy; a database file starts empty for each script."""
    (root / "app.db").unlink(missing_ok=True)
    return _python(root, _savepoint_script(engine, body), check=check)


@pytest.mark.parametrize("engine", sorted(_ENGINES))
def test_a_failed_operation_leaves_the_session_usable(
    refactored: tuple[Path, dict[int, list[str]]], tmp_path: Path, engine: str
) -> None:
    root = _copy_refactored(refactored, tmp_path)
    caught = _run_in_scratch(root, engine, _CAUGHT).stdout
    assert "raised at the call" in caught and "committed" in caught
    nested = _run_in_scratch(root, engine, _NESTED).stdout
    assert nested.count("inner raised") == 1 and "outer raised" in nested
    assert "committed" in nested
    assert "rolled back" in _run_in_scratch(root, engine, _ROLLED_BACK).stdout


def test_without_the_savepoint_a_failed_operation_breaks_the_session(
    refactored: tuple[Path, dict[int, list[str]]], tmp_path: Path
) -> None:
    """The control: without the savepoint (the flush alone, as before) the caller's next
    query, and SessionContext's commit, meet SQLAlchemy's PendingRollbackError."""
    root = _copy_refactored(refactored, tmp_path)
    base = Config().base_manager_module
    _without(root, base, "with self._session.begin_nested():", "if True:")
    for script in (_CAUGHT, _NESTED):
        proc = _run_in_scratch(root, "test-suite", script, check=False)
        assert proc.returncode != 0, proc.stdout
        assert "PendingRollbackError" in proc.stderr, proc.stderr[-3000:]
        assert "committed" not in proc.stdout


@pytest.mark.parametrize("engine", sorted(_ENGINES))
def test_without_the_begin_listener_a_released_savepoint_commits(
    refactored: tuple[Path, dict[int, list[str]]], tmp_path: Path, engine: str
) -> None:
    """The control: without phase 1's ``begin`` listener, the sqlite3 driver's SAVEPOINT
    starts a transaction of its own that its release commits, and the block's rollback
    cannot undo the operation."""
    root = _copy_refactored(refactored, tmp_path)
    session_module = Config().session_module
    _without(root, session_module, '.dialect.name == "sqlite"', ".dialect.name == None")
    proc = _run_in_scratch(root, engine, _ROLLED_BACK, check=False)
    assert proc.returncode != 0 and "rolled back" not in proc.stdout, proc.stdout
    assert "'Undone'" in proc.stderr, proc.stderr[-3000:]


# ----------------------------------------------------------------------------- bad input (phase 3)

_BASE = b"""from sqlalchemy.orm import Session


class BaseManager:
    def __init__(self, session: Session):
        self._session = session
"""


def _virtual(tmp_path: Path, files: dict[str, bytes]) -> Project:
    return Project(tmp_path, Config(), {"sologm/core/base_manager.py": _BASE, **files})


def test_factory_refuses_to_overwrite_an_incomplete_handwritten_one(
    tmp_path: Path,
) -> None:
    project = _virtual(
        tmp_path,
        {
            "sologm/core/game.py": b"from sologm.core.base_manager import BaseManager\n\n\nclass GameManager(BaseManager):\n    pass\n",
            "sologm/core/factory.py": b"def create_all_managers(session):\n    return None\n",
        },
    )
    with pytest.raises(InputError) as info:
        run_phase(project, PHASES[3])
    assert (info.value.path, info.value.line) == ("sologm/core/factory.py", 1)
    assert "GameManager" in info.value.message


def test_factory_rejects_a_required_non_manager_parameter(tmp_path: Path) -> None:
    source = b"""from sologm.core.base_manager import BaseManager


class OracleManager(BaseManager):
    def __init__(self, client, session=None):
        super().__init__(session=session)
"""
    project = _virtual(tmp_path, {"sologm/core/oracle.py": source})
    with pytest.raises(InputError) as info:
        run_phase(project, PHASES[3])
    assert (info.value.path, info.value.line) == ("sologm/core/oracle.py", 5)
    assert "`client`" in info.value.message


def test_factory_rejects_a_dependency_cycle(tmp_path: Path) -> None:
    a = b"""from sologm.core.base_manager import BaseManager


class AlphaManager(BaseManager):
    def __init__(self, beta_manager=None, *, session):
        super().__init__(session=session)
"""
    b = b"""from sologm.core.base_manager import BaseManager


class BetaManager(BaseManager):
    def __init__(self, alpha_manager=None, *, session):
        super().__init__(session=session)
"""
    project = _virtual(tmp_path, {"sologm/core/alpha.py": a, "sologm/core/beta.py": b})
    with pytest.raises(InputError) as info:
        run_phase(project, PHASES[3])
    assert (info.value.path, info.value.line) == ("sologm/core/alpha.py", 5)
    assert "cycle" in info.value.message and "AlphaManager" in info.value.message


def test_missing_base_manager_is_bad_input(tmp_path: Path) -> None:
    project = Project(tmp_path, Config(), {"sologm/core/game.py": b"x = 1\n"})
    for number in (2, 3):
        with pytest.raises(InputError) as info:
            run_phase(project, PHASES[number])
        assert info.value.path == Config().base_manager_module


def test_generated_factory_is_formatted(
    refactored: tuple[Path, dict[int, list[str]]],
) -> None:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    root, _ = refactored
    factory = root / Config().factory_module
    proc = subprocess.run(
        [ruff, "format", "--check", "--diff", "--isolated", str(factory)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ----------------------------------------------------------------------------- the registry


def test_registry_steps_follow_the_plan() -> None:
    assert [s.id for s in PHASES[1].steps] == ["1.1", "1.2", "1.3"]
    assert [s.id for s in PHASES[2].steps] == ["2.1", "2.2", "2.3", "2.4"]
    assert [s.id for s in PHASES[3].steps] == ["3.1", "3.2"]
    for number in (1, 2, 3):
        phase = PHASES[number]
        assert phase.verification and phase.goal
        for step in phase.steps:
            assert step.mechanical, step
            for codemod in step.codemods:
                assert codemod.STEP == step.id and codemod.DESCRIPTION


@pytest.mark.parametrize("step", ["1.1", "2.1"])
def test_codemods_run_under_libcsts_own_runner(tmp_path: Path, step: str) -> None:
    """``python -m libcst.tool codemod`` (reading ``.libcst.codemod.yaml``), run with each
    codemod of the step in turn, gives the same files as the tool's engine for that step."""
    number = int(step.split(".")[0])
    if number not in PHASES:
        pytest.skip(f"phase {number} is not installed")
    by_tool = _copy_target(tmp_path / "tool")
    by_libcst = _copy_target(tmp_path / "libcst")
    expected = run_phase(Project(by_tool), PHASES[number], [step]).changes
    assert expected, f"step {step} changes nothing on the target"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for codemod in PHASES[number].step(step).codemods:
        name = f"{codemod.__module__.rpartition('.')[2]}.{codemod.__name__}"
        command = ["codemod", "--no-format", name, str(by_libcst)]
        result = subprocess.run(
            [sys.executable, "-m", "libcst.tool", *command],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "Failed to codemod 0 files" in result.stderr, result.stderr
    for change in expected:
        assert (by_libcst / change.path).read_bytes() == change.new, change.path
    changed = {
        path.relative_to(by_libcst).as_posix()
        for path in by_libcst.rglob("*.py")
        if path.read_bytes() != (TARGET / path.relative_to(by_libcst)).read_bytes()
    }
    assert changed == {change.path for change in expected}


def test_worker_processes_give_the_same_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--jobs 2`` on a tree big enough for worker processes: the same bytes and notes as one
    process (small trees stay in one process, which also hands its trees to the next phase)."""
    from refactor_tool import engine

    root = _copy_target(tmp_path)
    serial = [run_phase(Project(root), PHASES[n]) for n in (1, 2)]
    monkeypatch.setattr(engine, "PARALLEL_BYTES", 0)
    parallel = [run_phase(Project(root), PHASES[n], jobs=2) for n in (1, 2)]
    for one, two in zip(serial, parallel):
        assert [(c.path, c.old, c.new) for c in two.changes] == [
            (c.path, c.old, c.new) for c in one.changes
        ]
        assert two.notes == one.notes
    # phase 2 has manager files to rewrite: the pool really ran
    assert serial[1].changes


def test_iter_statements_finds_every_statement_outside_match_cases() -> None:
    """The cheap statement walk of the manager search against a libcst visitor: every
    statement and small statement, at any depth (match cases are not entered)."""
    import sysconfig

    import libcst as cst

    from refactor_tool.model.managers import iter_statements

    class Statements(cst.CSTVisitor):
        def __init__(self) -> None:
            self.found: list[int] = []

        def visit_MatchCase(self, node: cst.MatchCase) -> bool:
            return False

        def on_visit(self, node: cst.CSTNode) -> bool:
            if isinstance(node, (cst.BaseStatement, cst.BaseSmallStatement)):
                self.found.append(id(node))
            return super().on_visit(node)

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(TARGET.rglob("*.py")) + sorted(stdlib.glob("*.py"))[::20]
    checked = 0
    for path in paths:
        try:
            module = cst.parse_module(path.read_bytes())
        except cst.ParserSyntaxError:
            continue
        reference = Statements()
        module.visit(reference)
        assert sorted(id(n) for n in iter_statements(module.body)) == sorted(
            reference.found
        )
        checked += 1
    assert checked > 40


def test_call_starts_are_the_patterns_matches() -> None:
    import re

    from codemods.phase2 import _call_starts

    names = ["Act", "ActManager", "GameManager", "SceneManager"]
    pattern = re.compile(rf"\b(?:{'|'.join(re.escape(n) for n in names)})\(")
    texts = [p.read_text() for p in sorted(TARGET.rglob("*.py"))]
    texts += [
        "ActManager(x) Act(y) MyActManager(z) _Act(q) ÄAct(r) Act (s) GameManager(",
        "",
    ]
    for text in texts:
        assert _call_starts(text, names) == [m.end() for m in pattern.finditer(text)]
    assert _call_starts(texts[-2], names) == [11, 18, 73]


def test_relpath_for_is_resolve_relative_to(tmp_path: Path) -> None:
    from refactor_tool.model.managers import relpath_for

    root = (tmp_path / "root").resolve()
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "outside.py").write_text("y = 2\n")
    (root / "pkg" / "link.py").symlink_to(root / "pkg" / "a.py")
    (root / "pkg" / "out.py").symlink_to(tmp_path / "outside.py")
    names = [
        "pkg/a.py",
        "pkg/link.py",
        "pkg/out.py",
        "pkg/../pkg/a.py",
        "pkg/missing.py",
        ".",
    ]
    for name in names:
        filename = str(root / name) if name != "." else str(root)
        try:
            expected = Path(filename).resolve().relative_to(root).as_posix()
        except ValueError:
            expected = None
        assert relpath_for(filename, root) == expected, name
    assert (
        relpath_for(str(tmp_path / "outside.py"), root) is None
        and relpath_for(None, root) is None
    )
