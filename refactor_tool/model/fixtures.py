"""The fixture graph of a target's test suite, shared by phases 4 and 5.

Nothing here knows the target's fixture names. The analysis reads every ``conftest.py`` of
the target (and any module a conftest star-imports, followed transitively), keeps the last
definition of each fixture in a module (an earlier one is dead code: Python rebinds the name),
and classifies every fixture from its code, its parameters and the manager class hierarchy
(:mod:`refactor_tool.model.managers`):

``session``          the fixture named ``Config.session_fixture`` (``db_session``)
``session_context``  the fixture named ``Config.session_context_fixture`` (kept)
``manager``          returns an instance of a manager class (``GameManager(session=...)``);
                     *plain* when ``create_all_managers`` builds the same thing (every
                     argument is the session or a plain manager fixture); when it also hands
                     the manager fixtures that the factory takes as keywords (a mock client),
                     those are its ``factory_overrides``; else a recipe phase 5 inlines
``factory``          ``create_test_*`` returning an inner closure
``object``           builds data through managers, factories or the session and returns it:
                     phase 5 inlines its recipe into the tests that use it, phase 4 removes it
``db_other``         touches the session but fits none of the above (a yield fixture whose
                     teardown is more than database work on a database of the test's own,
                     :func:`database_only_teardown`; a helper closure over the session):
                     reported with file:line, never guessed
``plain``            does not touch the session (mock clients, config, the autouse seeding
                     fixture that uses ``session_context``): kept as it is

The graph is JSON-serialisable: phase 4 records it in the run state (``model/state.py``)
before it deletes the fixtures, and phase 5 falls back on that record for the names the
current conftests no longer define.

What phase 4 does with each fixture is one answer, :func:`fixture_plan`: the session,
manager and inlinable object fixtures are deleted unless something that stays still
requests them (a fixture phase 4 does not delete, or a request of a test module that phase
5 leaves as it is, :func:`module_requests`), followed the way pytest resolves requests
through conftests in sub-directories, star imports and plugins. Phase 4 acts on it; phase 5
asks it which factories phase 4 leaves as they were.

The module also holds the libcst helpers both phases share: the name rewriter (fixture
names to ``session`` / ``managers.<short>``, ``session`` added to factory calls), the cleaner
that drops ``merge`` and refreshes of relationship collections, and parameter-list editing
that keeps commas, trailing commas and comments in place.
"""

from __future__ import annotations

import ast
import builtins
import configparser
import fnmatch
import functools
import re
import sys
from collections import deque
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

import libcst as cst
import libcst.matchers as m
from libcst.helpers import (
    get_absolute_module_from_package_for_import,
    get_full_name_for_node,
)
from libcst.matchers import matches

from refactor_tool.model.config import Config
from refactor_tool.model.managers import (
    FRESH_CONTAINER,
    ManagerGraph,
    analyze_managers,
    import_map,
    package_of,
    plain_alternate_constructor,
    resolve_local,
)
from refactor_tool.model.project import InputError, Project
from refactor_tool.model.syntax import Lines, Visitor, chain_root, code, findall

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

GRAPH_VERSION = 1

SESSION = "session"
SESSION_CONTEXT = "session_context"
MANAGER = "manager"
FACTORY = "factory"
OBJECT = "object"
DB_OTHER = "db_other"
PLAIN = "plain"

#: kinds whose fixtures phase 4 removes and phase 5 replaces in the tests
REMOVED_KINDS = frozenset({SESSION, MANAGER, OBJECT})
#: kinds that mean "this fixture touches the database session"
DB_KINDS = frozenset({SESSION, MANAGER, FACTORY, OBJECT, DB_OTHER})

#: fixtures pytest itself provides (they are neither defined nor recorded, and that is fine)
BUILTIN_FIXTURES = frozenset(
    {
        "cache",
        "capfd",
        "capfdbinary",
        "caplog",
        "capsys",
        "capsysbinary",
        "doctest_namespace",
        "monkeypatch",
        "pytestconfig",
        "record_property",
        "record_testsuite_property",
        "record_xml_attribute",
        "recwarn",
        "request",
        "testdir",
        "pytester",
        "tmp_path",
        "tmp_path_factory",
        "tmpdir",
        "tmpdir_factory",
        "mocker",
    }
)
_BUILTIN_NAMES = frozenset(dir(builtins))

# ------------------------------------------------------------------------------- matchers

_FIXTURE_FUNC = m.Name("fixture") | m.Attribute(
    value=m.Name("pytest"), attr=m.Name("fixture")
)
FIXTURE_DECORATOR = m.Decorator(decorator=_FIXTURE_FUNC | m.Call(func=_FIXTURE_FUNC))
AUTOUSE_DECORATOR = m.Decorator(
    decorator=m.Call(
        func=_FIXTURE_FUNC,
        args=[
            m.ZeroOrMore(),
            m.Arg(keyword=m.Name("autouse"), value=m.Name("True")),
            m.ZeroOrMore(),
        ],
    )
)
DOCSTRING = m.SimpleStatementLine(
    body=[m.Expr(value=m.SimpleString() | m.ConcatenatedString())]
)
ONE_IMPORT_LINE = m.SimpleStatementLine(
    body=[m.Import() | m.ImportFrom(names=m.DoNotCare())]
)
_IMPORT_LINE = m.SimpleStatementLine(
    body=[m.ZeroOrMore(), m.Import() | m.ImportFrom(), m.ZeroOrMore()]
)
_STAR_IMPORT_LINE = m.SimpleStatementLine(body=[m.ImportFrom(names=m.ImportStar())])


# one matcher object per shape: matchers checked again and again are compiled once
@functools.lru_cache(maxsize=64)
def call_on(receiver: str, method: str) -> m.Call:
    """``<receiver>.<method>(...)``."""
    return m.Call(func=m.Attribute(value=m.Name(receiver), attr=m.Name(method)))


def registered_name(fn: cst.FunctionDef) -> str:
    """The name tests request a fixture by: ``@pytest.fixture(name="x")``'s, else the
    function's."""
    for decorator in fn.decorators:
        call = decorator.decorator
        if isinstance(call, cst.Call) and matches(decorator, FIXTURE_DECORATOR):
            for arg in call.args:
                if (
                    arg.keyword is not None
                    and arg.keyword.value == "name"
                    and isinstance(arg.value, cst.SimpleString)
                    and isinstance(arg.value.evaluated_value, str)
                ):
                    return arg.value.evaluated_value
    return fn.name.value


def is_fixture(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.FunctionDef) and any(
        matches(d, FIXTURE_DECORATOR) for d in node.decorators
    )


def per_test(fn: cst.FunctionDef) -> bool:
    """Whether the fixture ``fn`` is set up once per test: its decorator gives no ``scope``
    but ``"function"`` (a literal), and no ``params``."""
    for decorator in fn.decorators:
        if not matches(decorator, FIXTURE_DECORATOR) or not isinstance(decorator.decorator, cst.Call):
            continue
        for arg in decorator.decorator.args:
            keyword = arg.keyword.value if arg.keyword is not None else None
            if keyword == "params" or keyword is None:
                return False
            if keyword == "scope" and not (
                isinstance(arg.value, cst.SimpleString) and arg.value.evaluated_value == "function"
            ):
                return False
    return True


def without_autouse(fn: cst.FunctionDef) -> cst.FunctionDef:
    """``fn`` with ``autouse=True`` gone from its fixture decorator (a decorator left with no
    argument loses its parentheses)."""
    decorators = []
    for decorator in fn.decorators:
        if matches(decorator, AUTOUSE_DECORATOR):
            call = cst.ensure_type(decorator.decorator, cst.Call)
            args = [a for a in call.args if not (a.keyword is not None and a.keyword.value == "autouse")]
            if args:
                args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
                decorator = decorator.with_changes(decorator=call.with_changes(args=args))
            else:
                decorator = decorator.with_changes(decorator=call.func)
        decorators.append(decorator)
    return fn.with_changes(decorators=decorators)


def statements(fn: cst.FunctionDef) -> list[cst.BaseStatement]:
    """The function's statements (a one-line ``def f(): return x`` made into a line)."""
    if isinstance(fn.body, cst.IndentedBlock):
        return list(fn.body.body)
    return [cst.SimpleStatementLine(body=list(fn.body.body))]


class _Yields(Visitor):
    count = 0

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False  # a nested function's yields are its own

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_Yield(self, node: cst.Yield) -> None:
        self.count += 1


def yields(fn: cst.FunctionDef) -> bool:
    """Whether ``fn`` is a generator: it yields itself (nested functions' yields are theirs)."""
    counter = _Yields()
    fn.body.visit(counter)
    return counter.count > 0


_SESSION_ENDINGS = ("rollback", "close", "expunge_all", "expire_all")


def _ends_session(stmt: cst.BaseStatement, session: str) -> bool:
    """``<session>.rollback()`` (or ``close()``, ``expunge_all()``, ``expire_all()``): the
    end of the session fixture's work, which ``SessionContext`` owns once the recipe runs
    inside ``with session_context as session:``."""
    return matches(
        stmt,
        m.SimpleStatementLine(
            body=[
                m.Expr(
                    value=m.Call(
                        func=m.Attribute(
                            value=m.Name(session),
                            attr=m.OneOf(*[m.Name(n) for n in _SESSION_ENDINGS]),
                        ),
                        args=[],
                    )
                )
            ]
        ),
    )


_YIELD_LINE = m.SimpleStatementLine(body=[m.Expr(value=m.Yield())])


def _yield_statement(body: Sequence[cst.BaseStatement]) -> int | None:
    """The index of the statement ``yield <value>`` of ``body`` when it is the function's one
    ``yield`` (a statement of its own, at the top level of the body); None otherwise."""
    found = [i for i, stmt in enumerate(body) if matches(stmt, _YIELD_LINE)]
    if len(found) != 1:
        return None
    line = cst.ensure_type(body[found[0]], cst.SimpleStatementLine)
    value = cst.ensure_type(cst.ensure_type(line.body[0], cst.Expr).value, cst.Yield).value
    if value is None or isinstance(value, cst.From):
        return None
    counter = _Yields()
    for stmt in body:
        stmt.visit(counter)
    return found[0] if counter.count == 1 else None


def recipe_statements(
    fn: cst.FunctionDef, session: str | None = None, drop_teardown: bool = False
) -> list[cst.BaseStatement]:
    """The statements of a fixture as a recipe: :func:`statements`, where a fixture whose one
    ``yield <value>`` is its last statement (nothing runs after it: no teardown) ends in
    ``return <value>`` instead, which is what it means to pytest. So does one whose teardown
    only ends the work of the session fixture ``session`` it requests (``db_session.
    rollback()``, ``.close()``): inside the test's ``with session_context as session:``
    the context ends the session, and the session fixture goes. With ``drop_teardown``
    (the fixture's :attr:`Fixture.database_teardown`, see :func:`database_only_teardown`)
    whatever runs after its one ``yield <value>`` counts as no teardown too: it does only
    database work, on a database that lives only for the test."""
    body = statements(fn)
    if drop_teardown:
        cut = _yield_statement(body)
        if cut is not None:
            body = body[: cut + 1]
    if session is not None and session in positional_params(fn):
        end = len(body)
        while end > 0 and _ends_session(body[end - 1], session):
            end -= 1
        if 0 < end < len(body):
            body = body[:end]
    if not body or not matches(body[-1], _YIELD_LINE):
        return statements(fn) if len(body) < len(statements(fn)) else body
    if _yield_statement(body) != len(body) - 1:
        return body
    last = cst.ensure_type(body[-1], cst.SimpleStatementLine)
    value = cst.ensure_type(cst.ensure_type(last.body[0], cst.Expr).value, cst.Yield).value
    return [*body[:-1], last.with_changes(body=[cst.Return(value=value)])]


def split_docstring(
    stmts: Sequence[cst.BaseStatement],
) -> tuple[list[cst.BaseStatement], list[cst.BaseStatement]]:
    if stmts and matches(stmts[0], DOCSTRING):
        return [stmts[0]], list(stmts[1:])
    return [], list(stmts)


def positional_params(fn: cst.FunctionDef) -> list[str]:
    p = fn.params
    return [
        param.name.value for param in (*p.posonly_params, *p.params, *p.kwonly_params)
    ]


DEFAULT_TEST_FILES = ("test_*.py", "*_test.py")


def is_test_module(project: Project, rel: str) -> bool:
    """Whether pytest collects tests from ``rel``: the target's own ``python_files``
    patterns (pytest's default without one); a conftest never is. The one answer to this
    question for the codemods, ``check`` and the gates."""
    return _matches_python_files(rel, pytest_python_files(project))


def test_modules(project: Project) -> list[str]:
    """Every test module of the target (see :func:`is_test_module`)."""
    patterns = pytest_python_files(project)
    return [
        rel for rel in project.python_files() if _matches_python_files(rel, patterns)
    ]


def _matches_python_files(rel: str, patterns: Sequence[str]) -> bool:
    name = PurePosixPath(rel).name
    return name != "conftest.py" and any(fnmatch.fnmatch(name, p) for p in patterns)


def pytest_python_files(project: Project) -> tuple[str, ...]:
    """The target's ``python_files`` patterns (else pytest's default)."""
    return pytest_naming(project).files


@dataclass(frozen=True)
class TestNaming:
    """How the target's pytest names what it collects: ``python_files``,
    ``python_functions`` and ``python_classes`` (pytest's defaults where it sets none)."""

    __test__ = False  # not a test class, whatever pytest's naming

    files: tuple[str, ...] = DEFAULT_TEST_FILES
    functions: tuple[str, ...] = ("test",)
    classes: tuple[str, ...] = ("Test",)

    def is_test_name(self, name: str) -> bool:
        return _prefix_or_glob(name, self.functions)

    def is_test_class_name(self, name: str) -> bool:
        return _prefix_or_glob(name, self.classes)


DEFAULT_NAMING = TestNaming()


def _prefix_or_glob(name: str, patterns: Sequence[str]) -> bool:
    """pytest's rule for ``python_functions`` / ``python_classes``: a pattern with a glob
    character is matched as a glob, any other as a prefix."""
    for pattern in patterns:
        if any(c in pattern for c in "*?["):
            if fnmatch.fnmatch(name, pattern):
                return True
        elif name.startswith(pattern):
            return True
    return False


