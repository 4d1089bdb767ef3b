"""Phase 6 and ``check``.

* ``check``: a small project in the end state docs/plan.md describes passes all six invariants;
  each mutation below breaks exactly one invariant, which must then fail with the file and
  line of the offending code; the untouched bundled target fails.
* Step 6.1's rule for "commented-out code" (parse the uncommented text) on prose and code.
* Step 6.3: ruff formats the files the refactoring changed (git diff against the recorded
  base commit) and nothing else, with the target's own ruff configuration.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from codemods.phase6 import (
    PHASE,
    format_changed,
    parse_code,
    plan_block,
    refactored_files,
    removed_names,
)
from refactor_tool.check import run_checks
from refactor_tool.engine import run_phase
from refactor_tool.model.changes import FileChange
from refactor_tool.model.config import Config
from refactor_tool.model.project import Project
from refactor_tool.model.state import state_of

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "target_project"


def _d(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# --------------------------------------------------------------------------- an end-state tree

GOOD = {
    "pyproject.toml": '[project]\nname = "sologm"\n',
    "sologm/__init__.py": "",
    "sologm/database/__init__.py": _d(
        """
        from sologm.database.session import DatabaseManager, SessionContext, get_db_context

        __all__ = ["DatabaseManager", "SessionContext", "get_db_context"]
        """
    ),
    "sologm/database/session.py": _d(
        """
        from typing import Optional

        from sqlalchemy import create_engine
        from sqlalchemy.orm import Session, sessionmaker


        class DatabaseManager:
            _instance: Optional["DatabaseManager"] = None
            session: sessionmaker

            def __init__(self, db_url: str) -> None:
                self.engine = create_engine(db_url)
                factory = sessionmaker(bind=self.engine, expire_on_commit=False)
                self.session = factory

            @classmethod
            def get_instance(cls) -> "DatabaseManager":
                return cls._instance


        class SessionContext:
            def __init__(self, db_manager: Optional[DatabaseManager] = None) -> None:
                self._db = db_manager or DatabaseManager.get_instance()
                self.session: Optional[Session] = None

            def __enter__(self) -> Session:
                self.session = self._db.session()
                return self.session

            def __exit__(self, exc_type, exc_val, exc_tb) -> None:
                try:
                    if exc_type is not None:
                        self.session.rollback()
                    else:
                        self.session.commit()
                finally:
                    self.session.close()


        def get_db_context() -> SessionContext:
            return SessionContext()
        """
    ),
    "sologm/core/__init__.py": "",
    "sologm/core/base_manager.py": _d(
        """
        import importlib
        import logging
        from typing import Any, Callable, Generic, TypeVar

        from sqlalchemy.orm import Session

        T = TypeVar("T")
        M = TypeVar("M")


        class BaseManager(Generic[T, M]):
            def __init__(self, session: Session):
                self._session = session
                self.logger = logging.getLogger(type(self).__name__)

            def _execute_db_operation(self, name: str, operation: Callable[..., Any], *args: Any) -> Any:
                try:
                    return operation(self._session, *args)
                except Exception:
                    self.logger.exception("%s failed", name)
                    raise

            def _lazy_init_manager(self, attr_name: str, class_path: str, **kwargs: Any) -> Any:
                if not hasattr(self, attr_name):
                    module_name, class_name = class_path.rsplit(".", 1)
                    manager_class = getattr(importlib.import_module(module_name), class_name)
                    kwargs["session"] = self._session
                    setattr(self, attr_name, manager_class(**kwargs))
                return getattr(self, attr_name)
        """
    ),
    "sologm/core/game.py": _d(
        """
        from sqlalchemy.orm import Session

        from sologm.core.base_manager import BaseManager


        class GameManager(BaseManager[object, object]):
            def __init__(self, session: Session):
                super().__init__(session=session)

            def create_game(self, name: str) -> object:
                return self._execute_db_operation("create", lambda s: name)
        """
    ),
    "sologm/core/act.py": _d(
        """
        from typing import Optional

        from sqlalchemy.orm import Session

        from sologm.core.base_manager import BaseManager
        from sologm.core.game import GameManager


        class ActManager(BaseManager[object, object]):
            def __init__(self, game_manager: Optional[GameManager] = None, session: Session = None):
                super().__init__(session=session)
                self._game_manager = game_manager
        """
    ),
    "sologm/core/factory.py": _d(
        """
        from types import SimpleNamespace

        from sqlalchemy.orm import Session

        from sologm.core.act import ActManager
        from sologm.core.game import GameManager


        def create_all_managers(session: Session) -> SimpleNamespace:
            game_manager = GameManager(session=session)
            act_manager = ActManager(session=session, game_manager=game_manager)
            return SimpleNamespace(game=game_manager, act=act_manager)
        """
    ),
    "sologm/tests/__init__.py": "",
    "sologm/tests/conftest.py": _d(
        """
        import pytest

        from sologm.core.factory import create_all_managers
        from sologm.database.session import get_db_context


        @pytest.fixture
        def session_context():
            return get_db_context()


        @pytest.fixture
        def mock_console():
            return object()


        @pytest.fixture
        def create_test_game():
            def _create_game(session, name="Game"):
                return create_all_managers(session).game.create_game(name)

            return _create_game
        """
    ),
    "sologm/core/tests/__init__.py": "",
    "sologm/core/tests/conftest.py": "from sologm.tests.conftest import *  # noqa: F403\n",
    "sologm/core/tests/test_game.py": _d(
        """
        import pytest

        from sologm.core.factory import create_all_managers
        from sologm.core.game import GameManager


        def test_create(session_context, create_test_game):
            with session_context as session:
                managers = create_all_managers(session)
                game = create_test_game(session, name="Quest")
                assert managers.game is not None and game == "Quest"


        class TestGameManager:
            @pytest.mark.parametrize("name", ["a", "b"])
            def test_direct(self, session_context, name):
                with session_context as session:
                    manager = GameManager(session=session)
                    assert manager.create_game(name) == name


        def test_no_database(mock_console):
            assert mock_console is not None


        def test_context_without_a_name(session_context):
            with pytest.raises(KeyError):
                with session_context:
                    raise KeyError("x")
        """
    ),
}


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _line_of(text: str, needle: str) -> int:
    """The 1-based line of the first line containing ``needle`` (expected lines are found
    in the mutated source, not written into the test)."""
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the source")


def _results(root: Path) -> dict[int, object]:
    return {r.number: r for r in run_checks(Project(root))}


def test_end_state_passes_every_invariant(tmp_path: Path) -> None:
    results = run_checks(Project(_write(tmp_path, GOOD)))
    assert [r.number for r in results] == [1, 2, 3, 4, 5, 6]
    for result in results:
        assert result.ok, (result.number, [str(f) for f in result.failures])
        assert result.title


# (invariant, file, old text, new text, text of the line the failure must point at, message part)
MUTATIONS = [
    pytest.param(
        1, "sologm/database/__init__.py",
        '"get_db_context"]', '"get_db_context", "get_session"]',
        '"get_session"]', "re-exports `get_session`", id="1-reexport",
    ),
    pytest.param(
        1, "sologm/core/game.py",
        "from sologm.core.base_manager import BaseManager",
        "from sologm.core.base_manager import BaseManager\nfrom sologm.database.session import get_session",
        "import get_session", "imports `get_session`", id="1-import",
    ),
    pytest.param(
        1, "sologm/database/session.py",
        "        self.session = factory\n",
        "        self.session = factory\n\n    def close_session(self) -> None:\n        self.session.remove()\n",
        "def close_session", "defines `close_session`", id="1-method",
    ),
    pytest.param(
        2, "sologm/database/session.py",
        "self.session = factory", "self.session = scoped(factory)",
        "self.session = scoped(factory)", "store the sessionmaker itself", id="2-not-a-sessionmaker",
    ),
    pytest.param(
        2, "sologm/database/session.py",
        "self.session = self._db.session()", "self.session = self._db.current",
        "def __enter__", "__enter__ does not create a new session", id="2-enter",
    ),
    pytest.param(
        2, "sologm/database/session.py",
        "        finally:\n            self.session.close()\n",
        "        except Exception:\n            raise\n        self.session.close()\n",
        "def __exit__", "close the session in a `finally`", id="2-finally",
    ),
    pytest.param(
        3, "sologm/core/base_manager.py",
        "def __init__(self, session: Session):", "def __init__(self, session: Optional[Session] = None):",
        "def __init__(self, session", "make it required", id="3-optional-session",
    ),
    pytest.param(
        3, "sologm/core/base_manager.py",
        "return operation(self._session, *args)",
        "result = operation(self._session, *args)\n            self._session.commit()\n            return result",
        "self._session.commit()", "calls commit()", id="3-commit",
    ),
    pytest.param(
        3, "sologm/core/game.py",
        "return self._execute_db_operation(", "self._get_session()\n        return self._execute_db_operation(",
        "self._get_session()", "`_get_session` is still here", id="3-get-session",
    ),
    pytest.param(
        3, "sologm/core/base_manager.py",
        'kwargs["session"] = self._session', 'kwargs["session"] = None',
        "def _lazy_init_manager", "does not pass the parent's session", id="3-lazy",
    ),
    pytest.param(
        4, "sologm/core/factory.py",
        "    act_manager = ActManager(session=session, game_manager=game_manager)\n", "",
        "def create_all_managers", "does not create `ActManager`", id="4-missing-manager",
    ),
    pytest.param(
        4, "sologm/core/factory.py",
        "    game_manager = GameManager(session=session)\n    act_manager = ActManager(session=session, game_manager=game_manager)\n",
        "    act_manager = ActManager(session=session, game_manager=game_manager)\n    game_manager = GameManager(session=session)\n",
        "act_manager = ActManager", "used before it is created", id="4-order",
    ),
    pytest.param(
        4, "sologm/core/factory.py",
        "-> SimpleNamespace:", ":",
        "def create_all_managers", "-> SimpleNamespace", id="4-annotation",
    ),
    pytest.param(
        4, "sologm/core/factory.py",
        "game_manager = GameManager(session=session)", "game_manager = GameManager()",
        "game_manager = GameManager()", "is not given the session", id="4-no-session",
    ),
    pytest.param(
        5, "sologm/tests/conftest.py",
        "@pytest.fixture\ndef mock_console():",
        "@pytest.fixture\ndef db_session(session_context):\n    return None\n\n\n@pytest.fixture\ndef mock_console():",
        "def db_session", "fixture `db_session` still exists", id="5-db-session",
    ),
    pytest.param(
        5, "sologm/tests/conftest.py",
        "@pytest.fixture\ndef mock_console():",
        "@pytest.fixture\ndef game_manager(session_context):\n    manager = GameManager(session=None)\n"
        "    return manager\n\n\n@pytest.fixture\ndef mock_console():",
        "def game_manager", "provides a GameManager", id="5-manager-fixture",
    ),
    pytest.param(
        5, "sologm/tests/conftest.py",
        "def _create_game(session, name=\"Game\"):", "def _create_game(name=\"Game\", session=None):",
        "def _create_game", "must take `session` as its first parameter", id="5-factory-signature",
    ),
    pytest.param(
        5, "sologm/tests/conftest.py",
        "return create_all_managers(session).game.create_game(name)",
        "game = create_all_managers(session).game.create_game(name)\n        return session.merge(game)",
        "session.merge(game)", "calls merge()", id="5-merge",
    ),
    pytest.param(
        6, "sologm/core/tests/test_game.py",
        "    with session_context as session:\n        managers = create_all_managers(session)\n"
        "        game = create_test_game(session, name=\"Quest\")",
        "    session = None\n    if True:\n        managers = create_all_managers(session)\n"
        "        game = create_test_game(session, name=\"Quest\")",
        "def test_create", "outside `with session_context as session:`", id="6-no-context",
    ),
    pytest.param(
        6, "sologm/core/tests/test_game.py",
        'game = create_test_game(session, name="Quest")', 'game = create_test_game(name="Quest")',
        'create_test_game(name="Quest")', "must get the session first", id="6-factory-call",
    ),
    pytest.param(
        6, "sologm/core/tests/test_game.py",
        "manager = GameManager(session=session)", "manager = GameManager()",
        "manager = GameManager()", "built without the test's session", id="6-manager-without-session",
    ),
    pytest.param(
        6, "sologm/core/tests/test_game.py",
        "def test_no_database(mock_console):", "def test_no_database(mock_console, game_manager):",
        "def test_no_database", "requests `game_manager`, a fixture the refactoring removed", id="6-old-fixture",
    ),
]


@pytest.mark.parametrize("number,rel,old,new,line_text,message", MUTATIONS)
def test_each_invariant_fails_with_file_and_line(
    tmp_path: Path, number: int, rel: str, old: str, new: str, line_text: str, message: str
) -> None:
    files = dict(GOOD)
    assert old in files[rel], "the mutation must apply to the good tree"
    files[rel] = files[rel].replace(old, new, 1)
    if "Optional" in new and "import Optional" not in files[rel]:
        files[rel] = "from typing import Optional\n" + files[rel]
    results = _results(_write(tmp_path, files))
    failing = {n for n, r in results.items() if not r.ok}
    assert failing == {number}, {n: [str(f) for f in results[n].failures] for n in failing}
    expected_line = _line_of(files[rel], line_text)
    hits = [f for f in results[number].failures if f.path == rel and message in f.message]
    assert hits, [str(f) for f in results[number].failures]
    assert any(f.line == expected_line for f in hits), ([str(f) for f in hits], expected_line)


def test_missing_factory_module_fails_invariant_4(tmp_path: Path) -> None:
    files = {k: v for k, v in GOOD.items() if k != "sologm/core/factory.py"}
    files["sologm/tests/conftest.py"] = files["sologm/tests/conftest.py"].replace(
        "create_all_managers(session).game", "GameManager(session=session)"
    )
    results = _results(_write(tmp_path, files))
    assert not results[4].ok
    assert results[4].failures[0].path == "sologm/core/factory.py"


def test_names_come_from_the_configuration(tmp_path: Path) -> None:
    """A project that calls its session fixture ``dbs``: `check` looks for that name."""
    files = dict(GOOD)
    files["pyproject.toml"] += '\n[tool.refactor-tool]\nsession_fixture = "dbs"\n'
    files["sologm/tests/conftest.py"] += "\n\n@pytest.fixture\ndef dbs():\n    return None\n"
    results = _results(_write(tmp_path, files))
    assert [f.message for f in results[5].failures] == [
        "fixture `dbs` still exists; delete it (tests use `with session_context as session:`)"
    ]
    assert results[5].failures[0].line == _line_of(files["sologm/tests/conftest.py"], "def dbs")


def test_base_manager_session_attribute_is_read_from_init(tmp_path: Path) -> None:
    """A base manager that keeps its session as ``self.db``: the lazy-init check expects the
    parent's ``self.db`` to be passed on, not ``self._session``."""
    files = dict(GOOD)
    rel = "sologm/core/base_manager.py"
    files[rel] = files[rel].replace("self._session", "self.db")
    results = _results(_write(tmp_path, files))
    assert results[3].ok, [str(f) for f in results[3].failures]
    files[rel] = files[rel].replace('kwargs["session"] = self.db', 'kwargs["session"] = self._session')
    results = _results(_write(tmp_path / "again", files))
    assert [f.message for f in results[3].failures] == [
        '_lazy_init_manager does not pass the parent\'s session; add `kwargs["session"] = self.db`'
    ]


