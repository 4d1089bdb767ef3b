"""Phases 4 and 5: the fixture-graph analysis, and the refactor proved on the bundled target.

The acceptance test copies ``target_project/`` to a scratch directory, applies phases 1 to 5
the way the CLI does (one phase at a time, written to disk, the tool's state saved in
between), runs the target's own suite and requires: no failure and no error, at least as
many tests as before, the tests listed in ``KNOWN_FAILURES.txt`` passing, and in every test
module at least as many ``assert`` statements as before. A second run of phases 4 and 5
must change nothing.

The other tests build small projects of their own, so what they expect is written next to
the input they give.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import libcst as cst
import pytest

from codemods import rewrite
from refactor_tool.engine import run_phase, write_changes
from refactor_tool.model import fixtures as fx
from refactor_tool.model.config import Config
from refactor_tool.model.project import Project
from refactor_tool.model.state import record_fixture_graph, save_state, state_of
from refactor_tool.phases import PHASES

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "target_project"


# ------------------------------------------------------------------------------- helpers


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def apply(root: Path, number: int) -> list[str]:
    """Apply one phase as the CLI does: compute, write, save the tool's state."""
    project = Project(root)
    result = run_phase(project, PHASES[number])
    write_changes(project, result.changes)
    save_state(project.root, state_of(project))
    return [str(n) for n in result.notes] + [
        f"changed {c.path}" for c in result.changes
    ]


def junit_outcomes(xml: Path, root: Path) -> dict[str, str]:
    """node id -> "passed" / "failed" / "error" / "skipped", from pytest's JUnit XML."""
    out: dict[str, str] = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        parts = case.get("classname", "").split(".")
        for i in range(len(parts), 0, -1):
            module = Path(*parts[:i]).with_suffix(".py")
            if (root / module).is_file():
                node = "::".join([module.as_posix(), *parts[i:], case.get("name", "")])
                break
        else:
            node = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None:
            out[node] = "failed"
        elif case.find("error") is not None:
            out[node] = "error"
        elif case.find("skipped") is not None:
            out[node] = "skipped"
        else:
            out[node] = "passed"
    return out