def pytest_ini_options(project: Project) -> dict[str, object]:
    """The target's pytest configuration, found as pytest finds it in the root directory:
    ``pytest.ini`` / ``.pytest.ini`` (``[pytest]``, even empty), ``pyproject.toml``
    (``[tool.pytest.ini_options]``), ``tox.ini`` (``[pytest]``), ``setup.cfg``
    (``[tool:pytest]``), the first that has it. Values as read: a TOML value, or the text
    of an ini line."""
    memo = project.memo.get("pytest_ini_options")
    if isinstance(memo, dict):
        return memo
    found: dict[str, object] = {}
    for rel, section in (
        ("pytest.ini", "pytest"),
        (".pytest.ini", "pytest"),
        ("pyproject.toml", None),
        ("tox.ini", "pytest"),
        ("setup.cfg", "tool:pytest"),
    ):
        if not project.exists(rel):
            continue
        options = _read_ini_options(project.read_text(rel), section)
        if options is not None:
            found = options
            break
        if rel in ("pytest.ini", ".pytest.ini"):
            break  # pytest takes a pytest.ini even without a [pytest] section
    project.memo["pytest_ini_options"] = found
    return found


def _read_ini_options(text: str, section: str | None) -> dict[str, object] | None:
    if section is None:
        try:
            data = tomllib.loads(text)
        except ValueError:
            return None
        table = data.get("tool", {}).get("pytest", {}).get("ini_options")
        return dict(table) if isinstance(table, dict) else None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    if not parser.has_section(section):
        return None
    return dict(parser.items(section))