def test_a_base_manager_without_a_lazy_initializer_creates_nothing_lazily(tmp_path: Path) -> None:
    """No ``_lazy_init_manager`` at all: managers get their managers handed in, and the
    invariant holds; one under another name is still asked for by name."""
    files = dict(GOOD)
    rel = "sologm/core/base_manager.py"
    start = files[rel].index("    def _lazy_init_manager")
    end = files[rel].index("        return getattr(self, attr_name)\n") + len("        return getattr(self, attr_name)\n")
    files[rel] = files[rel][:start].rstrip() + "\n" + files[rel][end:]
    results = _results(_write(tmp_path, files))
    assert results[3].ok, [str(f) for f in results[3].failures]
    files[rel] = GOOD[rel].replace("def _lazy_init_manager", "def _manager")
    results = _results(_write(tmp_path / "renamed", files))
    assert [f.message for f in results[3].failures] == [
        "no method _lazy_init_manager, but _manager creates managers lazily; set "
        "lazy_init_method to its name"
    ]


def test_a_fixture_opening_the_session_context_itself_is_no_database_use_of_its_tests(
    tmp_path: Path,
) -> None:
    """A fixture that seeds the database in a ``with session_context`` block of its own is
    already the end state's way: a test requesting only it opens no session."""
    files = dict(GOOD)
    files["sologm/tests/conftest.py"] += _d(
        """


        @pytest.fixture
        def seeded_games(session_context, create_test_game):
            with session_context as session:
                return [create_test_game(session, name=n) for n in ("a", "b")]


        @pytest.fixture
        def seeded_names(session_context):
            return session_context
        """
    )
    files["sologm/core/tests/test_seeded.py"] = _d(
        """
        def test_seeded(seeded_games):
            assert seeded_games


        def test_leaked(seeded_names):
            assert seeded_names
        """
    )
    results = _results(_write(tmp_path, files))
    assert [f.message for f in results[6].failures] == [
        "test `test_leaked` uses the database (seeded_names) outside "
        "`with session_context as session:`"
    ]