def suite_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("SOLOGM_DATABASE_URL", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["SOLOGM_HOME"] = str(home)
    return env


def start_suite(root: Path, junit: Path, *args: str) -> subprocess.Popen:
    """Start the target's suite (JUnit XML to ``junit``); ``finish_suite`` waits for it."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    return subprocess.Popen(
        [*command, f"--junitxml={junit}", *args],
        cwd=root,
        env=suite_env(junit.parent / f"{junit.stem}-home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish_suite(
    proc: subprocess.Popen, root: Path, junit: Path
) -> tuple[str, dict[str, str]]:
    output, _ = proc.communicate(timeout=900)
    assert junit.exists(), output[-5000:]
    return output, junit_outcomes(junit, root)


def assert_counts(root: Path) -> dict[str, int]:
    counts = {}
    for path in sorted(root.rglob("*.py")):
        if fx.is_test_module(Project(root), path.name):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            counts[path.relative_to(root).as_posix()] = sum(
                isinstance(n, ast.Assert) for n in ast.walk(tree)
            )
    return counts


def known_failures() -> set[str]:
    lines = (TARGET / "KNOWN_FAILURES.txt").read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def copy_target(dest: Path) -> Path:
    shutil.copytree(
        TARGET,
        dest,
        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc", "*.db"),
    )
    return dest


# ------------------------------------------------------------------------------- acceptance


@dataclass
class Refactored:
    before: set[str]
    after: dict[str, str]
    asserts_before: dict[str, int]
    asserts_after: dict[str, int]
    fixtures_after_phase4: str
    recorded: fx.FixtureGraph
    second_run: dict[int, list[str]]
    output: str


@pytest.fixture(scope="module")
def refactored(tmp_path_factory: pytest.TempPathFactory) -> Refactored:
    if not (TARGET / "KNOWN_FAILURES.txt").is_file():
        pytest.skip("target_project/ is not complete")
    base = tmp_path_factory.mktemp("acceptance")
    pristine = copy_target(base / "before")
    # the tests there are before the refactor (which of them fail is checked against
    # KNOWN_FAILURES.txt by test_target_project.py; here only the count matters)
    collected = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=pristine,
        env=suite_env(base / "collect-home"),
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    before = {line.strip() for line in collected.splitlines() if "::" in line}
    root = copy_target(base / "target")
    asserts_before = assert_counts(root)
    for number in (1, 2, 3, 4):
        apply(root, number)
    listing = subprocess.run(
        [sys.executable, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider", "-q"],
        cwd=root,
        env=suite_env(base / "listing-home"),
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    apply(root, 5)
    output, after = finish_suite(
        start_suite(root, base / "after.xml"), root, base / "after.xml"
    )
    recorded = state_of(Project(root)).fixture_graph
    assert recorded is not None, "phase 4 recorded no fixture graph"
    second = {n: run_phase(Project(root), PHASES[n]).changed_paths for n in (4, 5)}
    return Refactored(
        before=before,
        after=after,
        asserts_before=asserts_before,
        asserts_after=assert_counts(root),
        fixtures_after_phase4=listing,
        recorded=recorded,
        second_run=second,
        output=output[-5000:],
    )


def test_the_whole_suite_passes_after_phases_1_to_5(refactored: Refactored) -> None:
    broken = {
        node: outcome
        for node, outcome in refactored.after.items()
        if outcome in ("failed", "error")
    }
    assert not broken, refactored.output


def test_no_test_is_lost(refactored: Refactored) -> None:
    assert len(refactored.after) >= len(refactored.before)
    missing = {n for n in refactored.before if n not in refactored.after}
    assert not missing


def test_the_known_failures_now_pass(refactored: Refactored) -> None:
    known = known_failures()
    assert known, "KNOWN_FAILURES.txt lists no test"
    assert known <= refactored.before
    assert {n: refactored.after.get(n) for n in known} == {n: "passed" for n in known}


def test_every_assertion_is_kept(refactored: Refactored) -> None:
    for module, count in refactored.asserts_before.items():
        assert refactored.asserts_after.get(module, 0) >= count, module


def test_phase4_leaves_no_session_or_manager_fixture(refactored: Refactored) -> None:
    graph = refactored.recorded
    gone = graph.names(fx.SESSION, fx.MANAGER)
    assert Config().session_fixture in gone and len(gone) > 1  # what phase 4 removed
    listed = {
        line.split()[0]
        for line in refactored.fixtures_after_phase4.splitlines()
        if line and not line[0].isspace()
    }
    assert Config().session_context_fixture in listed  # the listing is real
    assert not (gone & listed)


def test_a_second_run_of_phases_4_and_5_changes_nothing(refactored: Refactored) -> None:
    assert refactored.second_run == {4: [], 5: []}


# ------------------------------------------------------------------------------- analysis

MANAGERS = {
    "pyproject.toml": "[project]\nname = 'demo'\n",
    "sologm/core/base_manager.py": """
        class BaseManager:
            def __init__(self, session=None):
                self._session = session
        """,
    "sologm/core/game.py": """
        from sologm.core.base_manager import BaseManager

        class GameManager(BaseManager):
            def __init__(self, session=None):
                super().__init__(session=session)
        """,
    "sologm/core/act.py": """
        from sologm.core.base_manager import BaseManager

        class ActManager(BaseManager):
            def __init__(self, game_manager=None, session=None, client=None):
                super().__init__(session=session)
        """,
    "sologm/models/game.py": """
        from typing import List, Optional
        from sqlalchemy.orm import Mapped, relationship

        class Game(Base):
            acts: Mapped[List["Act"]] = relationship("Act")
            owner: Mapped[Optional["User"]] = relationship("User")
            tags: Mapped[list["Tag"]] = relationship("Tag")
            notes = relationship("Note", uselist=True)
            cover = relationship("Cover", uselist=False)
            links = relationship("Link")
        """,
}

CONFTEST = """
    import pytest
    from sologm.core.act import ActManager as Acts
    from sologm.core.game import GameManager

    @pytest.fixture
    def db_session(database_manager):
        yield database_manager.get_session()

    @pytest.fixture
    def session_context():
        return object()

    @pytest.fixture
    def client():
        return object()

    @pytest.fixture
    def games(db_session):
        return GameManager(session=db_session)

    @pytest.fixture
    def acts(db_session, games):
        return Acts(game_manager=games, session=db_session)

    @pytest.fixture
    def acts_with_client(db_session, games, client):
        return Acts(game_manager=games, session=db_session, client=client)

    @pytest.fixture
    def create_test_game(db_session, games):
        def _make(name="G"):
            return games.create_game(name)
        return _make

    @pytest.fixture
    def a_game(create_test_game):
        return create_test_game(name="A")

    @pytest.fixture
    def an_act(a_game, acts):
        act = acts.create_act(game_id=a_game.id)
        return act

    @pytest.fixture
    def rows(db_session):
        yield [1]
        db_session.commit()

    @pytest.fixture
    def counter(db_session):
        def _count(model):
            return db_session.query(model).count()
        return _count

    @pytest.fixture
    def seeded(session_context):
        with session_context as session:
            session.add(object())

    @pytest.fixture
    def a_game(create_test_game):
        return create_test_game(name="later definition wins")
    """


def test_fixture_kinds_come_from_the_code_not_the_names(tmp_path: Path) -> None:
    root = write(tmp_path, {**MANAGERS, "sologm/tests/conftest.py": CONFTEST})
    analysis = fx.analyze_current(Project(root))
    kinds = {f.name: f.kind for f in analysis.graph.all()}
    assert kinds == {
        "db_session": fx.SESSION,
        "session_context": fx.SESSION_CONTEXT,
        "client": fx.PLAIN,
        "games": fx.MANAGER,
        "acts": fx.MANAGER,
        "acts_with_client": fx.MANAGER,
        "create_test_game": fx.FACTORY,
        "a_game": fx.OBJECT,
        "an_act": fx.OBJECT,
        "rows": fx.DB_OTHER,
        "counter": fx.DB_OTHER,
        "seeded": fx.PLAIN,
    }
    fixtures = analysis.graph.fixtures["sologm/tests/conftest.py"]
    # manager short names as create_all_managers names them; a manager that receives a
    # non-manager fixture is not something create_all_managers builds
    assert (fixtures["games"].manager_short, fixtures["games"].plain_manager) == (
        "game",
        True,
    )
    assert (fixtures["acts"].manager_short, fixtures["acts"].plain_manager) == (
        "act",
        True,
    )
    assert fixtures["acts_with_client"].plain_manager is False
    # the later of two definitions is the fixture; the earlier one is recorded as dead
    assert "later definition wins" in fixtures["a_game"].source
    assert analysis.graph.modules["sologm/tests/conftest.py"].dead == {"a_game": [35]}
    assert fixtures["rows"].problem and "yields" in fixtures["rows"].problem


_SESSION_CHAIN = """
import os

import pytest
from sqlalchemy import create_engine

{engine}


@pytest.fixture
def database_manager(db_engine):
    return object()


@pytest.fixture{session_scope}
def db_session(database_manager):
    yield database_manager
"""


@pytest.mark.parametrize(
    ("engine", "session_scope", "per_test"),
    [
        ('@pytest.fixture\ndef db_engine():\n    return create_engine("sqlite://")', "", True),
        (
            "@pytest.fixture(scope='function')\ndef db_engine():\n"
            + '    return create_engine(url="sqlite+pysqlite:///:memory:")',
            "",
            True,
        ),
        (
            "@pytest.fixture\ndef db_engine(tmp_path):\n"
            + '    url = f"sqlite:///{tmp_path / \'t.db\'}"\n    return create_engine(url)',
            "",
            True,
        ),
        ('@pytest.fixture\ndef db_engine():\n    return create_engine("sqlite://")', '(scope="session")', False),
        (
            '@pytest.fixture(scope="module")\ndef db_engine():\n    return create_engine("sqlite://")',
            "",
            False,
        ),
        (
            '@pytest.fixture\ndef db_engine():\n    return create_engine(os.environ["DB_URL"])',
            "",
            False,
        ),
        (
            'TEST_URL = "sqlite:///:memory:"\n\n\n'
            + "@pytest.fixture\ndef db_engine():\n    return create_engine(TEST_URL)",
            "",
            True,
        ),
        (
            'TEST_URL = "sqlite:///test.db"\n\n\n'
            + "@pytest.fixture\ndef db_engine():\n    return create_engine(TEST_URL)",
            "",
            False,
        ),
        (
            "@pytest.fixture\ndef db_engine(tmp_path_factory):\n"
            + '    return create_engine(f"sqlite:///{tmp_path_factory.getbasetemp()}/t.db")',
            "",
            False,
        ),
    ],
    ids=[
        "in-memory URL",
        "in-memory URL with a driver",
        "URL built from tmp_path",
        "session fixture of wider scope",
        "module-scoped engine",
        "URL from the environment",
        "in-memory URL constant of the module",
        "file path constant of the module",
        "directory shared by the session",
    ],
)
def test_a_database_per_test_is_found_through_the_session_fixtures_chain(
    tmp_path: Path, engine: str, session_scope: str, per_test: bool
) -> None:
    """The session fixture's chain of function-scoped fixtures reaches one that creates
    the engine on a database living only for the test: an in-memory SQLite URL, or one
    built from ``tmp_path``; anything else is not a database per test."""
    conftest = _SESSION_CHAIN.format(engine=engine, session_scope=session_scope)
    root = tmp_path / "project"
    (root / "sologm" / "tests").mkdir(parents=True)
    (root / "sologm" / "tests" / "conftest.py").write_text(conftest, encoding="utf-8")
    project = Project(root)
    graph = fx.analyze_current(project).graph
    assert fx.database_per_test(graph, "sologm/tests/test_x.py", project.config) is per_test


@pytest.mark.parametrize(
    ("teardown", "database_only"),
    [
        ("games.delete_game(game.id)", True),
        ("for entry in games.list_games():\n        games.delete_game(entry.id)", True),
        ("db_session.delete(game)\n    db_session.commit()", True),
        ("if games.get_game(game.id) is not None:\n        games.delete_game(game.id)", True),
        ("client.reset()", False),
        ("feed.reset()", False),
        ("os.remove(game.path)", False),
        ("print(game)", False),
        ("games.delete_game(a_game.id)", False),
    ],
    ids=[
        "through a manager",
        "in a loop of its own",
        "through the session",
        "under a condition",
        "another fixture",
        "what another fixture gave",
        "an import",
        "the console",
        "an object another fixture made",
    ],
)
def test_a_teardown_does_only_database_work_when_it_reads_only_what_the_fixture_made(
    teardown: str, database_only: bool
) -> None:
    source = (
        "@pytest.fixture\n"
        "def game(db_session, games, client, a_game):\n"
        "    game = games.create_game('G')\n"
        "    feed = client\n"
        "    yield game\n"
        f"    {teardown}\n"
    )
    fixture = fx.Fixture(
        name="game",
        rel="sologm/tests/conftest.py",
        line=1,
        params=["db_session", "games", "client", "a_game"],
        source=source,
        imports={"os": ["os", None, None]},
    )
    kinds: dict[str, str | None] = {
        "db_session": fx.SESSION,
        "games": fx.MANAGER,
        "client": fx.PLAIN,
        "a_game": fx.OBJECT,
    }
    assert fx.database_only_teardown(fixture, kinds) is database_only


def test_star_imports_are_followed_and_nearest_conftest_wins(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            **MANAGERS,
            "sologm/tests/conftest.py": CONFTEST,
            "sologm/core/tests/conftest.py": """
                import pytest
                from sologm.tests.conftest import *  # noqa

                @pytest.fixture
                def client():
                    return "overridden here"
                """,
            "sologm/cli/tests/conftest.py": "import pytest\n",
        },
    )
    graph = fx.analyze_current(Project(root)).graph
    core_test = "sologm/core/tests/test_x.py"
    assert (
        graph.resolve("games", core_test).kind == fx.MANAGER
    )  # through the star import
    assert graph.resolve("client", core_test).rel == "sologm/core/tests/conftest.py"
    assert (
        graph.resolve("client", "sologm/tests/test_y.py").rel
        == "sologm/tests/conftest.py"
    )
    assert (
        graph.resolve("games", "sologm/cli/tests/test_z.py") is None
    )  # no star import there


def test_a_nearer_definition_phase4_deleted_answers_over_one_it_kept(
    tmp_path: Path,
) -> None:
    """A conftest's override that phase 4 deleted answered for the tests below it before;
    the definition further away that phase 4 kept (for something else) never did."""
    star = "from sologm.tests.conftest import *  # noqa\n"
    override = star + textwrap.dedent(
        """
        import pytest

        @pytest.fixture
        def client():
            return "overridden here"
        """
    )
    files = {**MANAGERS, "sologm/tests/conftest.py": CONFTEST}
    before = fx.analyze_current(
        Project(write(tmp_path / "before", {**files, "sologm/core/tests/conftest.py": override}))
    ).graph
    after = fx.analyze_current(
        Project(write(tmp_path / "after", {**files, "sologm/core/tests/conftest.py": star}))
    ).graph
    after.fallback = before
    assert after.resolve("client", "sologm/core/tests/test_x.py").rel == (
        "sologm/core/tests/conftest.py"
    )
    assert after.resolve("client", "sologm/tests/test_y.py") is after.resolve_current(
        "client", "sologm/tests/test_y.py"
    )


def test_relationship_collections_are_read_from_the_models(tmp_path: Path) -> None:
    analysis = fx.analyze_current(Project(write(tmp_path, MANAGERS)))
    kinds = {
        name: analysis.attribute_kind(name)
        for name in ("acts", "owner", "tags", "notes", "cover", "links", "title")
    }
    assert kinds == {
        "acts": "collection",
        "owner": "scalar",
        "tags": "collection",
        "notes": "collection",
        "cover": "scalar",
        "links": "unknown",
        "title": "scalar",  # a column
    }


def test_the_graph_survives_json_and_a_record_is_never_made_emptier(
    tmp_path: Path,
) -> None:
    root = write(tmp_path, {**MANAGERS, "sologm/tests/conftest.py": CONFTEST})
    project = Project(root)
    graph = fx.analyze_current(project).graph
    again = fx.FixtureGraph.from_json(graph.to_json())
    assert again is not None and again.to_json() == graph.to_json()
    record_fixture_graph(project, graph)
    full = state_of(project).fixture_graph.to_json()
    smaller = fx.FixtureGraph.from_json(graph.to_json())
    assert smaller is not None
    del smaller.fixtures["sologm/tests/conftest.py"]["an_act"]
    record_fixture_graph(project, smaller)
    assert state_of(project).fixture_graph.to_json() == full
    save_state(project.root, state_of(project))
    assert state_of(Project(root)).fixture_graph.to_json() == full


TESTS = """
    def test_act(acts, an_act, db_session):
        assert acts.get_act(an_act.id) is not None
    """


def test_phase5_inlines_from_the_graph_phase4_recorded(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            **MANAGERS,
            "sologm/tests/conftest.py": CONFTEST,
            "sologm/tests/test_acts.py": TESTS,
        },
    )
    notes = apply(root, 4)
    conftest = (root / "sologm/tests/conftest.py").read_text()
    assert "def an_act(" not in conftest and "def games(" not in conftest
    assert any("'rows'" in n and "yields" in n for n in notes)
    # 'rows' and 'counter' stay (reported) and still request the session fixture: it stays
    assert "def db_session(" in conftest
    kept = (
        "sologm/tests/conftest.py:5: session fixture 'db_session' is kept: still "
        "requested by fixture 'rows' (sologm/tests/conftest.py:44), which phase 4 leaves in "
        "place; delete it by hand once nothing requests it"
    )
    assert [n for n in notes if "is kept" in n] == [kept]
    apply(root, 5)  # a new Project: the recipes come from .refactor-tool/state.json
    assert (root / "sologm/tests/test_acts.py").read_text() == textwrap.dedent(
        """\
        from sologm.core.factory import create_all_managers


        def test_act(session_context, create_test_game):
            with session_context as session:
                managers = create_all_managers(session)
                a_game = create_test_game(session, name="later definition wins")
                an_act = managers.act.create_act(game_id=a_game.id)

                assert managers.act.get_act(an_act.id) is not None
        """
    )


def test_a_gone_fixture_without_a_record_is_reported_and_the_test_left_alone(
    tmp_path: Path,
) -> None:
    root = write(
        tmp_path,
        {
            **MANAGERS,
            "sologm/tests/conftest.py": CONFTEST,
            "sologm/tests/test_acts.py": TESTS,
        },
    )
    apply(root, 4)
    (root / ".refactor-tool" / "state.json").unlink()
    project = Project(root)
    result = run_phase(project, PHASES[5])
    assert result.changes == []
    assert any(
        "fixture 'acts' is gone and no recipe was recorded" in str(n)
        for n in result.notes
    )


# ------------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    "source, remove, insert, expected",
    [
        (
            "def f(a, db_session):\n    pass\n",
            {"db_session"},
            [],
            "def f(a):\n    pass\n",
        ),
        (
            "def f(db_session, a):\n    pass\n",
            {"db_session"},
            ["ctx"],
            "def f(ctx, a):\n    pass\n",
        ),
        (
            "def f(self, x, y):\n    pass\n",
            {"x", "y"},
            ["ctx", "extra"],
            "def f(self, ctx, extra):\n    pass\n",
        ),
        (
            "def f(\n    a,  # keep me\n    db_session,  # Inject db_session\n    b,\n):\n    pass\n",
            {"db_session"},
            [],
            "def f(\n    a,  # keep me\n    b,\n):\n    pass\n",
        ),
        (
            "def f(\n    a,\n    db_session  # last, no trailing comma\n):\n    pass\n",
            {"db_session"},
            ["ctx"],
            "def f(\n    a,\n    ctx\n):\n    pass\n",
        ),
        ("def f():\n    pass\n", set(), ["session"], "def f(session):\n    pass\n"),
    ],
)
def test_edit_params_keeps_the_layout(
    source: str, remove: set[str], insert: list[str], expected: str
) -> None:
    module = cst.parse_module(source)
    fn = cst.ensure_type(module.body[0], cst.FunctionDef)
    params = rewrite.edit_params(
        fn.params, remove=remove, insert=[rewrite.new_param(n) for n in insert]
    )
    assert module.with_changes(body=[fn.with_changes(params=params)]).code == expected


@pytest.mark.parametrize(
    "declaration",
    [
        'pytest_plugins = "app.testing.fixtures"',
        'pytest_plugins = ("app.testing.fixtures", "pytest_thirdparty")',
        'pytest_plugins: list = ["app.testing.fixtures"]',
    ],
)
def test_fixture_graph_follows_pytest_plugins(tmp_path: Path, declaration: str) -> None:
    """Fixtures in a module a conftest loads with ``pytest_plugins`` are in the graph, and
    visible to every test below that conftest; a third-party plugin is not followed."""
    (tmp_path / "pyproject.toml").write_text('[tool.refactor-tool]\npackage = "app"\n')
    (tmp_path / "conftest.py").write_text(declaration + "\n")
    testing = tmp_path / "app" / "testing"
    testing.mkdir(parents=True)
    (tmp_path / "app" / "__init__.py").write_text("")
    (testing / "__init__.py").write_text("")
    (testing / "fixtures.py").write_text(
        textwrap.dedent(
            """\
            import pytest


            @pytest.fixture
            def db_session():
                return object()


            @pytest.fixture
            def rows(db_session):
                return [db_session]
            """
        )
    )
    graph = fx.build_graph(Project(tmp_path), None)
    assert "app/testing/fixtures.py" in graph.modules
    assert graph.modules["conftest.py"].stars == ["app/testing/fixtures.py"]
    found = graph.resolve("rows", "app/tests/test_rows.py")
    assert found is not None and found.rel == "app/testing/fixtures.py"


def test_unused_names_are_the_visitors_answer() -> None:
    """The walk that decides which imports phase 4 may drop, against a libcst visitor that
    collects every name outside imports and every string without whitespace that holds an
    expression (a string annotation; not a one-word docstring)."""
    import ast
    import random
    import re as re_module
    import sysconfig

    import libcst as cst

    from codemods.rewrite import unused_names

    class Used(cst.CSTVisitor):
        def __init__(self) -> None:
            self.names: set[str] = set()
            self.text: list[str] = []

        def visit_Import(self, node: cst.Import) -> bool:
            return False

        def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
            return False

        def visit_Name(self, node: cst.Name) -> None:
            self.names.add(node.value)

        def visit_SimpleString(self, node: cst.SimpleString) -> None:
            if re_module.search(r"\s", node.value):
                return
            try:
                value = ast.literal_eval(node.value)
                if isinstance(value, str):
                    ast.parse(value, mode="eval")
            except (SyntaxError, ValueError):
                return
            self.text.append(node.value)

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(TARGET.rglob("*.py")) + sorted(stdlib.glob("*.py"))[::30]
    rng = random.Random(5)
    for path in paths:
        module = cst.parse_module(path.read_bytes())
        used = Used()
        module.visit(used)
        strings = "\n".join(used.text)
        words = sorted(
            set(re_module.findall(r"[A-Za-z_]\w*", path.read_text())) | {"not_there"}
        )
        for _ in range(4):
            candidates = set(rng.sample(words, min(len(words), rng.choice([1, 3, 12]))))
            expected = {
                n
                for n in candidates
                if n not in used.names
                and not re_module.search(rf"\b{re_module.escape(n)}\b", strings)
            }
            assert unused_names(module, candidates) == expected, (path, candidates)


# ------------------------------------------------------------------------------- what phase 4 keeps

KEEP_PROJECT = {
    **MANAGERS,
    "conftest.py": 'pytest_plugins = ["sologm.testing.fixtures"]\n',
    "sologm/__init__.py": "",
    "sologm/testing/__init__.py": "",
    "sologm/testing/fixtures.py": """
        import pytest
        from sologm.core.game import GameManager

        @pytest.fixture
        def plugged_games(db_session):
            return GameManager(session=db_session)
        """,
    "sologm/tests/conftest.py": """
        import pytest
        from sologm.core.act import ActManager
        from sologm.core.game import GameManager

        @pytest.fixture
        def db_session(database_manager):
            yield database_manager.get_session()

        @pytest.fixture
        def games(db_session):
            return GameManager(session=db_session)

        @pytest.fixture
        def acts(db_session, games):
            return ActManager(game_manager=games, session=db_session)

        @pytest.fixture
        def marked_games(db_session):
            return GameManager(session=db_session)

        @pytest.fixture
        def local_games(db_session):
            return GameManager(session=db_session)

        @pytest.fixture
        def unused_games(db_session):
            return GameManager(session=db_session)

        @pytest.fixture
        def a_game(games):
            return games.create_game("A")

        @pytest.fixture
        def game_rows(a_game):
            yield [a_game]
            a_game.name = None

        @pytest.fixture
        def database_manager():
            return object()

        @pytest.fixture
        def session_context(database_manager):
            return object()
        """,
    "sologm/tests/deep/conftest.py": """
        import pytest
        from sologm.core.game import GameManager

        @pytest.fixture
        def a_game(db_session):
            return GameManager(session=db_session).create_game("deep")

        @pytest.fixture
        def create_test_act(acts):
            def _create_act(session, title="A"):
                return acts.create_act(title=title)
            yield _create_act
            acts.forget()
        """,
    "sologm/tests/deep/test_deep.py": """
        import pytest

        @pytest.fixture
        def local_rows(local_games):
            rows = local_games.list_games()
            yield rows
            rows.clear()

        @pytest.mark.usefixtures("marked_games")
        class TestMarked:
            def test_rows(self, local_rows):
                assert local_rows == []

        def test_fetched(request):
            session = request.getfixturevalue("plugged_games")
            assert session is not None

        def test_rewritten(acts, db_session):
            assert acts.list_acts() == []
        """,
}


def test_phase4_keeps_what_stays_requests_wherever_it_asks(tmp_path: Path) -> None:
    """A fixture phase 4 would delete stays while anything that stays requests it: a fixture
    it leaves (here one in a sub-directory conftest, and one whose request a sub-directory
    conftest answers with its own definition), a test phase 5 leaves as it is (a fixture
    fetched from a plugin by name), a fixture a test module defines, a class's usefixtures
    mark; and in turn what a kept fixture requests."""
    from codemods import phase4

    root = write(tmp_path, KEEP_PROJECT)
    analysis = phase4.analyze(Project(root))
    plan = analysis.plan
    assert plan is not None
    fates = {f.where: (f.name, plan.fate(f)) for f in analysis.graph.all()}
    assert (
        {where: fate for where, (name, fate) in fates.items()}
        == {
            "sologm/testing/fixtures.py:4": fx.KEEP,  # plugged_games: test_fetched
            "sologm/tests/conftest.py:5": fx.KEEP,  # db_session: kept managers
            "sologm/tests/conftest.py:9": fx.KEEP,  # games: a_game, kept
            "sologm/tests/conftest.py:13": fx.KEEP,  # acts: create_test_act (deep)
            "sologm/tests/conftest.py:17": fx.KEEP,  # marked_games: TestMarked's mark
            "sologm/tests/conftest.py:21": fx.KEEP,  # local_games: the module's local_rows
            "sologm/tests/conftest.py:25": fx.DELETE,  # unused_games
            "sologm/tests/conftest.py:29": fx.KEEP,  # a_game: game_rows, left in place
            "sologm/tests/conftest.py:33": fx.LEAVE,  # game_rows: yields, a teardown follows
            "sologm/tests/conftest.py:38": fx.UNCHANGED,  # database_manager
            "sologm/tests/conftest.py:42": fx.UNCHANGED,  # session_context
            "sologm/tests/deep/conftest.py:4": fx.KEEP,  # deep a_game answers game_rows below
            "sologm/tests/deep/conftest.py:8": fx.LEAVE,  # create_test_act: yields, a teardown follows
        }
    )
    assert str(
        plan.keeper(analysis.graph.resolve("plugged_games", "sologm/tests/x.py"))
    ) == (
        "test 'test_fetched' (sologm/tests/deep/test_deep.py:14), which phase 5 leaves as it is"
    )
    assert str(
        plan.keeper(analysis.graph.resolve("marked_games", "sologm/tests/x.py"))
    ) == (
        # step 5.2 makes the class's mark a parameter of the test, which phase 5 then
        # leaves as it is (it requests a fixture of its module with a teardown)
        "test 'TestMarked.test_rows' (sologm/tests/deep/test_deep.py:11), which phase 5 "
        "leaves as it is"
    )
    assert str(
        plan.keeper(analysis.graph.resolve("local_games", "sologm/tests/x.py"))
    ) == (
        "fixture 'local_rows' (sologm/tests/deep/test_deep.py:3), which the test module defines"
    )


def _dangling_requests(root: Path) -> list[str]:
    """Requests no definition answers: of the fixtures of every conftest (and what they pull
    in) and of every test and fixture of every test module."""
    return [str(r) for r in fx.unresolved_requests(Project(root))]


def test_after_phases_4_and_5_every_request_finds_its_fixture(tmp_path: Path) -> None:
    root = write(tmp_path, KEEP_PROJECT)
    assert _dangling_requests(root) == []
    notes = apply(root, 4)
    assert "changed sologm/tests/conftest.py" in notes
    assert "def unused_games(" not in (root / "sologm/tests/conftest.py").read_text()
    assert _dangling_requests(root) == []
    assert any("changed sologm/tests/deep/test_deep.py" == n for n in apply(root, 5))
    assert _dangling_requests(root) == []