def pytest_naming(project: Project) -> TestNaming:
    """The target's :class:`TestNaming`: the one answer to "does pytest collect this"."""
    memo = project.memo.get("pytest_naming")
    if isinstance(memo, TestNaming):
        return memo
    options = pytest_ini_options(project)

    def patterns(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = options.get(key)
        if isinstance(value, str):
            value = value.split()
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return tuple(value)
        return default

    naming = TestNaming(
        files=patterns("python_files", DEFAULT_NAMING.files),
        functions=patterns("python_functions", DEFAULT_NAMING.functions),
        classes=patterns("python_classes", DEFAULT_NAMING.classes),
    )
    project.memo["pytest_naming"] = naming
    return naming


def is_test_function(node: cst.FunctionDef, naming: TestNaming = DEFAULT_NAMING) -> bool:
    """Whether pytest collects ``node`` as a test (by the target's ``python_functions``)."""
    return naming.is_test_name(node.name.value) and not is_fixture(node)


# ------------------------------------------------------------------------------- requests

_MARK = m.Attribute(value=m.Name("pytest"), attr=m.Name("mark")) | m.Name("mark")
_PARAMETRIZE = m.Decorator(
    decorator=m.Call(
        func=m.Attribute(value=_MARK, attr=m.Name("parametrize"))
        | m.Name("parametrize")
    )
)
USEFIXTURES_CALL = m.Call(func=m.Attribute(value=_MARK, attr=m.Name("usefixtures")))
GETFIXTUREVALUE_CALL = m.Call(
    func=m.Attribute(attr=m.Name("getfixturevalue")), args=[m.AtLeastN(n=1)]
)


class _Fetches(Visitor):
    found = False

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        if node.attr.value == "getfixturevalue":
            self.found = True
        return not self.found


def fetches_by_name(node: cst.CSTNode) -> bool:
    """Whether ``node`` may fetch fixtures by name (it mentions ``.getfixturevalue``): where
    it does not, :func:`requested_names` need not look for such calls."""
    visitor = _Fetches()
    node.visit(visitor)
    return visitor.found


def _string(node: cst.CSTNode) -> str | None:
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def parametrized_names(decorators: Sequence[cst.Decorator]) -> set[str]:
    """The argument names ``@pytest.mark.parametrize`` fills (those are not fixtures)."""
    names: set[str] = set()
    for decorator in decorators:
        if not matches(decorator, _PARAMETRIZE):
            continue
        call = cst.ensure_type(decorator.decorator, cst.Call)
        if not call.args:
            continue
        first = call.args[0].value
        text = _string(first)
        if text is not None:
            names.update(n.strip() for n in text.split(",") if n.strip())
        elif isinstance(first, (cst.List, cst.Tuple)):
            names.update(
                t for t in (_string(e.value) for e in first.elements) if t is not None
            )
    return names


def usefixtures_names(node: cst.CSTNode) -> list[str]:
    """The fixture names of every ``pytest.mark.usefixtures("...")`` call in ``node`` (a
    decorator, or a ``pytestmark = ...`` statement)."""
    names = []
    for call in findall(node, USEFIXTURES_CALL):
        for arg in cst.ensure_type(call, cst.Call).args:
            text = _string(arg.value)
            if text is not None:
                names.append(text)
    return names


class _MarksOutsideFunctions(Visitor):
    def __init__(self) -> None:
        self.names: list[str] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        for decorator in node.decorators:
            self.names += usefixtures_names(decorator)
        return False

    def visit_Call(self, node: cst.Call) -> None:
        if m.matches(node, USEFIXTURES_CALL):
            self.names += (t for t in (_string(a.value) for a in node.args) if t is not None)


def marked_names(module: cst.Module) -> list[str]:
    """The fixture names of the ``usefixtures`` marks of ``module`` outside function bodies,
    the marks pytest reads for its tests (``pytestmark = ...`` statements, class and
    function decorators): :func:`usefixtures_names` of the module, without walking the
    bodies of its functions."""
    visitor = _MarksOutsideFunctions()
    module.visit(visitor)
    return visitor.names


_PYTEST_PARAM = m.Call(
    func=m.Attribute(value=m.Name("pytest"), attr=m.Name("param")) | m.Name("param")
)


def _argnames(call: cst.Call) -> list[str] | None:
    first = call.args[0].value if call.args else None
    text = _string(first) if first is not None else None
    if text is not None:
        return [n.strip() for n in text.split(",") if n.strip()]
    if isinstance(first, (cst.List, cst.Tuple)):
        names = [_string(e.value) for e in first.elements]
        return None if None in names else [n for n in names if n is not None]
    return None


def parametrized_values(
    decorators: Sequence[cst.Decorator], argname: str
) -> list[str | None] | None:
    """The values ``@pytest.mark.parametrize`` gives ``argname``, each a literal string or
    None (anything else); None when no parametrize mark fills ``argname``, or when its
    values are not a literal list (computed, so unknown: ``[None]``)."""
    for decorator in decorators:
        if not matches(decorator, _PARAMETRIZE):
            continue
        call = cst.ensure_type(decorator.decorator, cst.Call)
        names = _argnames(call)
        if names is None or argname not in names:
            continue
        index = names.index(argname)
        values = next(
            (
                a.value
                for i, a in enumerate(call.args)
                if (a.keyword is None and i == 1)
                or (a.keyword is not None and a.keyword.value == "argvalues")
            ),
            None,
        )
        if not isinstance(values, (cst.List, cst.Tuple)):
            return [None]
        out: list[str | None] = []
        for element in values.elements:
            value = element.value
            if matches(value, _PYTEST_PARAM):
                items = [
                    a.value for a in cst.ensure_type(value, cst.Call).args if a.keyword is None
                ]
            elif len(names) == 1:
                items = [value]
            elif isinstance(value, (cst.List, cst.Tuple)):
                items = [e.value for e in value.elements]
            else:
                items = []
            out.append(_string(items[index]) if index < len(items) else None)
        return out
    return None


def getfixturevalue_names(
    node: cst.CSTNode, decorators: Sequence[cst.Decorator] = ()
) -> list[str | None]:
    """The names ``node`` fetches with ``request.getfixturevalue(...)``: None for one that
    is not a literal string (a computed name). A name that is an argument ``parametrize``
    (among ``decorators``, those of the function ``node`` is the body of) fills stands for
    each of the values it gives it."""
    out: list[str | None] = []
    for call in findall(node, GETFIXTUREVALUE_CALL):
        arg = cst.ensure_type(call, cst.Call).args[0].value
        text = _string(arg)
        if text is None and isinstance(arg, cst.Name) and decorators:
            values = parametrized_values(decorators, arg.value)
            if values is not None:
                out += values
                continue
        out.append(text)
    return out


def requested_names(
    fn: cst.FunctionDef, method: bool = False, fetches: bool = True
) -> list[str]:
    """The fixtures a test or fixture function asks pytest for by name: its parameters
    without a default (not the instance parameter of a ``method``, not the names
    ``parametrize`` fills), its ``usefixtures`` marks and the literal names it fetches with
    ``request.getfixturevalue`` (looked for only with ``fetches``: a caller that knows the
    module's text has no ``getfixturevalue`` says so)."""
    p = fn.params
    params = [q for q in (*p.posonly_params, *p.params) if q.default is None]
    if method and params:
        params = params[1:]
    params += [q for q in p.kwonly_params if q.default is None]
    parametrized = parametrized_names(fn.decorators)
    names = [q.name.value for q in params if q.name.value not in parametrized]
    for decorator in fn.decorators:
        names += usefixtures_names(decorator)
    if fetches:
        names += [n for n in getfixturevalue_names(fn.body, fn.decorators) if n is not None]
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Request:
    """A fixture asked for by name by something the refactoring leaves as it is."""

    name: str
    rel: str  #: the module the request is made from: pytest resolves it from there
    line: int
    by: str  #: what asks ("test 'test_x'", "the usefixtures mark of class 'TestX'")
    why: str = ""  #: why that stays ("which phase 5 leaves as it is")

    @property
    def where(self) -> str:
        return f"{self.rel}:{self.line}"

    def __str__(self) -> str:
        return f"{self.by} ({self.where})" + (f", {self.why}" if self.why else "")


def module_requests(
    module: cst.Module,
    rel: str,
    lines: Lines,
    tests: Iterable[cst.FunctionDef],
    names: Container[str] | None = None,
    fetches: bool = True,
    dropped: Container[str] = (),
) -> list[Request]:
    """What a test module asks for that stays as it is: the requests of ``tests`` (its test
    functions the rewrite leaves alone, nodes of ``module``), of every fixture it defines
    and of the ``usefixtures`` marks of its classes and of the module (``pytestmark``). A
    name the module defines a fixture for is the module's own: a request of it is not one
    of the conftests' fixture (a fixture asking for its own name is). With ``names``, only
    the requests of those names (positions are looked up for those only). ``fetches``:
    whether the module may call ``getfixturevalue`` (its text says so). ``dropped``: the
    module's own fixtures phase 5 deletes (rebuilt in the tests that used them), whose
    requests do not count."""
    left = {id(t) for t in tests}
    # pytest registers the fixtures of a module and of its classes (not nested functions)
    local: set[str] = set()
    blocks = [module.body]
    while blocks:
        for stmt in blocks.pop():
            if isinstance(stmt, cst.FunctionDef) and is_fixture(stmt):
                local.add(registered_name(stmt))
            elif isinstance(stmt, cst.ClassDef) and isinstance(stmt.body, cst.IndentedBlock):
                blocks.append(stmt.body.body)
    out: list[Request] = []

    def add(
        asked: Iterable[str],
        node: cst.CSTNode,
        by: str,
        why: str = "",
        own: str | None = None,
    ) -> None:
        wanted = [
            n
            for n in asked
            if (n not in local or n == own) and (names is None or n in names)
        ]
        if wanted:
            line = lines.start(node) or 0
            out.extend(Request(name, rel, line, by, why) for name in wanted)

    def visit(body: Sequence[cst.BaseStatement], owner: str) -> None:
        for stmt in body:
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if isinstance(small, cst.Assign) and any(
                        matches(t.target, m.Name("pytestmark")) for t in small.targets
                    ):
                        where = f"class {owner[:-1]!r}" if owner else "the module"
                        add(
                            usefixtures_names(small.value),
                            stmt,
                            f"the pytestmark of {where}",
                        )
            elif isinstance(stmt, cst.ClassDef):
                for decorator in stmt.decorators:
                    add(
                        usefixtures_names(decorator),
                        stmt,
                        f"the usefixtures mark of class {owner + stmt.name.value!r}",
                    )
                if isinstance(stmt.body, cst.IndentedBlock):
                    visit(stmt.body.body, f"{owner}{stmt.name.value}.")
            elif isinstance(stmt, cst.FunctionDef):
                if is_fixture(stmt):
                    name = registered_name(stmt)
                    if name in dropped:
                        continue
                    add(
                        requested_names(stmt, bool(owner), fetches),
                        stmt,
                        f"fixture {name!r}",
                        "which the test module defines",
                        own=name,
                    )
                elif id(stmt) in left:
                    add(
                        requested_names(stmt, bool(owner), fetches),
                        stmt,
                        f"test {owner + stmt.name.value!r}",
                        "which phase 5 leaves as it is",
                    )

    visit(module.body, "")
    return out


# ------------------------------------------------------------------------------- scanning


class Scan(Visitor):
    """Names a piece of code reads and binds, and whether it yields or returns early.

    Nested functions and lambdas count for names (a closure reads the fixture's names) but
    not for ``yield``/``return`` (those belong to the nested function). With ``own_scope``
    only the code's own scope counts: a nested function or class binds its name (its
    decorators are read), a lambda reads what its body reads besides its parameters.
    A comprehension's own variables are not names the code reads (they live in the
    comprehension); they count as bound, so a check for a name taken still sees them.
    """

    def __init__(self, own_scope: bool = False) -> None:
        self.own_scope = own_scope
        self.used: list[str] = []
        self.bound: set[str] = set()
        self.yields = False
        self.returns: list[cst.Return] = []
        #: whether the code holds a function, lambda or class: without one, a scan of its
        #: own scope and a scan of everything find the same
        self.nested = False
        self._skip: set[cst.CSTNode] = set()
        self._depth = 0

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._skip.add(node.attr)

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self._skip.add(node.keyword)

    def visit_Param(self, node: cst.Param) -> None:
        self.bound.add(node.name.value)
        self._skip.add(node.name)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.nested = True
        self.bound.add(node.name.value)
        self._skip.add(node.name)
        if self.own_scope:
            for decorator in node.decorators:
                decorator.visit(self)
            return False
        self._depth += 1
        return True

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        if not self.own_scope:
            self._depth -= 1

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        self.nested = True
        if self.own_scope:
            params = {p.name.value for p in node.params.params}
            self.used.extend(n for n in scan([node.body]).used if n not in params)
            return False
        self._depth += 1
        return True

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        if not self.own_scope:
            self._depth -= 1

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.nested = True
        self.bound.add(node.name.value)
        self._skip.add(node.name)
        return not self.own_scope

    def visit_ImportAlias(self, node: cst.ImportAlias) -> bool:
        target = node.asname.name if node.asname is not None else node.name
        name = get_full_name_for_node(target) or ""
        self.bound.add(name.split(".")[0])
        return False

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._bind(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._bind(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._bind(node.target)

    def visit_For(self, node: cst.For) -> None:
        self._bind(node.target)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._bind(node.target)

    def _comprehension(self, node: cst.BaseComp) -> bool:
        """Scan a comprehension: its first iterable in this scope, the rest in its own,
        where the names its ``for`` clauses bind are not read from outside."""
        local: set[str] = set()
        clause: cst.CompFor | None = node.for_in
        while clause is not None:
            local |= {n.value for n in findall(clause.target, m.Name())}  # type: ignore[union-attr]
            clause = clause.inner_for_in
        node.for_in.iter.visit(self)
        inner = Scan(self.own_scope)
        parts: list[cst.CSTNode] = (
            [node.key, node.value] if isinstance(node, cst.DictComp) else [node.elt]  # type: ignore[attr-defined]
        )
        clause = node.for_in
        while clause is not None:
            parts += [clause.target, *clause.ifs]
            if clause is not node.for_in:
                parts.append(clause.iter)
            clause = clause.inner_for_in
        for part in parts:
            part.visit(inner)
        self.used.extend(n for n in inner.used if n not in local)
        self.bound |= inner.bound | local
        return False

    def visit_ListComp(self, node: cst.ListComp) -> bool:
        return self._comprehension(node)

    def visit_SetComp(self, node: cst.SetComp) -> bool:
        return self._comprehension(node)

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> bool:
        return self._comprehension(node)

    def visit_DictComp(self, node: cst.DictComp) -> bool:
        return self._comprehension(node)

    def visit_AsName(self, node: cst.AsName) -> None:
        self._bind(node.name)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._bind(node.target)

    def _bind(self, target: cst.CSTNode) -> None:
        if type(target) is cst.Name:  # the common case, without a search
            if target not in self._skip:
                self.bound.add(target.value)
            return
        for name in findall(target, m.Name()):
            assert isinstance(name, cst.Name)
            if name not in self._skip:
                self.bound.add(name.value)

    def visit_Name(self, node: cst.Name) -> None:
        if node not in self._skip:
            self.used.append(node.value)

    def visit_Yield(self, node: cst.Yield) -> None:
        if self._depth == 0:
            self.yields = True

    def visit_Return(self, node: cst.Return) -> None:
        if self._depth == 0:
            self.returns.append(node)


#: scans of single nodes, kept by the caller while the nodes live (see :func:`scan`)
ScanMemo = dict[tuple[int, bool], tuple[cst.CSTNode, Scan]]


def scan(
    nodes: Iterable[cst.CSTNode], own_scope: bool = False, memo: ScanMemo | None = None
) -> Scan:
    """What ``nodes`` read and bind (see :class:`Scan`).

    ``memo``: scans of single nodes from earlier calls, filled as nodes are scanned (nodes
    are immutable: a node scanned once is not walked again; a node without a function,
    lambda or class scanned for either scope is not walked for the other). The result is
    the same as a scan of the whole sequence: each node's names, in order.
    """
    if memo is None:
        scanner = Scan(own_scope)
        for node in nodes:
            node.visit(scanner)
        return scanner
    out = Scan(own_scope)
    for node in nodes:
        key = (id(node), own_scope)
        hit = memo.get(key)
        if hit is None or hit[0] is not node:
            other = memo.get((id(node), not own_scope))
            if other is not None and other[0] is node and not other[1].nested:
                hit = memo[key] = other
            else:
                one = Scan(own_scope)
                node.visit(one)
                hit = memo[key] = (node, one)
        part = hit[1]
        out.used.extend(part.used)
        out.bound |= part.bound
        out.yields = out.yields or part.yields
        out.returns.extend(part.returns)
    return out


def top_level_bindings(
    module: cst.Module,
) -> dict[str, tuple[str, str | None, str | None] | None]:
    """Names bound at module level: import -> (module, obj, asname); anything else -> None."""
    out: dict[str, tuple[str, str | None, str | None] | None] = {}

    def visit(body: Sequence[cst.CSTNode]) -> None:
        for stmt in body:
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if isinstance(small, cst.Import):
                        for alias in small.names:
                            dotted = get_full_name_for_node(alias.name) or ""
                            if alias.asname is not None:
                                local = (
                                    get_full_name_for_node(alias.asname.name) or dotted
                                )
                                out[local] = (dotted, None, local)
                            else:
                                out.setdefault(
                                    dotted.split(".")[0],
                                    (dotted.split(".")[0], None, None),
                                )
                    elif isinstance(small, cst.ImportFrom):
                        if (
                            isinstance(small.names, cst.ImportStar)
                            or small.module is None
                            or small.relative
                        ):
                            continue
                        source = get_full_name_for_node(small.module) or ""
                        for alias in small.names:
                            name = get_full_name_for_node(alias.name) or ""
                            asname = (
                                get_full_name_for_node(alias.asname.name)
                                if alias.asname is not None
                                else None
                            )
                            out[asname or name] = (source, name, asname)
                    elif isinstance(small, (cst.Assign, cst.AnnAssign)):
                        targets = (
                            small.targets if isinstance(small, cst.Assign) else [small]
                        )
                        for target in targets:
                            for name in findall(target.target, m.Name()):
                                out.setdefault(name.value, None)  # type: ignore[union-attr]
            elif isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
                out[stmt.name.value] = None
            elif isinstance(stmt, (cst.If, cst.Try)):
                visit(stmt.body.body)  # ``if TYPE_CHECKING:``, version switches

    visit(module.body)
    return out


# ------------------------------------------------------------------------------- the graph


@dataclass
class Fixture:
    name: str
    rel: str  # the module that defines it
    line: int
    params: list[str]
    source: (
        str  # the whole definition, decorators included (the recipe phase 5 inlines)
    )
    autouse: bool = False
    yields: bool = False
    #: an object fixture whose teardown does only database work on a database that lives
    #: only for the test (:func:`database_only_teardown`): its recipe ends at its ``yield``
    database_teardown: bool = False
    #: a manager fixture whose teardown only empties containers of the manager's own
    #: (``manager._cache.clear()``): each test builds its managers afresh, so its recipe
    #: ends at its ``yield`` too (:meth:`_Classifier._empties_own_state`)
    state_teardown: bool = False
    kind: str = PLAIN
    #: manager fixtures: the manager class and its short name in ``create_all_managers``
    manager_class: str | None = None
    manager_short: str | None = None
    plain_manager: bool = False
    #: manager fixtures that are not plain only because they hand the manager something
    #: ``create_all_managers`` takes as a keyword (a mock client): keyword -> the
    #: parameter of this fixture (a fixture name) that supplies it
    factory_overrides: dict[str, str] = field(default_factory=dict)
    #: factory fixtures already in the new style (inner function takes ``session`` first)
    new_style: bool = False
    #: names the recipe reads from its module: imported ones -> [module, obj, asname]
    imports: dict[str, list[str | None]] = field(default_factory=dict)
    #: names the recipe reads that its module defines itself (helpers, constants)
    module_names: list[str] = field(default_factory=list)
    #: those of them the module binds once, to a string literal: name -> the string
    constants: dict[str, str] = field(default_factory=dict)
    #: why the tool will not rewrite it (reported with file:line), None if it will
    problem: str | None = None
    #: returns a closure that calls into the application (``run_cli``): the application
    #: opens its own SessionContext there, so a test's session may hold stale objects after
    runs_app: bool = False
    #: the function's own name when ``@pytest.fixture(name=...)`` registers it under
    #: another one (``name`` is the registered name, the one tests request)
    function: str | None = None
    #: its return annotation, when every name the annotation reads is a builtin or imported
    #: in its module (those imports: name -> [module, obj, asname]); None otherwise
    returns: str | None = None
    returns_imports: dict[str, list[str | None]] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.rel}:{self.line}"

    @property
    def drops_teardown(self) -> bool:
        """Whether its recipe ends at its ``yield``: what runs after it is no teardown a
        test needs (:attr:`database_teardown`, :attr:`state_teardown`)."""
        return self.database_teardown or self.state_teardown

    def node(self) -> cst.FunctionDef:
        """The definition as a libcst node, parsed from the recorded source once (nodes are
        immutable: every caller may share it)."""
        return self._node

    @functools.cached_property
    def _node(self) -> cst.FunctionDef:
        return cst.ensure_type(cst.parse_statement(self.source), cst.FunctionDef)


@dataclass
class FixtureModule:
    rel: str
    module: str
    own: list[str]  # fixture names defined here (the effective definitions)
    stars: list[str]  # fixture modules star-imported here, in order
    dead: dict[str, list[int]] = field(
        default_factory=dict
    )  # name -> lines of dead definitions


@dataclass
class FixtureGraph:
    modules: dict[str, FixtureModule] = field(default_factory=dict)
    fixtures: dict[str, dict[str, Fixture]] = field(
        default_factory=dict
    )  # rel -> name -> fixture
    #: the recorded graph from before phase 4, consulted for names no longer defined
    fallback: FixtureGraph | None = None
    #: lookups already answered, valid while no module or fixture is added
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def _version(self) -> tuple[int, int]:
        return len(self.modules), sum(map(len, self.fixtures.values()))

    # ---------------------------------------------------------------- lookups
    def visible(self, rel: str, _seen: set[str] | None = None) -> dict[str, Fixture]:
        """Fixtures a fixture module makes available: its own, then star-imported ones."""
        seen = _seen if _seen is not None else set()
        if rel in seen or rel not in self.modules:
            return {}
        seen.add(rel)
        out: dict[str, Fixture] = {}
        for star in self.modules[rel].stars:
            for name, fixture in self.visible(star, seen).items():
                out.setdefault(name, fixture)
        out.update(self.fixtures.get(rel, {}))
        return out

    def star_imported(self, rel: str) -> bool:
        """Whether another fixture module star-imports the module at ``rel`` (the names it
        imports are then that module's too)."""
        return any(rel in module.stars for module in self.modules.values())

    def scopes(self, rel: str) -> list[str]:
        """Fixture modules whose fixtures a file at ``rel`` sees, nearest first."""
        out = [rel] if rel in self.modules else []
        parent = PurePosixPath(rel).parent
        while True:
            conftest = (
                (parent / "conftest.py").as_posix()
                if str(parent) != "."
                else "conftest.py"
            )
            if conftest in self.modules and conftest not in out:
                out.append(conftest)
            if str(parent) in (".", ""):
                break
            parent = parent.parent
        return out

    def fixture_modules_serving(self, rel: str) -> list[tuple[str, bool]]:
        """The fixture modules whose new fixtures a test module at ``rel`` would see, nearest
        first: each conftest of its directories, followed by the modules that conftest
        star-imports (their fixtures are the conftest's), each with whether it is reached
        through a star import (a name it adds is seen only if ``import *`` exports it)."""
        out: list[tuple[str, bool]] = []
        seen: set[str] = set()

        def add(module: str, starred: bool) -> None:
            if module in seen or module not in self.modules:
                return
            seen.add(module)
            out.append((module, starred))
            for star in self.modules[module].stars:
                add(star, True)

        for scope in self.scopes(rel):
            if PurePosixPath(scope).name == "conftest.py":
                add(scope, False)
        return out

    def _memo_table(self) -> dict[Any, Any]:
        version = self._version()
        if self._memo.get("version") != version:
            self._memo.clear()
            self._memo["version"] = version
        return self._memo

    def _visible(self, rel: str) -> dict[str, Fixture]:
        """:meth:`visible`, computed once per module while the graph does not change."""
        memo = self._memo_table()
        key = ("visible", rel)
        if key not in memo:
            memo[key] = self.visible(rel)
        return memo[key]

    def resolve_current(self, name: str, rel: str) -> Fixture | None:
        self._memo_table()
        key = ("visible-from", rel)
        table = self._memo.get(key)
        if table is None:
            table = {}
            for scope in reversed(self.scopes(rel)):
                table.update(self._visible(scope))
            self._memo[key] = table
        return table.get(name)

    def _conftests(self) -> list[str]:
        return [
            rel
            for rel in sorted(self.modules)
            if PurePosixPath(rel).name == "conftest.py"
        ]

    def serving(self, name: str, fixture: Fixture) -> list[Fixture]:
        """Every current definition of ``name`` that may answer ``fixture``'s request of it.

        pytest resolves a fixture's requests from the test that uses it: where ``fixture``
        is visible (the directory of each conftest that defines, star-imports or plugs it
        in), the nearest definition answers, and a conftest further down that defines
        ``name`` again answers for the tests below it. A fixture that asks for its own name
        gets the next definition up.
        """
        conftests = self._conftests()
        exposing = [
            rel for rel in conftests if self._visible(rel).get(fixture.name) is fixture
        ] or [fixture.rel]
        found: dict[int, Fixture] = {}
        for rel in exposing:
            if name == fixture.name:
                for scope in self.scopes(rel):
                    other = self._visible(scope).get(name)
                    if other is not None and other is not fixture:
                        found.setdefault(id(other), other)
                        break
                continue
            nearest = self.resolve_current(name, rel)
            if nearest is not None:
                found.setdefault(id(nearest), nearest)
            base = PurePosixPath(rel).parent
            for below in conftests:
                folder = PurePosixPath(below).parent
                if below != rel and (str(base) == "." or base in folder.parents):
                    other = self._visible(below).get(name)
                    if other is not None:
                        found.setdefault(id(other), other)
        return list(found.values())

    def above(self, fixture: Fixture) -> Fixture | None:
        """What ``fixture``'s request of its own name gets (an override that extends the
        fixture it overrides): the next definition of that name up from where it is
        defined, in this graph or, where phase 4 deleted them, in the recorded one."""
        for graph in (self, self.fallback):
            if graph is None:
                continue
            own = graph.fixtures.get(fixture.rel, {}).get(fixture.name)
            if own is None or own.line != fixture.line:
                continue
            for scope in graph.scopes(fixture.rel):
                other = graph._visible(scope).get(fixture.name)
                if other is not None and other is not own:
                    return other
        return None

    def resolve(self, name: str, rel: str) -> Fixture | None:
        """The fixture ``name`` as a test or fixture at ``rel`` gets it (recorded as fallback).

        Where phase 4 deleted the definition that answered before (a conftest's override
        nearer ``rel``), the recorded one answers: a definition further away that stays
        (kept for something else) never answered for ``rel``."""
        fixture = self.resolve_current(name, rel)
        if self.fallback is None:
            return fixture
        if fixture is None:
            return self.fallback.resolve(name, rel)
        before = self.fallback.resolve(name, rel)
        if (
            before is not None
            and before.rel != fixture.rel
            and self.fixtures.get(before.rel, {}).get(name) is None
        ):
            return before
        return fixture

    def all(self) -> list[Fixture]:
        return [f for rel in sorted(self.fixtures) for f in self.fixtures[rel].values()]

    def names(self, *kinds: str) -> set[str]:
        found = {f.name for f in self.all() if not kinds or f.kind in kinds}
        if self.fallback is not None:
            found |= self.fallback.names(*kinds)
        return found

    def count(self, kinds: Iterable[str]) -> int:
        kinds = set(kinds)
        return sum(1 for f in self.all() if f.kind in kinds)

    # ---------------------------------------------------------------- state
    def to_json(self) -> dict[str, Any]:
        return {
            "version": GRAPH_VERSION,
            "modules": {rel: asdict(mod) for rel, mod in self.modules.items()},
            "fixtures": {
                rel: {n: asdict(f) for n, f in fx.items()}
                for rel, fx in self.fixtures.items()
            },
        }

    @classmethod
    def from_json(cls, data: Any) -> FixtureGraph | None:
        if not isinstance(data, dict) or data.get("version") != GRAPH_VERSION:
            return None
        try:
            graph = cls()
            for rel, mod in data["modules"].items():
                graph.modules[rel] = FixtureModule(**mod)
            for rel, fixtures in data["fixtures"].items():
                graph.fixtures[rel] = {n: Fixture(**f) for n, f in fixtures.items()}
            return graph
        except (KeyError, TypeError):
            return None


@dataclass
class FixtureAnalysis:
    """What phases 4 and 5 hand their codemods."""

    config: Config
    root: Any  # the target's root directory (a Path)
    graph: FixtureGraph
    managers: ManagerGraph | None
    #: relationship attribute name -> {"collection", "scalar", "unknown"} over every model
    relationships: dict[str, set[str]]
    #: work the codemods share between files of one run (inlined recipes)
    cache: dict[Any, Any] = field(default_factory=dict)
    #: what phase 4 does with each fixture (:func:`fixture_plan`), set by the phase's analysis
    plan: FixturePlan | None = None
    #: how the target's pytest names its tests
    naming: TestNaming = DEFAULT_NAMING
    #: the session context class takes the DatabaseManager first
    #: (:func:`context_takes_database_manager`)
    context_takes_manager: bool = False
    #: the test modules phase 5 rewrites, set by phase 4's analysis
    rewritten_modules: tuple[str, ...] = ()

    def attribute_kind(self, attr: str) -> str:
        kinds = self.relationships.get(attr)
        if not kinds:
            return "scalar"  # a column (or an attribute no model declares a relationship for)
        if kinds == {"collection"}:
            return "collection"
        if kinds == {"scalar"}:
            return "scalar"
        return "unknown"


# ------------------------------------------------------------------------------- phase 4's plan

#: what phase 4 does with a fixture (:meth:`FixturePlan.fate`):
#: the session fixture, a manager fixture, an object fixture phase 5 inlines: deleted
DELETE = "delete"
#: one of those that something staying still requests: kept as it is
KEEP = "keep"
#: an old-style factory fixture step 4.4 rewrites
REWRITE = "rewrite"
#: touches the session in a way the rules do not rewrite: reported, left in place
LEAVE = "leave"
#: needs nothing (plain fixtures, the session context, factories in the new style)
UNCHANGED = "unchanged"


def _deletable(fixture: Fixture) -> bool:
    """Whether phase 4 deletes the fixture when nothing that stays requests it."""
    return fixture.kind in (SESSION, MANAGER) or (
        fixture.kind == OBJECT and fixture.problem is None
    )


def deletable_names(graph: FixtureGraph) -> set[str]:
    """The names of the fixtures phase 4 deletes when nothing that stays requests them: the
    only requests :func:`fixture_plan` needs to be told about."""
    return {f.name for f in graph.all() if _deletable(f)}


def rewrites_factory(fixture: Fixture) -> bool:
    """Whether step 4.4 rewrites this factory fixture: an old-style one without a problem."""
    return fixture.kind == FACTORY and not fixture.new_style and fixture.problem is None


def factory_drops(graph: FixtureGraph, fixture: Fixture) -> set[str]:
    """The parameters step 4.4 removes from a factory fixture it rewrites: the session and
    manager fixtures (its inner function takes the session and builds its managers)."""
    out = set()
    for param in fixture.params:
        dep = graph.resolve(param, fixture.rel)
        if dep is not None and dep is not fixture and dep.kind in (SESSION, MANAGER):
            out.add(param)
    return out


def session_request_to_add(graph: FixtureGraph, fixture: Fixture) -> str | None:
    """The session fixture an object fixture (or one phase 4 leaves in place) must request
    once phase 4 is done, if it stays: it calls a factory fixture step 4.4 rewrites (whose
    inner function takes the session first now) and requests no session fixture itself.
    ``None`` when it needs none, or no single session fixture serves it."""
    if fixture.kind not in (OBJECT, DB_OTHER):
        return None
    deps = [graph.resolve(p, fixture.rel) for p in fixture.params]
    if any(d is not None and d.kind == SESSION for d in deps):
        return None
    if not any(d is not None and d is not fixture and rewrites_factory(d) for d in deps):
        return None
    found = {
        f.name
        for name in graph.names(SESSION)
        if (f := graph.resolve(name, fixture.rel)) is not None and f.kind == SESSION
    }
    if len(found) != 1:
        return None
    (name,) = found
    return None if name in fixture.params else name


def session_context_to_add(
    graph: FixtureGraph, fixture: Fixture, name: str, test_modules: Iterable[str]
) -> bool:
    """Whether step 4.1 defines the session context fixture (``name``) where it deletes the
    session fixture ``fixture``: no fixture of that name is seen where the session fixture
    is defined, and one of ``test_modules`` (those phase 5 rewrites) sees the session
    fixture, so its tests, moved to ``with session_context as session:``, would request a
    fixture nobody defines."""
    return (
        fixture.kind == SESSION
        and graph.resolve_current(name, fixture.rel) is None
        and any(graph.resolve_current(fixture.name, rel) is fixture for rel in test_modules)
    )


def database_manager_request(
    graph: FixtureGraph, fixture: Fixture, database_manager_class: str
) -> str | None:
    """The parameter of the session fixture ``fixture`` that gives it the test's
    ``DatabaseManager`` (a fixture whose recipe builds one), if it has one: the session
    context fixture step 4.1 defines in its place opens its sessions from that one."""
    for param in fixture.params:
        dep = graph.resolve_current(param, fixture.rel)
        if dep is not None and dep is not fixture and database_manager_class in dep.source:
            return param
    return None


def context_takes_database_manager(project: Project) -> bool:
    """Whether the session context class (``Config.session_context_class`` in the session
    module) takes the ``DatabaseManager`` as the first argument of its constructor: a
    parameter after ``self`` that is annotated with the DatabaseManager class, or, without
    annotations, the only one."""
    config = project.config
    if not project.exists(config.session_module):
        return False
    for stmt in project.parse(config.session_module).body:
        if not (isinstance(stmt, cst.ClassDef) and stmt.name.value == config.session_context_class):
            continue
        for item in stmt.body.body if isinstance(stmt.body, cst.IndentedBlock) else ():
            if not (isinstance(item, cst.FunctionDef) and item.name.value == "__init__"):
                continue
            params = list(item.params.posonly_params) + list(item.params.params)
            params = params[1:]
            if not params:
                return False
            first = params[0]
            if first.annotation is not None:
                return config.database_manager_class in code(first.annotation.annotation)
            return len(params) == 1
    return False


def passes_no_session(
    fn: cst.FunctionDef, factories: Container[str], session_names: Container[str]
) -> bool:
    """Whether ``fn`` calls factory fixtures (by the names in ``factories``) and none of
    those calls passes a session first (a name in ``session_names``: the session fixture,
    the session variable): they are calls of the old style, to be given the session
    fixture. False when some call passes one already (a helper fixture phase 5 wrote,
    ``make(session)``, or a fixture phase 5 rewrote before)."""
    calls = [
        cst.ensure_type(c, cst.Call)
        for c in findall(fn.body, m.Call(func=m.Name(m.MatchIfTrue(lambda n: n in factories))))
    ]
    if not calls:
        return False
    for call in calls:
        first = next((a.value for a in call.args if a.keyword is None and not a.star), None)
        if isinstance(first, cst.Name) and first.value in session_names:
            return False
    return True


def test_module_session_requests(
    module: cst.Module,
    rel: str,
    lines: Lines,
    graph: FixtureGraph,
    session_fixture: str,
    graph_session_variable: str,
    dropped: Container[str] = (),
) -> list[Request]:
    """The session fixture requests the fixtures a test module defines (in the module or in
    its classes) make once phase 5 is done with them (``dropped``: those phase 5 deletes,
    its tests build what they made themselves, make none): one that calls a factory fixture step
    4.4 rewrites (whose inner function takes the session first now) and requests no session
    fixture passes it the session fixture, which it requests from then on (phase 5's
    ``_session_to_factories``), so phase 4 keeps that fixture. So does one that calls a
    factory already in the new style without a session fixture or session context to take
    a session from (phase 4 run again before phase 5)."""
    session = graph.resolve(session_fixture, rel)
    if session is None or session.kind != SESSION:
        return []
    out: list[Request] = []
    blocks: list[tuple[Sequence[cst.BaseStatement], bool]] = [(module.body, False)]
    while blocks:
        body, method = blocks.pop()
        for stmt in body:
            if isinstance(stmt, cst.ClassDef) and isinstance(stmt.body, cst.IndentedBlock):
                blocks.append((stmt.body.body, True))
            elif (
                isinstance(stmt, cst.FunctionDef)
                and is_fixture(stmt)
                and registered_name(stmt) not in dropped
            ):
                asked = requested_names(stmt, method, fetches=False)
                if session_fixture in asked or any(
                    (f := graph.resolve(n, rel)) is not None and f.kind == SESSION_CONTEXT
                    for n in asked
                ):
                    continue
                # a factory rewritten now, or before (a run again): either way its calls
                # here need a session, which only the session fixture can give
                factories = {
                    n
                    for n in asked
                    if (f := graph.resolve(n, rel)) is not None
                    and (rewrites_factory(f) or (f.kind == FACTORY and f.new_style))
                }
                if passes_no_session(
                    stmt, factories, {session_fixture, graph_session_variable}
                ):
                    out.append(
                        Request(
                            session_fixture,
                            rel,
                            lines.start(stmt) or 0,
                            f"fixture {registered_name(stmt)!r}",
                            "which the test module defines (it passes the session to the "
                            "factories step 4.4 rewrites)",
                        )
                    )
    return out


def _requests_after_phase4(graph: FixtureGraph, fixture: Fixture) -> list[str]:
    """What a fixture that stays asks for once phase 4 is done with it."""
    names = list(fixture.params)
    added = session_request_to_add(graph, fixture)
    if added is not None:
        names.append(added)
    if "getfixturevalue" in fixture.source:
        names += [n for n in getfixturevalue_names(fixture.node()) if n is not None]
    if rewrites_factory(fixture):
        dropped = factory_drops(graph, fixture)
        names = [n for n in names if n not in dropped]
    return list(dict.fromkeys(names))


_STAYS = {
    KEEP: "which is kept too",
    REWRITE: "which keeps it when step 4.4 rewrites it",
    LEAVE: "which phase 4 leaves in place",
    UNCHANGED: "which stays",
}


@dataclass
class FixturePlan:
    """What phase 4 does with the fixtures of one graph (built by :func:`fixture_plan`)."""

    #: (module, name) of each fixture phase 4 would delete but keeps -> a request that still
    #: reaches it (the first one found)
    kept: dict[tuple[str, str], Request] = field(default_factory=dict)

    def fate(self, fixture: Fixture) -> str:
        if _deletable(fixture):
            return KEEP if (fixture.rel, fixture.name) in self.kept else DELETE
        if rewrites_factory(fixture):
            return REWRITE
        if fixture.kind == DB_OTHER or (
            fixture.problem is not None
            and fixture.kind in (FACTORY, OBJECT)
            and not fixture.new_style
        ):
            return LEAVE
        return UNCHANGED

    def deletes(self, fixture: Fixture) -> bool:
        return self.fate(fixture) == DELETE

    def keeper(self, fixture: Fixture) -> Request | None:
        """What still requests a kept fixture (None: it is not kept)."""
        return self.kept.get((fixture.rel, fixture.name))


def fixture_plan(graph: FixtureGraph, requests: Iterable[Request] = ()) -> FixturePlan:
    """Which fixtures of ``graph`` phase 4 deletes and what it does with the others: the one
    answer phase 4 acts on and phase 5 (or anything else) asks.

    The session fixture, the manager fixtures and the object fixtures whose recipe phase 5
    can inline are deleted (docs/plan.md 4.1, 4.2, 4.5) unless something that stays still
    requests them, directly or through other fixtures, in any conftest, plugin or test
    module: a fixture phase 4 does not delete (a rewritten factory with the parameters it
    keeps, a factory or fixture it reports and leaves as it is, a plain one) or one of
    ``requests`` (what the test modules ask for that phase 5 leaves as it is, see
    :func:`module_requests`). A fixture kept so keeps what it requests in turn. What
    happens to a fixture other than these (a factory rewritten or left) depends on no
    request.
    """
    plan = FixturePlan()
    queue: deque[tuple[str, Fixture | None, Request]] = deque()

    def ask(fixture: Fixture) -> None:
        by, why = f"fixture {fixture.name!r}", _STAYS[plan.fate(fixture)]
        for name in _requests_after_phase4(graph, fixture):
            queue.append(
                (name, fixture, Request(name, fixture.rel, fixture.line, by, why))
            )

    for fixture in graph.all():
        if not _deletable(fixture):
            ask(fixture)
    for request in requests:
        queue.append((request.name, None, request))
    while queue:
        name, source, request = queue.popleft()
        if source is not None:
            targets = graph.serving(name, source)
        else:
            found = graph.resolve_current(name, request.rel)
            targets = [found] if found is not None else []
        for target in targets:
            key = (target.rel, target.name)
            if _deletable(target) and key not in plan.kept:
                plan.kept[key] = request
                ask(target)
    return plan


# ------------------------------------------------------------------------------- building


def _module_for(project: Project, dotted: str) -> str | None:
    return project.module_file(dotted)


def _star_imports(
    project: Project, rel: str, module: cst.Module, lines: Lines
) -> list[tuple[str | None, str, int]]:
    """(relpath or None, dotted name, line) of every module-level ``from x import *``."""
    out = []
    package = package_of(project.module_name(rel), rel)
    for stmt in module.body:
        if not matches(stmt, _STAR_IMPORT_LINE):
            continue
        node = cst.ensure_type(stmt, cst.SimpleStatementLine).body[0]
        try:
            dotted = get_absolute_module_from_package_for_import(package or None, node)  # type: ignore[arg-type]
        except Exception:
            dotted = None
        if dotted is None:
            continue
        out.append((_module_for(project, dotted), dotted, lines.start(stmt) or 0))
    return out


def _plugin_modules(
    project: Project, module: cst.Module
) -> list[tuple[str | None, str]]:
    """(relpath or None, dotted name) of the modules a module-level ``pytest_plugins``
    names (a string, or a list or tuple of strings): pytest loads their fixtures as if
    the conftest defined them, so the graph follows them like star imports."""
    out = []
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if (
                isinstance(small, cst.Assign)
                and any(
                    matches(t.target, m.Name("pytest_plugins")) for t in small.targets
                )
            ) or (
                isinstance(small, (cst.AnnAssign, cst.AugAssign))
                and matches(small.target, m.Name("pytest_plugins"))
            ):
                value = small.value
            else:
                continue
            if isinstance(value, cst.BaseString):
                strings = [value]
            elif isinstance(value, (cst.List, cst.Tuple)):
                strings = [e.value for e in value.elements]
            else:
                strings = []
            for string in strings:
                dotted = (
                    string.evaluated_value
                    if isinstance(string, (cst.SimpleString, cst.ConcatenatedString))
                    else None
                )
                if isinstance(dotted, str) and dotted:
                    out.append((_module_for(project, dotted), dotted))
    return out


def build_graph(
    project: Project, managers: ManagerGraph | None, classify: bool = True
) -> FixtureGraph:
    """The fixture graph of the project's current conftests (and what they star-import).

    ``classify``: give every fixture its kind (a question of which fixture answers which
    request does not need them)."""
    graph = FixtureGraph()
    conftests = [
        rel
        for rel in project.python_files()
        if PurePosixPath(rel).name == "conftest.py"
    ]
    # the cheap prefilter: a conftest that neither defines fixtures nor pulls them in from
    # elsewhere is never parsed
    todo = project.grep(conftests, "fixture", "import *", "pytest_plugins")
    parsed: dict[str, cst.Module] = {}
    while todo:
        rel = todo.pop(0)
        if rel in graph.modules:
            continue
        module = project.parse(rel)
        lines = Lines(module)
        parsed[rel] = module
        stars = []
        pulled = [(r, d) for r, d, _ in _star_imports(project, rel, module, lines)]
        pulled += _plugin_modules(project, module)
        for star_rel, dotted in pulled:
            if star_rel is None:
                continue  # a third-party module: not ours to rewrite
            stars.append(star_rel)
            if star_rel not in graph.modules and star_rel not in todo:
                todo.append(star_rel)
        defs: dict[str, list[cst.FunctionDef]] = {}
        for stmt in module.body:
            if is_fixture(stmt):
                fn = cst.ensure_type(stmt, cst.FunctionDef)
                defs.setdefault(registered_name(fn), []).append(fn)
        fixture_module = FixtureModule(
            rel=rel, module=project.module_name(rel), own=list(defs), stars=stars
        )
        bindings = top_level_bindings(module)
        strings = string_constants(module)
        graph.fixtures[rel] = {}
        for name, nodes in defs.items():
            if len(nodes) > 1:
                fixture_module.dead[name] = [lines.start(n) or 0 for n in nodes[:-1]]
            fn = nodes[-1]
            graph.fixtures[rel][name] = _describe(
                module,
                rel,
                fn,
                bindings,
                lines,
                session=project.config.session_fixture,
                strings=strings,
            )
        graph.modules[rel] = fixture_module
    if classify:
        classifier = _Classifier(project, graph, managers, parsed)
        for fixture in graph.all():
            classifier.kind(fixture)
    return graph


def local_fixtures(
    analysis: FixtureAnalysis,
    module: cst.Module,
    rel: str,
    layers: Sequence[tuple[Sequence[cst.FunctionDef], bool]],
    lines: Lines | None = None,
) -> dict[str, Fixture]:
    """The fixtures a test of the test module ``rel`` gets from the module itself and from
    its classes, described and classified as the conftests' are (their requests of the
    conftests' fixtures resolved through ``graph`` and its fallback). ``layers``: the
    fixture definitions of the module, then of each class around the test (a base class
    before the class), outermost first, each with whether they are methods; a later
    definition of a name overrides an earlier one, as pytest's nearest one does.
    ``lines``: the module's, if the caller has them."""
    project = Project(analysis.root, analysis.config)
    graph = analysis.graph
    lines = lines if lines is not None else Lines(module)
    bindings = top_level_bindings(module)
    strings = string_constants(module)
    own: dict[str, Fixture] = {}
    #: fixtures that request the definition they override, which is one of the module's
    #: or touches the database
    overriding: set[str] = set()
    for fns, method in layers:
        for fn in fns:
            fixture = _describe(
                module, rel, fn, bindings, lines, method, project.config.session_fixture, strings
            )
            instance = positional_params(fn)[:1] if method else []
            if (
                instance
                and fixture.params == positional_params(fn)[1:]
                and instance[0] in scan(statements(fn)).used
            ):
                fixture.problem = f"reads {instance[0]!r}"
            overriding.discard(fixture.name)
            if fixture.name in fixture.params:
                below = graph.resolve(fixture.name, rel)
                if fixture.name in own or (below is not None and below.kind in DB_KINDS):
                    overriding.add(fixture.name)
            own[fixture.name] = fixture
    overlay = FixtureGraph(
        modules={
            **graph.modules,
            rel: FixtureModule(
                rel=rel, module=project.module_name(rel), own=list(own), stars=[]
            ),
        },
        fixtures={**graph.fixtures, rel: own},
        fallback=graph.fallback,
    )
    classifier = _Classifier(project, overlay, analysis.managers, {rel: module}, local=True)
    for name in overriding:  # classified already: what requests them is left too
        own[name].kind = DB_OTHER
        own[name].problem = "requests the fixture it overrides"
        classifier._done.add(id(own[name]))
    for fixture in own.values():
        if fixture.name in overriding:
            continue
        problem = fixture.problem
        fixture.problem = None
        kind = classifier.kind(fixture)
        if kind == MANAGER and problem is None and fixture.problem is None:
            # a manager fixture of the test module: built as create_all_managers builds it,
            # or a recipe its tests build again on their session (as a conftest's)
            continue
        if kind not in (PLAIN, OBJECT, DB_OTHER):
            # a session or factory fixture of the test module, which phases 4 and 5 do not
            # rewrite: one on top of database fixtures is left as it is
            touches = any(
                (dep := classifier._dep(p, fixture)) is not None and dep.kind in DB_KINDS
                for p in fixture.params
            )
            fixture.kind = DB_OTHER if touches else PLAIN
            fixture.problem = "is not a recipe of an object"
        if fixture.kind == PLAIN:
            fixture.problem = None
        else:
            fixture.problem = problem or fixture.problem
    return own


# ------------------------------------------------------------------------------- the test's database

#: the directories pytest makes for each test (function-scoped fixtures of its own)
_TEST_DIRECTORIES = ("tmp_path", "tmpdir")
#: builtins that reach past the objects handed to them (files, the console, other code)
_OUTSIDE_BUILTINS = frozenset(
    {"open", "print", "input", "breakpoint", "exec", "eval", "compile", "__import__", "globals"}
)


def in_memory_sqlite(url: str) -> bool:
    """Whether ``url`` names an in-memory SQLite database (``sqlite://``,
    ``sqlite:///:memory:``, ``sqlite+pysqlite://``, a ``mode=memory`` URI)."""
    match = re.fullmatch(r"sqlite(?:\+\w+)?://(?P<path>[^?]*)(?:\?(?P<query>.*))?", url)
    if match is None:
        return False
    if match["path"] in ("", "/", "/:memory:"):
        return True
    return bool(re.search(r"(?:^|&)mode=memory(?:&|$)", match["query"] or ""))


def _builtin(fixture: Fixture, name: str) -> bool:
    """Whether ``name``, read in ``fixture``, is a builtin (its module binds no such name)."""
    return (
        name in _BUILTIN_NAMES
        and name not in fixture.imports
        and name not in fixture.module_names
    )


def _creates_test_engine(graph: FixtureGraph, fixture: Fixture, rel: str) -> bool:
    """Whether ``fixture`` calls SQLAlchemy's ``create_engine`` with a URL of a database that
    lives only for the test at ``rel``: an in-memory SQLite URL literal, or one built from
    the directory pytest makes for the test (``tmp_path``, where the project defines no
    fixture of that name) with nothing but builtins; a local name is followed to its one
    assignment, a name of the module to the string it binds once
    (:attr:`Fixture.constants`)."""
    fn = fixture.node()
    dirs = {
        p for p in fixture.params if p in _TEST_DIRECTORIES and graph.resolve(p, rel) is None
    }
    values: dict[str, list[cst.BaseExpression | None]] = {}
    for node in findall(
        fn.body, m.Assign() | m.AnnAssign() | m.AugAssign() | m.For() | m.NamedExpr()
    ):
        value: cst.BaseExpression | None = None
        if matches(node, m.Assign(targets=[m.AssignTarget(target=m.Name())])):
            assign = cst.ensure_type(node, cst.Assign)
            target, value = assign.targets[0].target, assign.value
        elif matches(node, m.AnnAssign(target=m.Name())):
            annotated = cst.ensure_type(node, cst.AnnAssign)
            target, value = annotated.target, annotated.value
        if value is not None:
            values.setdefault(cst.ensure_type(target, cst.Name).value, []).append(value)
            continue
        for name in scan([node]).bound:  # bound otherwise: not followed
            values.setdefault(name, []).append(None)

    def url_of(expr: cst.BaseExpression, seen: frozenset[str]) -> str | None:
        """``"memory"`` (an in-memory SQLite URL), ``"directory"`` (built from the test's
        directory), ``""`` (neither), None (reads something else than those and builtins)."""
        text = _string(expr)
        if text is None and isinstance(expr, cst.Name) and expr.value not in values:
            text = fixture.constants.get(expr.value)
        if text is not None:
            return "memory" if in_memory_sqlite(text) else ""
        if isinstance(expr, cst.Name) and expr.value in values:
            bound = values[expr.value]
            if len(bound) != 1 or bound[0] is None or expr.value in seen:
                return None
            return url_of(bound[0], seen | {expr.value})
        directory = False
        for name in scan([expr]).used:
            if name in dirs:
                directory = True
            elif name in values:
                inner = url_of(cst.Name(name), seen)
                if inner is None:
                    return None
                directory = directory or inner == "directory"
            elif not _builtin(fixture, name) or name in _OUTSIDE_BUILTINS:
                return None
        return "directory" if directory else ""

    for node in findall(fn.body, m.Call()):
        call = cst.ensure_type(node, cst.Call)
        dotted = get_full_name_for_node(call.func)
        binding = fixture.imports.get(dotted.split(".")[0]) if dotted else None
        if dotted is None or binding is None:
            continue
        qualified = [str(p) for p in (binding[0], binding[1]) if p] + dotted.split(".")[1:]
        if qualified[0].split(".")[0] != "sqlalchemy" or qualified[-1] != "create_engine":
            continue
        for index, arg in enumerate(call.args):
            first = arg.keyword is None and not arg.star and index == 0
            named = arg.keyword is not None and arg.keyword.value == "url"
            if (first or named) and url_of(arg.value, frozenset()) in ("memory", "directory"):
                return True
    return False


def database_per_test(graph: FixtureGraph, rel: str, config: Config) -> bool:
    """Whether every test at ``rel`` gets a database of its own: the session fixture
    (``Config.session_fixture``, as a test at ``rel`` gets it, phase 4's record where it
    deleted it) is set up once per test and so is every fixture on a chain of requests from
    it (resolved as pytest resolves them for that test) to one that creates the engine with
    a URL of a database that lives only for the test (:func:`_creates_test_engine`). A
    fixture of a wider scope on the way, a URL from the environment or a constant file
    path: not per test."""
    memo = graph._memo_table()
    key = ("database per test", rel, id(graph.fallback))
    if key not in memo:
        start = graph.resolve(config.session_fixture, rel)
        seen: set[int] = set()

        def reaches(fixture: Fixture) -> bool:
            if id(fixture) in seen:
                return False
            seen.add(id(fixture))
            if not per_test(fixture.node()):
                return False
            if _creates_test_engine(graph, fixture, rel):
                return True
            for param in fixture.params:
                dep = graph.above(fixture) if param == fixture.name else graph.resolve(param, rel)
                if dep is not None and reaches(dep):
                    return True
            return False

        memo[key] = start is not None and reaches(start)
    return bool(memo[key])


def database_only_teardown(fixture: Fixture, kinds: dict[str, str | None]) -> bool:
    """Whether what the fixture runs after its one ``yield <value>`` does only database work:
    it reads nothing but the fixture's session and manager fixture parameters (``kinds``:
    the kind of what each parameter gets, None where no fixture of the project answers),
    the names the fixture binds before the ``yield`` from no other fixture's value (the
    objects it made), the names the teardown binds itself and builtins that reach nothing
    outside (no files, no console). Another fixture (a fake client's ``reset()``), a name
    of its module or an import (``os``) is other work. With a database that lives only for
    the test (:func:`database_per_test`) such a teardown has no effect a later test could
    see: it counts as no teardown (:func:`recipe_statements`)."""
    body = split_docstring(statements(fixture.node()))[1]
    cut = _yield_statement(body)
    if cut is None or cut == len(body) - 1:
        return False
    before, teardown = body[:cut], body[cut + 1 :]
    database = {p for p, kind in kinds.items() if kind in (SESSION, MANAGER)}
    foreign = {p for p, kind in kinds.items() if kind not in DB_KINDS}
    made: set[str] = set()
    for stmt in before:
        found = scan([stmt])
        if foreign.isdisjoint(found.used):
            made |= found.bound
        else:
            foreign |= found.bound
    own = scan(teardown)
    if own.yields or own.returns:
        return False
    if findall(cst.Module(body=list(teardown)), m.Global() | m.Nonlocal()):
        return False
    allowed = database | (made - foreign) | (own.bound - set(kinds))
    return all(
        name in allowed
        or (
            name not in kinds
            and name not in made
            and _builtin(fixture, name)
            and name not in _OUTSIDE_BUILTINS
        )
        for name in own.used
    )


def _describe(
    module: cst.Module,
    rel: str,
    fn: cst.FunctionDef,
    bindings: dict[str, Any],
    lines: Lines,
    method: bool = False,
    session: str | None = None,
    strings: dict[str, str] | None = None,
) -> Fixture:
    """``fn`` described (its kind left to the classifier); ``bindings`` and ``strings`` are
    the module's :func:`top_level_bindings` and :func:`string_constants` (computed here
    when not given)."""
    params = positional_params(fn)
    if method and params and not any(
        matches(d, m.Decorator(decorator=m.Name("staticmethod"))) for d in fn.decorators
    ):
        params = params[1:]  # ``self`` (or ``cls``), which pytest does not fill
    _, body = split_docstring(recipe_statements(fn, session))
    scanned = scan(body)
    free = [
        n
        for n in dict.fromkeys(scanned.used)
        if n not in scanned.bound and n not in params
    ]
    imports: dict[str, list[str | None]] = {}
    module_names: list[str] = []
    for name in free:
        if name in bindings:
            binding = bindings[name]
            if binding is None:
                module_names.append(name)
            else:
                imports[name] = list(binding)
    if strings is None:
        strings = string_constants(module) if module_names else {}
    constants = {n: strings[n] for n in module_names if n in strings}
    source = code(fn.with_changes(leading_lines=[]), module)
    registered = registered_name(fn)
    returns, returns_imports = _portable_annotation(fn, bindings, module)
    return Fixture(
        name=registered,
        function=fn.name.value if registered != fn.name.value else None,
        rel=rel,
        line=lines.start(fn) or 0,
        params=params,
        source=source,
        autouse=any(matches(d, AUTOUSE_DECORATOR) for d in fn.decorators),
        yields=scanned.yields,
        imports=imports,
        module_names=module_names,
        returns=returns,
        returns_imports=returns_imports,
        constants=constants,
    )


def _portable_annotation(
    fn: cst.FunctionDef, bindings: dict[str, Any], module: cst.Module
) -> tuple[str | None, dict[str, list[str | None]]]:
    """``fn``'s return annotation as code another module can write, with the imports it
    needs there: every name it reads is a builtin or imported in ``fn``'s module. (None,
    {}) when it has none, or reads a name its module defines, or is a string."""
    if fn.returns is None:
        return None, {}
    annotation = fn.returns.annotation
    if findall(annotation, m.SimpleString() | m.ConcatenatedString() | m.FormattedString()):
        return None, {}
    imports: dict[str, list[str | None]] = {}
    for name in dict.fromkeys(scan([cst.Expr(annotation)]).used):
        binding = bindings.get(name)
        if binding is not None:
            imports[name] = list(binding)
        elif name in bindings or name not in _BUILTIN_NAMES:
            return None, {}
    return code(annotation, module), imports


def string_constants(module: cst.Module) -> dict[str, str]:
    """The names ``module`` binds once, at its top level, to a string literal
    (``TEST_URL = "sqlite://"``): name -> the string."""
    found: dict[str, str | None] = {}
    for stmt in module.body:
        value = None
        if matches(
            stmt,
            m.SimpleStatementLine(
                body=[m.Assign(targets=[m.AssignTarget(target=m.Name())]) | m.AnnAssign(target=m.Name())]
            ),
        ):
            small = cst.ensure_type(stmt, cst.SimpleStatementLine).body[0]
            value = _string(small.value) if small.value is not None else None  # type: ignore[union-attr]
        for name in scan([stmt], own_scope=True).bound:
            found[name] = value if name not in found else None
    return {n: v for n, v in found.items() if v is not None}


class _Classifier:
    def __init__(
        self,
        project: Project,
        graph: FixtureGraph,
        managers: ManagerGraph | None,
        parsed: dict[str, cst.Module],
        local: bool = False,
    ) -> None:
        #: classifying the fixtures of a test module only: those it requests from the
        #: conftests are classified already (as recorded, when phase 4 removed them)
        self.local = local
        self.project = project
        self.config = project.config
        self.graph = graph
        self.managers = managers
        self.parsed = parsed
        self._done: set[int] = set()
        self._busy: set[int] = set()
        self._imports: dict[str, dict[str, str]] = {}
        factory_classes = managers.factory_managers() if managers is not None else []
        self._factory_classes = {c.qualified: c for c in factory_classes}
        self._classes_by_name: dict[str, list[str]] = {}
        if managers is not None:
            for cls in managers.subclasses():
                self._classes_by_name.setdefault(cls.name, []).append(cls.qualified)

    def _dep(self, name: str, fixture: Fixture) -> Fixture | None:
        if self.local:
            dep = self.graph.resolve(name, fixture.rel)
        else:
            dep = self.graph.resolve_current(name, fixture.rel)
        if dep is fixture:
            return None
        if dep is not None and (
            not self.local or self.graph.fixtures.get(fixture.rel, {}).get(name) is dep
        ):
            self.kind(dep)
        return dep

    def kind(self, fixture: Fixture) -> str:
        key = id(fixture)
        if key in self._done or key in self._busy:
            return fixture.kind
        self._busy.add(key)
        try:
            fixture.kind = self._classify(fixture)
        finally:
            self._busy.discard(key)
            self._done.add(key)
        return fixture.kind

    def _empties_own_state(self, fixture: Fixture, fn: cst.FunctionDef) -> bool:
        """Whether ``fn`` yields a manager it builds (``manager = CourseManager(db)``) and
        its teardown only empties containers that manager got for itself in its
        ``__init__`` (``manager._by_id.clear()``, ``manager._by_id = {}``): state of that
        one instance, which no test sees once it is over."""
        if self.managers is None:
            return False
        _, body = split_docstring(statements(fn))
        at = _yield_statement(body)
        if at is None or at == len(body) - 1:
            return False
        line = cst.ensure_type(body[at], cst.SimpleStatementLine)
        value = cst.ensure_type(cst.ensure_type(line.body[0], cst.Expr).value, cst.Yield).value
        if not isinstance(value, cst.Name):
            return False
        built = returned_expression(
            [*body[:at], cst.SimpleStatementLine(body=[cst.Return(value=value)])]
        )
        manager = self._manager_class(fixture, built) if built is not value else None
        if manager is None:
            return False
        state = self.managers.own_state(self.managers.classes[manager])
        own = m.Attribute(
            value=m.Name(value.value), attr=m.Name(m.MatchIfTrue(lambda a: a in state))
        )
        emptying = m.Expr(m.Call(func=m.Attribute(value=own, attr=m.Name("clear")), args=[])) | m.Assign(
            targets=[m.AssignTarget(own)], value=FRESH_CONTAINER
        )
        return all(
            isinstance(stmt, cst.SimpleStatementLine)
            and all(matches(small, emptying) for small in stmt.body)
            for stmt in body[at + 1 :]
        )

    def _manager_class(self, fixture: Fixture, expr: cst.BaseExpression) -> str | None:
        """The qualified manager class ``expr`` (a call) instantiates, if any."""
        if not isinstance(expr, cst.Call) or self.managers is None:
            return None
        dotted = get_full_name_for_node(expr.func)
        if dotted is None:
            return None
        rel = fixture.rel
        if rel not in self._imports:
            self._imports[rel] = import_map(
                self.parsed[rel], self.project.module_name(rel), rel
            )
        origin = resolve_local(
            dotted, self._imports[rel], self.project.module_name(rel), []
        )
        candidates = self._classes_by_name.get(dotted.split(".")[-1], [])
        if origin is not None and origin in self.managers.classes:
            return origin
        if isinstance(expr.func, cst.Attribute):
            # ``Manager.for_session(db_session)``: another constructor of the manager
            owner = self._manager_class(fixture, expr.with_changes(func=expr.func.value))
            if owner is not None and self.managers.alternate_constructor(
                self.managers.classes[owner], expr.func.attr.value
            ) is not None:
                return owner
        if origin is not None:
            # a re-export (``from sologm.core import GameManager``): match by class name
            for qualified in candidates:
                if qualified.rsplit(".", 1)[-1] == origin.rsplit(".", 1)[-1]:
                    return qualified
        return None

    def _as_construction(self, call: cst.Call, manager: str) -> cst.Call | None:
        """``Manager.name(x)`` as the ``Manager(session=x)`` it is when ``name`` builds
        nothing but that (:func:`plain_alternate_constructor`); None otherwise."""
        graph = self.managers
        func = cst.ensure_type(call.func, cst.Attribute)
        if graph is None or not plain_alternate_constructor(
            graph, graph.classes[manager], func.attr.value
        ):
            return None
        if len(call.args) != 1 or call.args[0].star:
            return None
        session = self.config.session_variable
        arg = call.args[0]
        if arg.keyword is not None and arg.keyword.value != session:
            return None
        return call.with_changes(
            func=func.value,
            args=[cst.Arg(keyword=cst.Name(session), value=arg.value)],
        )

    def _factory_overrides(
        self,
        fixture: Fixture,
        call: cst.Call,
        deps: dict[str, Fixture | None],
        manager: str,
    ) -> dict[str, str] | None:
        """keyword -> fixture parameter, when ``create_all_managers(session, keyword=...)``
        builds what the fixture builds: every argument of its one call is one of its
        parameters, each handed to the constructor parameter the factory fills with it (the
        session fixture to the session, a plain manager fixture to the parameter that takes
        that manager, any other fixture to a parameter the factory takes as a keyword), and
        every parameter is used so (empty: ``create_all_managers(session)`` does). None
        when it does not (an argument that is an expression, a fixture given to a
        parameter the factory does not take, a manager parameter the factory fills and the
        fixture leaves to its default)."""
        graph = self.managers
        if graph is None:
            return None
        overrides = graph.factory_overrides()
        cls = graph.classes[manager]
        params = [
            p for p in graph.init_params(cls) if p.kind not in ("star", "starstar")
        ]
        by_name = {p.name: p for p in params}
        positional = [p for p in params if p.kind in ("posonly", "positional")]
        found: dict[str, str] = {}
        used: set[str] = set()
        filled: set[str] = set()  # constructor parameters the call passes
        for index, arg in enumerate(call.args):
            if arg.star:
                return None
            if arg.keyword is not None:
                param = by_name.get(arg.keyword.value)
            elif index < len(positional):
                param = positional[index]
            else:
                return None
            value = arg.value
            if (
                param is None
                or not isinstance(value, cst.Name)
                or value.value not in fixture.params
                or value.value in used
            ):
                return None
            used.add(value.value)
            filled.add(param.name)
            dep = deps.get(value.value)
            if dep is not None and dep.kind == SESSION:
                if param.name != self.config.session_variable:
                    return None
            elif dep is not None and dep.kind == MANAGER and dep.plain_manager:
                if param.dependency is None or param.dependency != dep.manager_class:
                    return None
            elif dep is not None and dep.kind == MANAGER and dep.factory_overrides:
                # a manager the factory builds when handed what that fixture injected: so
                # does this one, handed the same (the test requests those fixtures)
                if param.dependency is None or param.dependency != dep.manager_class:
                    return None
                for keyword, source in dep.factory_overrides.items():
                    if found.setdefault(keyword, source) != source:
                        return None
            elif (
                (manager, param.name) in overrides
                and dep is not None
                and dep.kind == PLAIN
                and not dep.autouse
            ):
                found[overrides[manager, param.name]] = value.value
            else:
                return None
        if used != set(fixture.params):
            return None
        # the factory hands every manager it builds to the parameters that take it: a fixture
        # that leaves one out builds a manager that creates that one itself, lazily
        built = {c.qualified for c in graph.factory_managers()}
        if any(p.dependency in built and p.name not in filled for p in params):
            return None
        return found

    def _calls_application(
        self, fixture: Fixture, inner: cst.FunctionDef | cst.Lambda
    ) -> bool:
        package = self.config.package_dotted
        called = set()
        for call in findall(inner.body, m.Call()):
            call = cst.ensure_type(call, cst.Call)
            root = call.func
            while isinstance(root, (cst.Attribute, cst.Call)):
                root = root.value if isinstance(root, cst.Attribute) else root.func
            if isinstance(root, cst.Name):
                called.add(root.value)
            # the application handed to what runs it (``runner.invoke(cli, args)``)
            called.update(a.value.value for a in call.args if isinstance(a.value, cst.Name))
        for name in called:
            binding = fixture.imports.get(name)
            if binding and (
                binding[0] == package or str(binding[0]).startswith(package + ".")
            ):
                return True
        return False

    def _serves_application(
        self, fixture: Fixture, body: Sequence[cst.BaseStatement]
    ) -> bool:
        """Whether the fixture returns (or yields) the application, or what drives it (a web
        framework's test client, ``app.test_client()``): a value built by a function of the
        package whose module builds managers or opens session contexts (``create_app``), or
        built on another fixture that is such a value. Code a test runs through it opens
        sessions of its own."""
        if body and matches(
            body[-1], m.SimpleStatementLine(body=[m.Expr(m.Yield(value=m.DoNotCare()))])
        ):
            value = cst.ensure_type(body[-1], cst.SimpleStatementLine).body[0].value  # type: ignore[attr-defined]
            body = [*body[:-1], cst.SimpleStatementLine(body=[cst.Return(value=value.value)])]
        value = returned_expression(body)
        if not isinstance(value, (cst.Call, cst.Attribute)):
            return False
        root = chain_root(value)
        if not isinstance(root, cst.Name):
            return False
        if root.value in fixture.params:
            dep = self._dep(root.value, fixture)
            return dep is not None and dep.kind == PLAIN and dep.runs_app
        binding = fixture.imports.get(root.value)
        package = self.config.package_dotted
        if not binding or not (
            binding[0] == package or str(binding[0]).startswith(package + ".")
        ):
            return False
        rel = self.project.module_file(str(binding[0]))
        if rel is None:
            return False
        session_module = self.config.session_module_name
        classes = self.managers.subclasses() if self.managers else []
        # an import of the session module names its last part, one of a manager its class
        if not self.project.grep(
            [rel], session_module.rsplit(".", 1)[-1], *(c.name for c in classes)
        ):
            return False
        try:
            tree = self.project.parse(rel)
        except InputError:
            return False
        origins = set(import_map(tree, self.project.module_name(rel), rel).values())
        managers = {c.qualified for c in classes}
        return any(
            o in managers or o == session_module or o.startswith(session_module + ".")
            for o in origins
        )

    def _classify(self, fixture: Fixture) -> str:
        config = self.config
        if fixture.name == config.session_fixture:
            return SESSION
        if fixture.name == config.session_context_fixture:
            return SESSION_CONTEXT
        fn = fixture.node()
        if fixture.yields and self._empties_own_state(fixture, fn):
            fixture.yields = False
            fixture.state_teardown = True
        _, body = split_docstring(
            recipe_statements(fn, config.session_fixture, drop_teardown=fixture.state_teardown)
        )
        deps = {p: self._dep(p, fixture) for p in fixture.params}
        dep_kinds = {p: (d.kind if d is not None else None) for p, d in deps.items()}
        touches_db = any(k in DB_KINDS for k in dep_kinds.values())

        # ---- manager: returns ``SomeManager(...)`` (directly or through one local)
        returned = returned_expression(body)
        if fixture.yields and returned is None:
            # one that yields its manager and then only does database work, on a database
            # that lives only for the test, builds what its recipe up to the yield builds
            trimmed = split_docstring(
                recipe_statements(fn, config.session_fixture, drop_teardown=True)
            )[1]
            built = returned_expression(trimmed)
            if (
                built is not None
                and self._manager_class(fixture, built) is not None
                and database_only_teardown(fixture, dep_kinds)
                and database_per_test(self.graph, fixture.rel, config)
            ):
                fixture.yields = False
                fixture.database_teardown = True
                body, returned = trimmed, built
        manager = (
            self._manager_class(fixture, returned) if returned is not None else None
        )
        if manager is not None and not fixture.yields:
            cls = self.managers.classes[manager] if self.managers is not None else None
            fixture.manager_class = manager
            fixture.manager_short = cls.short if cls is not None else None
            # ``return M(...)``, or ``m = M(...)`` then ``return m``
            simple = isinstance(returned, cst.Call) and (
                len(body) == 1
                or (
                    len(body) == 2
                    and matches(
                        body[0],
                        m.SimpleStatementLine(
                            body=[m.Assign(targets=[m.AssignTarget(target=m.Name())])]
                        ),
                    )
                    and cst.ensure_type(body[0], cst.SimpleStatementLine).body[0].value  # type: ignore[attr-defined]
                    is returned
                )
            )
            if simple and isinstance(cst.ensure_type(returned, cst.Call).func, cst.Attribute):
                # another constructor stands for ``Manager(session=...)`` when that is all
                # it builds (:func:`plain_alternate_constructor`), else for nothing simple
                returned = self._as_construction(cst.ensure_type(returned, cst.Call), manager)
                simple = returned is not None
            plain_params = all(
                k in (SESSION, MANAGER) for k in dep_kinds.values()
            ) and all(
                deps[p] is None or deps[p].kind != MANAGER or deps[p].plain_manager
                for p in deps
            )
            by_factory = (
                self._factory_overrides(
                    fixture, cst.ensure_type(returned, cst.Call), deps, manager
                )
                if simple and manager in self._factory_classes
                else None
            )
            fixture.plain_manager = bool(plain_params and by_factory == {})
            if not fixture.plain_manager:
                fixture.factory_overrides = by_factory or {}
                fixture.problem = _recipe_problem(fixture, body, dep_kinds)
            return MANAGER

        # ---- factory: ``create_test_*`` returning an inner closure
        inner = returned_closure(body)
        if fixture.name.startswith(config.factory_fixture_prefix) and inner is not None:
            first = positional_params(inner)[:1]
            fixture.new_style = first == [config.session_variable] and not any(
                k in (SESSION, MANAGER) for k in dep_kinds.values()
            )
            if touches_db or fixture.new_style:
                rebuilt = {
                    p
                    for p, d in deps.items()
                    if d is not None
                    and (
                        (
                            hands_factory(d, self.managers)
                            and all(
                                self._dep(source, fixture) is self._dep(source, d)
                                for source in d.factory_overrides.values()
                            )
                        )
                        or manager_rebuild(
                            d, lambda q, d=d: self._dep(q, d), fixture.rel
                        )
                        is not None
                    )
                }
                fixture.problem = _factory_problem(fixture, body, inner, deps, rebuilt)
                if fixture.problem is None and not fixture.new_style:
                    fixture.problem = _inner_binding_problem(inner, config)
                return FACTORY
        if not touches_db:
            # the function it returns: an inner function, or a lambda
            runner = inner if inner is not None else returned_expression(body)
            if isinstance(runner, (cst.FunctionDef, cst.Lambda)):
                fixture.runs_app = self._calls_application(fixture, runner)
            else:
                fixture.runs_app = self._serves_application(fixture, body)
            return PLAIN
        if is_session_helper(fixture.node(), dep_kinds.values(), config):
            return PLAIN
        if fixture.yields:
            if not (
                database_only_teardown(fixture, dep_kinds)
                and database_per_test(self.graph, fixture.rel, config)
            ):
                fixture.problem = "yields (a teardown phase 5 cannot inline)"
                return DB_OTHER
            fixture.yields = False
            fixture.database_teardown = True
            _, body = split_docstring(
                recipe_statements(fn, config.session_fixture, drop_teardown=True)
            )
        if fixture.autouse:
            fixture.problem = "is autouse (every test would need its recipe)"
            return DB_OTHER
        if inner is not None:
            fixture.problem = "returns a function that uses the session"
            return DB_OTHER
        bad = [p for p, k in dep_kinds.items() if k == DB_OTHER]
        if bad:
            fixture.problem = f"depends on {', '.join(repr(b) for b in bad)}, which the tool does not rewrite"
            return DB_OTHER
        fixture.problem = _recipe_problem(fixture, body, dep_kinds)
        return OBJECT


def is_session_helper(
    fn: cst.FunctionDef, dep_kinds: Iterable[str | None], config: Config
) -> bool:
    """Whether a fixture is a helper in the new style (as phase 5 writes them): it requests
    only factory fixtures and plain ones (``dep_kinds``: their kinds; such helpers are plain)
    and returns a function that takes the session first. A test asking for it is in the new
    style."""
    inner = returned_closure(split_docstring(statements(fn))[1])
    return (
        inner is not None
        and positional_params(inner)[:1] == [config.session_variable]
        and all(k in (FACTORY, PLAIN) for k in dep_kinds)
    )


def returned_expression(
    body: Sequence[cst.BaseStatement],
) -> cst.BaseExpression | None:
    """``return X(...)`` or ``x = X(...) ... return x``: the value returned, resolved once."""
    if not body or not matches(
        body[-1], m.SimpleStatementLine(body=[m.Return(value=m.DoNotCare())])
    ):
        return None
    value = cst.ensure_type(body[-1], cst.SimpleStatementLine).body[0].value  # type: ignore[attr-defined]
    if isinstance(value, cst.Name):
        for stmt in body[:-1]:
            if matches(
                stmt,
                m.SimpleStatementLine(
                    body=[
                        m.Assign(targets=[m.AssignTarget(target=m.Name(value.value))])
                    ]
                ),
            ):
                return cst.ensure_type(stmt, cst.SimpleStatementLine).body[0].value  # type: ignore[attr-defined]
    return value


def returned_closure(body: Sequence[cst.BaseStatement]) -> cst.FunctionDef | None:
    """The inner function a fixture returns (``def _create(...): ...; return _create``)."""
    if not body or not matches(
        body[-1], m.SimpleStatementLine(body=[m.Return(value=m.Name())])
    ):
        return None
    name = cst.ensure_type(body[-1], cst.SimpleStatementLine).body[0].value.value  # type: ignore[attr-defined]
    for stmt in body[:-1]:
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value == name:
            return stmt
    return None


# ---- what a factory's callers may leave out: the literal defaults of its inner function

_LITERALS = (
    cst.SimpleString,
    cst.ConcatenatedString,
    cst.Integer,
    cst.Float,
    cst.Imaginary,
)


def literal_value(expr: cst.BaseExpression) -> tuple[type, Any] | None:
    """The value of a literal (a string, a number, possibly negated, ``True``, ``False``,
    ``None``) tagged with its type, so that ``True`` does not equal ``1``; None when ``expr``
    is anything else (an f-string, a name, a call...)."""
    node = expr
    if isinstance(node, cst.UnaryOperation) and isinstance(
        node.operator, (cst.Minus, cst.Plus)
    ):
        node = node.expression
        if not isinstance(node, (cst.Integer, cst.Float, cst.Imaginary)):
            return None
    elif isinstance(node, cst.Name):
        if node.value not in ("True", "False", "None"):
            return None
    elif not isinstance(node, _LITERALS) or findall(node, m.FormattedString()):
        return None
    try:
        value = ast.literal_eval(code(expr).strip())
    except (ValueError, SyntaxError, TypeError):
        return None
    return type(value), value


def holds_no_session_object(
    expr: cst.BaseExpression, imports: dict[str, str], own: Container[str]
) -> bool:
    """Whether the value of ``expr``, computed inside a session context and returned from it,
    cannot carry an object of that session out of it once the context closes: a literal, a
    tuple of such values, or what a function of another library builds (``jsonify(...)``,
    ``json.dumps(...)``: its own objects, whatever it was given); ``imports`` is the module's
    local name -> dotted origin, ``own`` the project's top-level module names."""
    if literal_value(expr) is not None or isinstance(expr, cst.FormattedString):
        return True
    if isinstance(expr, cst.Tuple):
        return all(holds_no_session_object(e.value, imports, own) for e in expr.elements)
    if isinstance(expr, cst.Call):
        root = chain_root(expr.func, through_calls=False)
        if isinstance(root, cst.Name) and root.value in imports:
            return imports[root.value].split(".")[0] not in own
    return False


@dataclass(frozen=True)
class FactoryDefaults:
    """The parameters of a factory fixture's inner function that its callers fill, after
    the session: ``positional`` in order (a call's arguments after the session map onto
    them), ``keywords`` those a call may name, ``defaults`` the literal default of each
    parameter that has one (:func:`literal_value`)."""

    positional: tuple[str, ...]
    keywords: frozenset[str]
    defaults: dict[str, tuple[type, Any]]

    def droppable(self, args: Sequence[cst.Arg]) -> set[int]:
        """Indexes of ``args`` (a call's arguments after the session) equal to the defaults
        they stand for: keyword ones anywhere, positional ones at the end of the positional
        run. None with ``*``/``**`` arguments (what they fill cannot be told)."""
        if any(a.star for a in args):
            return set()
        out: set[int] = set()
        positional = [i for i, a in enumerate(args) if a.keyword is None]
        for i, arg in enumerate(args):
            if arg.keyword is not None and arg.keyword.value in self.keywords:
                default = self.defaults.get(arg.keyword.value)
                if default is not None and literal_value(arg.value) == default:
                    out.add(i)
        for place in reversed(range(len(positional))):
            i = positional[place]
            if place >= len(self.positional):
                break
            default = self.defaults.get(self.positional[place])
            if default is None or literal_value(args[i].value) != default:
                break
            out.add(i)
        return out


def factory_defaults(fixture: Fixture, session_variable: str) -> FactoryDefaults | None:
    """What :class:`FactoryDefaults` a factory fixture's inner function declares (its
    ``session`` parameter, when it takes one first, is not among them); None when the
    fixture returns no inner function."""
    _, body = split_docstring(recipe_statements(fixture.node()))
    inner = returned_closure(body)
    if inner is None:
        return None
    p = inner.params
    positional = [*p.posonly_params, *p.params]
    if positional and positional[0].name.value == session_variable:
        positional = positional[1:]
    defaults: dict[str, tuple[type, Any]] = {}
    for param in (*positional, *p.kwonly_params):
        value = literal_value(param.default) if param.default is not None else None
        if value is not None:
            defaults[param.name.value] = value
    return FactoryDefaults(
        positional=tuple(q.name.value for q in positional),
        keywords=frozenset(q.name.value for q in (*p.params, *p.kwonly_params))
        - {session_variable},
        defaults=defaults,
    )


def _recipe_problem(
    fixture: Fixture,
    body: Sequence[cst.BaseStatement],
    dep_kinds: dict[str, str | None],
) -> str | None:
    """Why the fixture's body cannot be inlined into a test (None: it can)."""
    if fixture.yields:
        return "yields (a teardown phase 5 cannot inline)"
    if "request" in fixture.params:
        return "uses 'request' (parametrized or introspecting fixture)"
    if not body or not matches(
        body[-1], m.SimpleStatementLine(body=[m.Return(value=m.DoNotCare())])
    ):
        return "does not end with 'return <value>'"
    returns = scan(body).returns
    if len(returns) != 1:
        return "returns from more than one place"
    if findall(cst.Module(body=list(body)), m.Global() | m.Nonlocal()):
        return "uses global/nonlocal"
    return None


def hands_factory(fixture: Fixture, managers: ManagerGraph | None) -> bool:
    """Whether ``create_all_managers(session, keyword=...)`` builds what the manager fixture
    builds, handed what the fixture injected (its ``factory_overrides``: a mock client, or
    what a manager fixture it passes on injected), with keywords the generated factory
    takes (``ManagerGraph.factory_overrides``): step 4.4 then uses ``managers.<short>`` in a
    factory fixture that requested it, and hands the factory the same fixtures."""
    if fixture.kind != MANAGER or fixture.plain_manager or not fixture.factory_overrides:
        return False
    if managers is None:
        return False
    return set(fixture.factory_overrides) <= set(managers.factory_overrides().values())


def manager_rebuild(
    fixture: Fixture, resolve: Callable[[str], Fixture | None], into: str
) -> cst.Call | None:
    """The call that builds the manager of a manager fixture ``create_all_managers`` cannot
    stand for (it leaves out a dependency the factory would wire, say), for step 4.4 to
    repeat inside a factory fixture's inner function, on the inner function's session:
    the fixture's ``return Manager(...)``, alone in its body, when every parameter of the
    fixture (``resolve`` finds what it is) is the session fixture, a manager fixture that
    ``create_all_managers`` stands for, a manager fixture that is rebuilt the same way
    (:func:`manager_rebuilds`) or a fixture that does not touch the database (a mock
    client, which the factory fixture requests in its place), and every argument is one of
    them by name, and the call reads no name the fixture's module defines unless ``into``
    (the module it is to be repeated in) is that module; None otherwise."""
    chain = manager_rebuilds(fixture, resolve, into)
    return chain[-1][1] if chain else None


def manager_rebuilds(
    fixture: Fixture,
    resolve: Callable[[str], Fixture | None],
    into: str,
    seen: frozenset[str] = frozenset(),
) -> list[tuple[Fixture, cst.Call]] | None:
    """What :func:`manager_rebuild` repeats, in order: the constructions of the manager
    fixtures the fixture requests that are rebuilt too (each before what uses it), then
    the fixture's own; None when one of them cannot be rebuilt."""
    if fixture.kind != MANAGER or fixture.plain_manager or fixture.yields:
        return None
    if fixture.name in seen:
        return None
    _, body = split_docstring(recipe_statements(fixture.node()))
    returned = returned_expression(body) if len(body) == 1 else None
    if not isinstance(returned, cst.Call):
        return None
    chain: list[tuple[Fixture, cst.Call]] = []
    for param in fixture.params:
        dep = resolve(param)
        if dep is None:
            return None
        if dep.kind == SESSION or (dep.kind == MANAGER and dep.plain_manager):
            continue
        if dep.kind == PLAIN and not dep.yields and dep.name == param:
            continue  # handed as it was: the factory fixture requests it
        if dep.kind != MANAGER or dep.name != param:
            return None
        inner = manager_rebuilds(dep, resolve, into, seen | {fixture.name})
        if inner is None:
            return None
        chain.extend(item for item in inner if all(item[0] is not f for f, _ in chain))
    for arg in returned.args:
        if arg.star or not (
            isinstance(arg.value, cst.Name) and arg.value.value in fixture.params
        ):
            return None
    if into != fixture.rel and set(fixture.module_names) & set(scan([returned]).used):
        return None
    return [*chain, (fixture, returned)]


def omits_session(
    fixture: Fixture,
    call: cst.Call,
    resolve: Callable[[str], Fixture | None],
    session_name: str,
) -> bool:
    """Whether a manager fixture's construction ``call`` passes no session: no argument is
    one of the fixture's parameters that ``resolve`` finds to be the session fixture, and
    none is the keyword ``session_name`` (the manager used to fetch a session itself)."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == session_name:
            return False
        if isinstance(arg.value, cst.Name) and arg.value.value in fixture.params:
            dep = resolve(arg.value.value)
            if dep is not None and dep.kind == SESSION:
                return False
    return True


def _factory_problem(
    fixture: Fixture,
    body: Sequence[cst.BaseStatement],
    inner: cst.FunctionDef,
    deps: dict[str, Fixture | None],
    rebuilt: Container[str] = (),
) -> str | None:
    if fixture.yields:
        return "yields"
    extra = [s for s in body[:-1] if s is not inner]
    dropped = {
        name
        for name, dep in deps.items()
        if dep is not None and dep.kind in (SESSION, MANAGER)
    }
    # statements besides the inner function stay in the fixture, so they must not read a
    # fixture the rewrite drops
    read = sorted(dropped & set(scan(extra).used)) if extra else []
    if read:
        return f"has statements besides its inner function that use {', '.join(map(repr, read))}"
    for name, dep in deps.items():
        if dep is None:
            continue
        if dep.kind == MANAGER and not dep.plain_manager and name not in rebuilt:
            return f"uses manager fixture {name!r}, which create_all_managers cannot stand for"
        if dep.kind in (OBJECT, DB_OTHER):
            return f"depends on {dep.kind.replace('_', ' ')} fixture {name!r}"
    return None


def _inner_binding_problem(inner: cst.FunctionDef, config: Config) -> str | None:
    """Why step 4.4 cannot give the inner function a ``session`` parameter and a
    ``managers`` local: it (or a function nested in it) binds one of those names already,
    or it reads ``managers`` from elsewhere."""
    found = scan([inner])
    session = config.session_variable
    # ``session`` as the inner function's first parameter is the plan's shape already
    takes_session = positional_params(inner)[:1] == [session]
    if session in (scan([inner.body]).bound if takes_session else found.bound):
        return f"has an inner function that already binds {session!r}"
    if config.managers_variable in found.bound | set(found.used):
        return f"has an inner function that already uses {config.managers_variable!r}"
    return None


# ------------------------------------------------------------------------------- models


def relationship_kinds(project: Project) -> dict[str, set[str]]:
    """Relationship attribute name -> kinds, from every model class in the package.

    ``Mapped[List[X]]`` / ``Mapped[list[X]]`` / ``Mapped[Set[X]]`` or ``uselist=True``: a
    collection; ``uselist=False`` or ``Mapped[X]`` / ``Mapped[Optional[X]]``: a scalar; a
    ``relationship()`` with neither: unknown (SQLAlchemy decides from the foreign keys).

    A function of the configuration and of the files that mention ``relationship(``: kept
    in ``project.memo`` with their contents, so that phases 4 and 5 (which change only
    tests) share one answer, which nothing changes.
    """
    config = project.config
    package = config.package_dir.rstrip("/") + "/"
    files = [
        rel
        for rel in project.python_files()
        if rel.startswith(package)
        and not is_test_module(project, rel)
        and PurePosixPath(rel).name != "conftest.py"
    ]
    models = project.grep(files, "relationship(")
    keys = sorted(set(models) | set(project.grep(files, "ForeignKey(")))
    key = (config, tuple((rel, project.read_bytes(rel)) for rel in keys))
    memo = project.memo.setdefault("relationship kinds", {})
    assert isinstance(memo, dict)
    if key not in memo:
        memo[key] = _relationship_kinds(project, models, keys)
    return memo[key]


def _relationship_kinds(
    project: Project, models: list[str], tables: list[str]
) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    relationship_call = m.Call(
        func=m.Name("relationship") | m.Attribute(attr=m.Name("relationship"))
    )
    references = _foreign_keys([project.parse(rel) for rel in tables])
    for rel in models:
        module = project.parse(rel)
        for cls in _classes(module.body):
            for stmt in cls.body.body:
                if not isinstance(stmt, cst.SimpleStatementLine):
                    continue
                for small in stmt.body:
                    target: cst.BaseExpression | None = None
                    annotation: cst.BaseExpression | None = None
                    value: cst.BaseExpression | None = None
                    if isinstance(small, cst.AnnAssign):
                        target, annotation, value = (
                            small.target,
                            small.annotation.annotation,
                            small.value,
                        )
                    elif isinstance(small, cst.Assign) and len(small.targets) == 1:
                        target, value = small.targets[0].target, small.value
                    if (
                        not isinstance(target, cst.Name)
                        or value is None
                        or not matches(value, relationship_call)
                    ):
                        continue
                    call = cst.ensure_type(value, cst.Call)
                    kind = _relationship_kind(call, annotation)
                    if kind == "unknown":
                        kind = _kind_from_foreign_keys(cls.name.value, call, references)
                    out.setdefault(target.value, set()).add(kind)
    return out


def _foreign_keys(modules: Iterable[cst.Module]) -> dict[str, set[str] | None]:
    """Model class -> the model classes its columns hold a foreign key to (``ForeignKey(
    "table.column")`` with the table another class's ``__tablename__``, or ``ForeignKey(
    Class.column)``); None for a class whose table or keys are not spelled out so (no
    ``__tablename__`` string, a key in ``__table_args__``, a key to a table no class
    names)."""
    foreign_key = m.Call(func=m.Name("ForeignKey") | m.Attribute(attr=m.Name("ForeignKey")))
    tables: dict[str, str] = {}  # table -> class
    raw: dict[str, list[cst.BaseExpression] | None] = {}
    for module in modules:
        for cls in _classes(module.body):
            name = cls.name.value
            keys: list[cst.BaseExpression] | None = []
            for stmt in cls.body.body:
                if not isinstance(stmt, cst.SimpleStatementLine):
                    continue
                for small in stmt.body:
                    if not isinstance(small, (cst.Assign, cst.AnnAssign)) or small.value is None:
                        continue
                    targets = (
                        [t.target for t in small.targets]
                        if isinstance(small, cst.Assign)
                        else [small.target]
                    )
                    target_names = {t.value for t in targets if isinstance(t, cst.Name)}
                    if "__tablename__" in target_names:
                        value = small.value
                        if isinstance(value, cst.SimpleString) and isinstance(
                            value.evaluated_value, str
                        ):
                            tables[value.evaluated_value] = name
                    found = findall(small.value, foreign_key)
                    if "__table_args__" in target_names and found:
                        keys = None
                    elif keys is not None:
                        for call in found:
                            args = cst.ensure_type(call, cst.Call).args
                            if args:
                                keys.append(args[0].value)
            raw[name] = keys
    out: dict[str, set[str] | None] = {}
    for name, keys in raw.items():
        if keys is None:
            out[name] = None
            continue
        targets: set[str] | None = set()
        for key in keys:
            if isinstance(key, cst.SimpleString) and isinstance(key.evaluated_value, str):
                table = key.evaluated_value.rsplit(".", 1)[0]
                owner = tables.get(table) or tables.get(table.rsplit(".", 1)[-1])
            elif isinstance(key, cst.Attribute) and isinstance(key.value, cst.Name):
                owner = key.value.value
            else:
                owner = None
            if owner is None:
                targets = None
                break
            targets.add(owner)
        out[name] = targets
    return out


def _kind_from_foreign_keys(
    owner: str, call: cst.Call, references: dict[str, set[str] | None]
) -> str:
    """What SQLAlchemy makes of ``relationship()`` on class ``owner`` without ``uselist``
    or an annotation, decided as it decides it, from the foreign keys between the two
    tables: a ``secondary`` table, or a key on the other class's table only (one to many),
    is a collection; a key on the owner's table only (many to one) a scalar. Anything
    else (keys both ways, a self-reference, ``primaryjoin``/``foreign_keys``, a target
    given otherwise than by its class name) stays unknown."""
    keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    if "secondary" in keywords:
        return "collection"
    if keywords.keys() & {"primaryjoin", "foreign_keys", "remote_side"}:
        return "unknown"
    positional = [a.value for a in call.args if a.keyword is None and not a.star]
    first = positional[0] if positional else keywords.get("argument")
    if isinstance(first, cst.SimpleString) and isinstance(first.evaluated_value, str):
        other = first.evaluated_value.rsplit(".", 1)[-1]
    elif isinstance(first, cst.Name):
        other = first.value
    else:
        return "unknown"
    mine, theirs = references.get(owner), references.get(other)
    if other == owner or mine is None or theirs is None:
        return "unknown"
    if owner in theirs and other not in mine:
        return "collection"
    if other in mine and owner not in theirs:
        return "scalar"
    return "unknown"


def _classes(body: Sequence[cst.BaseStatement]) -> Iterator[cst.ClassDef]:
    """Class definitions among ``body``, nested classes and those under ``if``/``try``
    included (statements only: a walk of every expression is not needed to find them)."""
    for stmt in body:
        blocks: list[cst.BaseSuite] = []
        if isinstance(stmt, cst.ClassDef):
            yield stmt
            blocks.append(stmt.body)
        elif isinstance(stmt, cst.If):
            blocks.append(stmt.body)
            orelse: Any = stmt.orelse
            while orelse is not None:
                blocks.append(orelse.body)
                orelse = getattr(orelse, "orelse", None)
        elif isinstance(stmt, (cst.Try, cst.TryStar)):
            blocks.append(stmt.body)
            blocks.extend(h.body for h in stmt.handlers)
            blocks.extend(
                b.body for b in (stmt.orelse, stmt.finalbody) if b is not None
            )
        for block in blocks:
            if isinstance(block, cst.IndentedBlock):
                yield from _classes(block.body)


_COLLECTION_TYPES = re.compile(
    r"^(typing\.)?(List|list|Set|set|FrozenSet|Sequence|MutableSequence|Collection|Iterable|DynamicMapped|WriteOnlyMapped)\b"
)


def _relationship_kind(call: cst.Call, annotation: cst.BaseExpression | None) -> str:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "uselist":
            if matches(arg.value, m.Name("True")):
                return "collection"
            if matches(arg.value, m.Name("False")):
                return "scalar"
            return "unknown"
    if annotation is None:
        return "unknown"
    if isinstance(annotation, cst.SimpleString):  # "Mapped[List['X']]" as a string
        text = annotation.evaluated_value
        if isinstance(text, str):
            try:
                annotation = cst.parse_expression(text)
            except Exception:
                return "unknown"
    inner = annotation
    if matches(
        inner, m.Subscript(value=m.Name("Mapped") | m.Attribute(attr=m.Name("Mapped")))
    ):
        elements = cst.ensure_type(inner, cst.Subscript).slice
        if len(elements) != 1 or not isinstance(elements[0].slice, cst.Index):
            return "unknown"
        inner = elements[0].slice.value
    else:
        return "unknown"
    text = code(inner).strip()
    if text.startswith(("'", '"')):
        text = text.strip("'\"")
    if _COLLECTION_TYPES.match(text):
        return "collection"
    return "scalar"


# ------------------------------------------------------------------------------- analysis


def _managers(project: Project) -> ManagerGraph | None:
    try:
        return analyze_managers(project)
    except InputError:
        return None


def analyze_current(project: Project) -> FixtureAnalysis:
    """The graph of the conftests as they are now (no recorded state involved)."""
    managers = _managers(project)
    graph = build_graph(project, managers)
    return FixtureAnalysis(
        project.config,
        project.root,
        graph,
        managers,
        relationship_kinds(project),
        naming=pytest_naming(project),
        context_takes_manager=context_takes_database_manager(project),
    )


def is_old_style(graph: FixtureGraph) -> bool:
    return graph.count(REMOVED_KINDS) > 0


# ------------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class UnresolvedRequest:
    """A fixture request no definition answers: ``by`` (a fixture or test) at ``rel``."""

    rel: str
    by: str
    name: str
    from_test: bool

    def __str__(self) -> str:
        return f"{self.rel}: {self.by} requests fixture {self.name!r}, which nothing defines"


def unresolved_requests(project: Project) -> list[UnresolvedRequest]:
    """Every request of a fixture that no definition answers: the requests of the fixtures of
    every conftest (and what they pull in) and of every test and fixture of every test
    module. Fixtures of pytest itself count as defined; those of other plugins are not known
    here, so a caller compares two trees rather than reading one."""
    graph = build_graph(project, None, classify=False)
    out = [
        UnresolvedRequest(fixture.rel, fixture.name, name, False)
        for fixture in graph.all()
        for name in fixture.params
        if name not in BUILTIN_FIXTURES and not graph.serving(name, fixture)
    ]
    naming = pytest_naming(project)
    for rel in test_modules(project):
        module = project.parse(rel)
        fetches = b"getfixturevalue" in project.read_bytes(rel)
        functions = list(collected_functions(module.body))
        local = {registered_name(fn) for fn in functions if is_fixture(fn)}
        for fn in functions:
            test = is_test_function(fn, naming)
            if not (is_fixture(fn) or test):
                continue
            method = bool(fn.params.params) and fn.params.params[0].name.value == "self"
            for name in requested_names(fn, method, fetches):
                if name in BUILTIN_FIXTURES or (name in local and test):
                    continue
                if graph.resolve_current(name, rel) is None and name not in local:
                    out.append(UnresolvedRequest(rel, fn.name.value, name, test))
    return out


def collected_functions(body: Sequence[cst.CSTNode]) -> Iterator[cst.FunctionDef]:
    """The functions pytest can collect as tests or fixtures: those of the module and of its
    classes (nested ones too), not functions defined inside functions."""
    for stmt in body:
        if isinstance(stmt, cst.FunctionDef):
            yield stmt
        elif isinstance(stmt, cst.ClassDef) and isinstance(stmt.body, cst.IndentedBlock):
            yield from collected_functions(stmt.body.body)