def _copy_target(tmp_path: Path) -> Path:
    if not (TARGET / "sologm").is_dir():
        pytest.skip("target_project is not there")
    dest = tmp_path / "target"
    shutil.copytree(TARGET, dest, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return dest


def test_untouched_target_fails_check(tmp_path: Path) -> None:
    root = _copy_target(tmp_path)
    results = _results(root)
    config = Config()
    # the "before" state breaks every invariant
    assert all(not r.ok for r in results.values()), {n: r.ok for n, r in results.items()}
    session_py = (root / config.session_module).read_text()
    conftest = (root / "sologm/tests/conftest.py").read_text()
    assert (config.session_module, _line_of(session_py, "def get_session(self)")) in {
        (f.path, f.line) for f in results[1].failures
    }
    assert (config.session_module, _line_of(session_py, "session: scoped_session")) in {
        (f.path, f.line) for f in results[2].failures
    }
    assert ("sologm/tests/conftest.py", _line_of(conftest, f"def {config.session_fixture}(")) in {
        (f.path, f.line) for f in results[5].failures
    }
    assert results[4].failures[0].path == config.factory_module


# --------------------------------------------------------------------------- 6.1 rules


@pytest.mark.parametrize(
    "comment",
    [
        "# Note: get_session is gone",  # parses as an annotation, but prose
        "# TODO",
        "# get_session() is no longer called",
        "# Thread-local registry: get_session() returns the same Session",
        "# Returns: Session",
        "# see get_session",
    ],
)
def test_prose_is_not_code(comment: str) -> None:
    assert parse_code([comment[1:]]) is None


@pytest.mark.parametrize(
    "lines",
    [
        ["# session = get_session()"],
        ["#     session.close()"],
        ["# db_session,"],
        ["# @pytest.fixture", "# def db_session(db_engine):", "#     yield db_engine"],
        ["#     session: Session"],
    ],
)
def test_commented_out_code_is_code(lines: list[str]) -> None:
    assert parse_code([line[1:] for line in lines]) is not None


def test_only_the_unit_that_names_a_removed_api_goes() -> None:
    dead = removed_names(Config())
    import re

    pattern = re.compile(r"(?<!\w)(?:db_session|get_session)(?!\w)")
    block = [
        "# @pytest.fixture",
        "# def db_session(database_manager):",
        "#     yield database_manager.get_session()",
        "#",
        "# @pytest.fixture",
        "# def names():",
        '#     return ["a"]',
    ]
    plan = plan_block(block, dead, pattern)
    assert sorted(plan.remove) == [0, 1, 2, 3]
    assert plan.reports == []


# --------------------------------------------------------------------------- 6.3 ruff


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True,
        env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
             "GIT_COMMITTER_EMAIL": "t@t", "PATH": __import__("os").environ["PATH"], "HOME": str(root)},
    ).stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_formatting_covers_refactored_files_only(tmp_path: Path) -> None:
    root = tmp_path / "t"
    messy = "def f( a ):\n    return a\n"
    _write(
        root,
        {
            "pyproject.toml": '[project]\nname = "x"\n\n[tool.ruff.format]\nquote-style = "single"\n',
            "pkg/changed.py": "X = 1\n",
            "pkg/untouched.py": messy,
        },
    )
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "base")
    base = _git(root, "rev-parse", "HEAD").strip()
    # an earlier phase rewrote changed.py (unformatted), and created factory.py
    (root / "pkg/changed.py").write_text('X = {"a" :1}\n')
    (root / "sologm/core").mkdir(parents=True)
    (root / "sologm/core/factory.py").write_text("def create_all_managers( session ):\n    return session\n")
    project = Project(root)
    state_of(project).base_commit = base
    assert refactored_files(project) == {"pkg/changed.py", "sologm/core/factory.py"}

    changes = format_changed(project, [])
    by_path = {c.path: c.new for c in changes}
    assert sorted(by_path) == ["pkg/changed.py", "sologm/core/factory.py"]
    assert by_path["pkg/changed.py"] == b"X = {'a': 1}\n"  # the target's quote style
    assert by_path["sologm/core/factory.py"] == b"def create_all_managers(session):\n    return session\n"
    # a second pass over the formatted files changes nothing
    for change in changes:
        (root / change.path).write_bytes(change.new)
    assert format_changed(Project(root), []) == []
    assert (root / "pkg/untouched.py").read_text() == messy


def test_formatting_rewrites_the_phase_own_changes(tmp_path: Path) -> None:
    project = Project(tmp_path, Config(), {"a.py": b"x=1\n"})
    change = FileChange("a.py", b"x=1\n", b"x  =  2\n")
    [result] = format_changed(project, [change])
    assert result.new == b"x = 2\n"


def _formatted(root: Path, files: dict[str, bytes], old: bytes, new: bytes) -> dict[str, bytes]:
    """Step 6.3's output for ``files`` (on disk as they were before the refactoring) once a
    phase replaced ``old`` by ``new`` in each."""
    for rel, content in files.items():
        (root / rel).write_bytes(content)
    changes = [FileChange(rel, content, content.replace(old, new)) for rel, content in files.items()]
    return {c.path: c.new for c in format_changed(Project(root, Config()), changes)}


def test_formatting_keeps_each_file_indented_as_it_is(tmp_path: Path) -> None:
    """Tabs stay tabs and two spaces stay two spaces (ruff's default is four spaces)."""
    tabbed = b'"""Doc.\n\n  indented prose\n"""\n\n\ndef f(a):\n\tif a:\n\t\treturn a\n\treturn None\n'
    files = {
        "tabs.py": tabbed,
        "two.py": tabbed.replace(b"\t", b"  "),
        "four.py": tabbed.replace(b"\t", b"    "),
    }
    by_path = _formatted(tmp_path, files, b"return a\n", b"return  [a,\n a]\n")
    for rel, old in files.items():
        assert by_path[rel] == old.replace(b"return a\n", b"return [a, a]\n"), rel


def test_formatting_keeps_a_file_s_quotes(tmp_path: Path) -> None:
    """A file written with single quotes gets single quotes in the lines formatted; one
    with double quotes (or as many of each) gets ruff's double quotes."""
    single = b"X = {'a': 'b', 'c': \"it's\"}\n\n\ndef f():\n    return 'x'\n"
    double = single.replace(b"'a': 'b'", b'"a": "b"').replace(b"'x'", b'"x"')
    by_path = _formatted(
        tmp_path,
        {"single.py": single, "double.py": double},
        b"    return ",
        b"    return  ( 'y', \"z\" ) or ",
    )
    assert by_path["single.py"] == single.replace(b"    return ", b"    return ('y', 'z') or ")
    assert by_path["double.py"] == double.replace(b"    return ", b'    return ("y", "z") or ')


# --------------------------------------------------------------------------- the phase


def test_phase_shape() -> None:
    assert PHASE.number == 6
    assert [s.id for s in PHASE.steps] == ["6.1", "6.2", "6.3", "6.4"]
    assert "check" in PHASE.step("6.4").note
    assert PHASE.verification


def test_phase6_keeps_the_end_state_and_is_idempotent(tmp_path: Path) -> None:
    files = dict(GOOD)
    files["sologm/tests/conftest.py"] = files["sologm/tests/conftest.py"].replace(
        "@pytest.fixture\ndef mock_console():",
        "# @pytest.fixture\n# def db_session(database_manager):\n#     yield database_manager.get_session()\n\n\n"
        "@pytest.fixture\ndef mock_console():",
    )
    root = _write(tmp_path, files)
    project = Project(root)
    result = run_phase(project, PHASE)
    assert [c.path for c in result.changes if c.path == "sologm/tests/conftest.py"]
    conftest = next(c for c in result.changes if c.path == "sologm/tests/conftest.py")
    assert b"db_session" not in conftest.new
    for change in result.changes:
        (root / change.path).write_bytes(change.new)
    assert all(r.ok for r in run_checks(Project(root)))
    assert run_phase(Project(root), PHASE).changes == []


def test_one_ruff_process_formats_as_file_by_file(tmp_path: Path) -> None:
    """The batched ``ruff format`` (a scratch copy with the target's configuration files)
    gives every file what ruff gives it in place, nested configuration and excludes included;
    a configuration it could not reproduce there makes it step aside."""
    from codemods.phase6 import ruff_command, ruff_format, ruff_format_batch

    root = tmp_path / "proj"
    (root / "pkg" / "wide").mkdir(parents=True)
    (root / "pkg" / "skipped").mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "p"\n\n[tool.ruff]\nline-length = 40\nextend-exclude = ["pkg/skipped"]\n'
    )
    (root / "pkg" / "wide" / "ruff.toml").write_text("line-length = 120\n")
    long_call = b"result = some_function(argument_one, argument_two, argument_three)\n"
    items = [
        ("pkg/a.py", long_call),
        ("pkg/wide/b.py", long_call),
        ("pkg/skipped/c.py", b"x = {  'a':1 }\n"),
        ("top.py", b"def f( a ):\n  return a\n"),
    ]
    project = Project(root)
    command = ruff_command()
    batch = ruff_format_batch(project, items, command)
    assert batch is not None
    for rel, source in items:
        assert batch[rel] == ruff_format(project, rel, source, command), rel
    assert batch["pkg/a.py"] != long_call  # 40 columns: wrapped
    assert batch["pkg/wide/b.py"] == long_call  # 120 columns there
    assert batch["pkg/skipped/c.py"] == items[2][1]  # excluded: left alone
    (root / "pkg" / "wide" / "ruff.toml").write_text('extend = "../../pyproject.toml"\n')
    assert ruff_format_batch(project, items, command) is None


def test_optional_text_prefilter_is_the_single_pattern() -> None:
    """The guarded rules of the 6.2 prefilter answer as one case-insensitive pattern of
    all of them would, on real modules and on each rule's own wording."""
    import re
    import sysconfig

    from codemods.phase6 import _OptionalText

    s = re.escape(b"session")
    single = re.compile(
        rb"(?i)optional\s+(?:\S+\s+){0,2}`{0,2}\w*" + s
        + rb"|" + s + rb"\b[^\n]*\((?:optional)\)"
        + rb"|\b(?:if|when|unless)\b[^\n.;]*\b(?:not|no|none|omitted|missing)\b[^\n.;]*"
        rb"\b(?:provided|given|passed|supplied|specified)\b"
        + rb"|defaults?\s+to\s+`{0,2}None|own\s+" + s
        + rb"|thread(?:'s|-local)\s+" + s
    )
    guarded = _OptionalText("session")
    texts = [
        b"session (Optional): the session",
        b"An OPTIONAL db Session to use",
        b"If not PROVIDED, one is created",
        b"when no session is given",
        b"Defaults to ``None``.",
        b"opens its Own  session",
        b"uses the Thread's session",
        b"nothing to see here",
        b"own sessions\nif x:\n    pass\n",
    ]
    root = Path(__file__).resolve().parent.parent
    texts += [p.read_bytes() for p in sorted((root / "target_project").rglob("*.py"))]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts += [p.read_bytes() for p in sorted(stdlib.glob("*.py"))[::10]]
    hits = 0
    for text in texts:
        expected = single.search(text) is not None
        assert guarded.search(text) is expected, text[:80]
        hits += expected
    assert 0 < hits < len(texts)


def test_docstrings_beyond_every_rule_are_left_as_the_rules_leave_them() -> None:
    """The per-docstring shortcut of step 6.2 against the full rewrite, on every docstring
    of the target, of a stdlib sample and of crafted wordings, in every context."""
    import ast
    import itertools
    import sysconfig

    from codemods.phase6 import (
        DocContext,
        _rewrite_docstring_body,
        rewrite_docstring_body,
    )

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(TARGET.rglob("*.py")) + sorted(stdlib.glob("*.py"))[::12]
    bodies = [
        "Use the given session, otherwise none is set.",
        "Args:\n    session: session to use; when\n        not provided a new one is used.\n",
        "Runs in its own\n    session.",
        "Defaults to None.",
        "Commits the transaction.",
        "Rolls\n    back on error.",
        "Uses the thread-local scoped_session registry.",
        "Calls get_session() first.",
        "Nothing to see here.\n\n    Really.\n",
    ]
    for path in paths:
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=False)
                if doc:
                    bodies.append(doc)
    dead_sets = [frozenset(), frozenset({"get_session", "scoped_session", "db_session"})]
    shortcuts = rewritten = 0
    for body in bodies:
        for dead, required, execute, own in itertools.product(
            dead_sets, (False, True), (None, "_execute_db_operation"), (False, True)
        ):
            ctx = DocContext(dead, required, "session", execute, own)
            fast, full = rewrite_docstring_body(body, ctx), _rewrite_docstring_body(body, ctx)
            assert (fast.body, fast.problems) == (full.body, full.problems), (body, ctx)
            shortcuts += fast.body == body and not fast.problems
            rewritten += full.body != body or bool(full.problems)
    assert len(bodies) > 200 and shortcuts > 1000 and rewritten > 20


def _house_project(root: Path, pyproject: str) -> Project:
    """A project written to 95-100 columns: lines of 95 (wrapped at 88), and calls split over
    three lines that would join into 105 (joined at 110)."""
    wide = "".join(
        f"value_{i} = some_function(argument_number_one, argument_number_two, the_argument_number_threes_{i})\n"
        for i in range(6)
    )
    split = "".join(
        f"result_{i} = call_with_a_longer_name(\n"
        f"    first_argument_{i}, second_argument_{i}, third_argument_{i}, the_fourth_arg\n"
        ")\n"
        for i in range(3)
    )
    assert {len(line) for line in wide.splitlines()} == {95}
    joined = split.splitlines()[0] + split.splitlines()[1].strip() + ")"
    assert len(joined) == 105
    _write(
        root,
        {
            "pyproject.toml": pyproject,
            "pkg/wide.py": wide,
            "pkg/split.py": split,
            "pkg/changed.py": "x = 1\n",
        },
    )
    return Project(root)


def test_line_length_is_the_one_the_project_is_written_to(tmp_path: Path) -> None:
    from codemods.phase6 import house_line_length, ruff_command

    project = _house_project(tmp_path / "p", '[project]\nname = "p"\n')
    # 79 and 88 would wrap the 95-column lines, 110 and more would join the split calls;
    # of the lengths that change nothing (its longest line, 99, 100) the shortest
    assert house_line_length(project, ruff_command(), {"pkg/changed.py"}) == 95


def test_line_length_is_learned_from_the_formatted_files_as_they_were(tmp_path: Path) -> None:
    """The files being formatted count as they were before the refactoring: here the
    untouched code says nothing (any length keeps it), the changed file was written to
    95 columns."""
    from codemods.phase6 import house_line_length, ruff_command

    root = tmp_path / "p"
    wide = "".join(
        f"value_{i} = some_function(argument_number_one, argument_number_two, the_argument_number_threes_{i})\n"
        for i in range(6)
    )
    assert {len(line) for line in wide.splitlines()} == {95}
    _write(root, {"pyproject.toml": '[project]\nname = "p"\n', "pkg/changed.py": wide, "pkg/other.py": "y = 1\n"})
    untouched_only = Project(root)
    assert house_line_length(untouched_only, ruff_command(), {"pkg/changed.py"}) == 79
    project = Project(root, Config(), {"pkg/changed.py": wide.encode() + b"z = 3\n"})
    assert house_line_length(project, ruff_command(), {"pkg/changed.py"}) == 95


def test_black_line_length_is_taken(tmp_path: Path) -> None:
    from codemods.phase6 import house_line_length, ruff_command

    project = _house_project(
        tmp_path / "p", '[project]\nname = "p"\n\n[tool.black]\nline-length = 100\n'
    )
    assert house_line_length(project, ruff_command(), {"pkg/changed.py"}) == 100


def test_flake8_line_length_is_taken(tmp_path: Path) -> None:
    from codemods.phase6 import house_line_length, ruff_command

    project = _house_project(tmp_path / "p", '[project]\nname = "p"\n')
    (tmp_path / "p" / "tox.ini").write_text(
        "[tox]\nenvlist = py311\n\n[flake8]\nmax-line-length = 100\n"
    )
    assert house_line_length(project, ruff_command(), {"pkg/changed.py"}) == 100


def test_ruff_settings_of_the_target_stand(tmp_path: Path) -> None:
    from codemods.phase6 import house_line_length, ruff_command

    project = _house_project(
        tmp_path / "p", '[project]\nname = "p"\n\n[tool.ruff]\nline-length = 100\n'
    )
    assert house_line_length(project, ruff_command(), {"pkg/changed.py"}) is None
    nested = _house_project(tmp_path / "q", '[project]\nname = "q"\n')
    (tmp_path / "q" / "pkg" / "ruff.toml").write_text("line-length = 70\n")
    assert house_line_length(nested, ruff_command(), {"pkg/changed.py"}) is None


def test_formatting_keeps_the_project_line_length(tmp_path: Path) -> None:
    """A file the refactoring changed is formatted at the length the rest of the project
    is written to: its 100-column lines stay as they are."""
    root = tmp_path / "p"
    line = "total = combine(first_value_argument, second_value_argument, the_third_value_argument_xyz_w)\n"
    assert 88 < len(line) - 1 <= 100
    files = {f"pkg/m{i}.py": line.replace("total", f"total_{i}") * 3 for i in range(4)}
    files["pyproject.toml"] = '[project]\nname = "p"\n'
    _write(root, files)
    project = Project(root, Config(), {"pkg/m0.py": line.encode() + b"y=2\n"})
    state_of(project).changed_files = ["pkg/m0.py"]
    change = FileChange("pkg/m0.py", line.encode() * 3, line.encode() + b"y=2\n")
    [result] = format_changed(project, [change])
    assert result.new == line.encode() + b"y = 2\n"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_formatting_leaves_lines_the_refactoring_did_not_change(tmp_path: Path) -> None:
    """Only the lines the refactoring changed are formatted: an untouched line longer than
    any length ruff would keep (115 columns, no ruff settings) stays byte for byte, and so
    does an untouched badly formatted one, while the changed statement is formatted."""
    root = tmp_path / "t"
    long_line = (
        "RESULT = some_function(argument_number_one, argument_number_two, "
        "argument_number_three, argument_number_four_vwxyz)\n"
    )
    assert len(long_line) - 1 == 115
    before = "import os\n\n" + long_line + "\n\ndef f( a ):\n    return a\n\n\nx = get_session()\n"
    _write(
        root,
        {
            "pyproject.toml": '[project]\nname = "x"\n',
            "pkg/changed.py": before,
            "pkg/other.py": "y = 1\n",
        },
    )
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "base")
    base = _git(root, "rev-parse", "HEAD").strip()
    after_refactoring = before.replace("x = get_session()\n", "x = make_session( 'a',b = 2 )\n")
    (root / "pkg/changed.py").write_text(after_refactoring)
    project = Project(root)
    state_of(project).base_commit = base
    notes: list = []
    [change] = format_changed(project, [], notes)
    assert change.path == "pkg/changed.py"
    assert change.new.decode() == before.replace("x = get_session()\n", 'x = make_session("a", b=2)\n')
    assert long_line.encode() in change.new and b"def f( a ):" in change.new
    assert notes == []

    # the same change made in memory by an earlier phase of the run (no base commit)
    project = Project(root, Config(), {"pkg/changed.py": after_refactoring.encode()})
    (root / "pkg/changed.py").write_text(before)
    state_of(project).changed_files = ["pkg/changed.py"]
    [change] = format_changed(project, [])
    assert change.new.decode() == before.replace("x = get_session()\n", 'x = make_session("a", b=2)\n')


def test_a_statement_partly_changed_is_formatted_whole_and_its_neighbours_not(tmp_path: Path) -> None:
    """Ruff formats whole statements: a statement written over several lines that the
    refactoring changed in one of them is formatted whole (it is one logical line), while
    the statements it did not change stay byte for byte; a file the refactoring created is
    formatted whole."""
    wide = "value = some_function(argument_number_one, argument_number_two, argument_number_three_x,\n"
    untouched = "other = [ 1,2 ]\n"
    old = untouched + wide + "    get_session())\n"
    new = untouched + wide + "    session)\n"
    project = Project(tmp_path, Config(), {"a.py": new.encode()})
    (tmp_path / "a.py").write_text(old)
    state_of(project).changed_files = ["a.py"]
    notes: list = []
    [change] = format_changed(project, [], notes)
    assert notes == []
    # the target's own line length holds the call on one line
    assert change.new.decode() == untouched + (
        "value = some_function(argument_number_one, argument_number_two, argument_number_three_x, session)\n"
    )
    created = Project(tmp_path, Config(), {"b.py": new.encode()})
    state_of(created).changed_files = ["b.py"]
    [change] = format_changed(created, [])
    assert change.new != new.encode() and b"other = [1, 2]" in change.new
