"""The fixture graph of a target's test suite, shared by phases 4 and 5.

Nothing here knows the target's fixture names. The analysis reads every ``conftest.py`` of
the target (and any module a conftest star-imports, followed transitively), keeps the last
definition of each fixture in a module (an earlier one is dead code: Python rebinds the name),
and classifies every fixture from its code, its parameters and the manager class hierarchy
(:mod:`codemods.managers`):

``session``          the fixture named ``Config.session_fixture`` (``db_session``)
``session_context``  the fixture named ``Config.session_context_fixture`` (kept)
``manager``          returns an instance of a manager class (``GameManager(session=...)``);
                     *plain* when ``create_all_managers`` builds the same thing (it takes
                     only the session and other managers), else a recipe phase 5 inlines
                     (a manager that receives a mock client)
``factory``          ``create_test_*`` returning an inner closure
``object``           builds data through managers, factories or the session and returns it:
                     phase 5 inlines its recipe into the tests that use it, phase 4 removes it
``db_other``         touches the session but fits none of the above (a yield fixture, a
                     helper closure over the session): reported with file:line, never guessed
``plain``            does not touch the session (mock clients, config, the autouse seeding
                     fixture that uses ``session_context``): kept as it is

The graph is JSON-serialisable: phase 4 records it in ``project.state["fixture_graph"]``
before it deletes the fixtures, and phase 5 falls back on that record for the names the
current conftests no longer define.

The module also holds the libcst helpers both phases share: the name rewriter (fixture
names to ``session`` / ``managers.<short>``, ``session`` added to factory calls), the cleaner
that drops ``merge`` and refreshes of relationship collections, and parameter-list editing
that keeps commas, trailing commas and comments in place.
"""

from __future__ import annotations

import ast
import builtins
import fnmatch
import functools
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

import libcst as cst
import libcst.matchers as m
from libcst.helpers import (
    get_absolute_module_from_package_for_import,
    get_full_name_for_node,
)

from codemods.base import run_helper, transform
from codemods import fastcst
from codemods.fastcst import ANY_CALL, ANY_NAME, clone, findall, holding, matches, walk
from codemods.managers import (
    ManagerGraph,
    analyze_managers,
    code,
    import_map,
    package_of,
    resolve_local,
)
from refactor_tool.config import Config
from refactor_tool.project import InputError, Project
from refactor_tool.statements import python_module, statement_lines, statement_texts

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

STATE_KEY = "fixture_graph"
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
_ONE_IMPORT_LINE = m.SimpleStatementLine(body=[m.Import() | m.ImportFrom(names=m.DoNotCare())])
_IMPORT_LINE = m.SimpleStatementLine(
    body=[m.ZeroOrMore(), m.Import() | m.ImportFrom(), m.ZeroOrMore()]
)
_STAR_IMPORT_LINE = m.SimpleStatementLine(body=[m.ImportFrom(names=m.ImportStar())])


# one matcher object per shape: matchers checked again and again are compiled once
# (codemods/fastcst.py ``matches``)
@functools.lru_cache(maxsize=64)
def _call_on(receiver: str, method: str) -> m.Call:
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


def statements(fn: cst.FunctionDef) -> list[cst.BaseStatement]:
    """The function's statements (a one-line ``def f(): return x`` made into a line)."""
    if isinstance(fn.body, cst.IndentedBlock):
        return list(fn.body.body)
    return [cst.SimpleStatementLine(body=list(fn.body.body))]


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


def is_test_module(rel: str, patterns: Sequence[str] = DEFAULT_TEST_FILES) -> bool:
    """A module pytest collects tests from (``python_files`` patterns, default pytest's)."""
    name = PurePosixPath(rel).name
    return name != "conftest.py" and any(fnmatch.fnmatch(name, p) for p in patterns)


def pytest_python_files(project: Project) -> tuple[str, ...]:
    """``python_files`` from the target's ``[tool.pytest.ini_options]`` (else the default)."""
    if not project.exists("pyproject.toml"):
        return DEFAULT_TEST_FILES
    try:
        data = tomllib.loads(project.read_text("pyproject.toml"))
    except ValueError:
        return DEFAULT_TEST_FILES
    value = (
        data.get("tool", {})
        .get("pytest", {})
        .get("ini_options", {})
        .get("python_files")
    )
    if isinstance(value, str):
        value = value.split()
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return DEFAULT_TEST_FILES


def is_test_function(node: cst.FunctionDef) -> bool:
    return node.name.value.startswith("test") and not is_fixture(node)


# ------------------------------------------------------------------------------- scanning


class _Scan(cst.CSTVisitor):
    """Names a piece of code reads and binds, and whether it yields or returns early.

    Nested functions and lambdas count for names (a closure reads the fixture's names) but
    not for ``yield``/``return`` (those belong to the nested function).
    """

    def __init__(self) -> None:
        self.used: list[str] = []
        self.bound: set[str] = set()
        self.yields = False
        self.returns: list[cst.Return] = []
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

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.bound.add(node.name.value)
        self._skip.add(node.name)
        self._depth += 1

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._depth -= 1

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._depth += 1

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self._depth -= 1

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.bound.add(node.name.value)
        self._skip.add(node.name)

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

    def visit_AsName(self, node: cst.AsName) -> None:
        self._bind(node.name)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._bind(node.target)

    def _bind(self, target: cst.CSTNode) -> None:
        for name in findall(target, ANY_NAME):
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


def scan(nodes: Iterable[cst.CSTNode]) -> _Scan:
    scanner = _Scan()
    for node in nodes:
        walk(node, scanner)
    return scanner


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
                            for name in findall(target.target, ANY_NAME):
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
    kind: str = PLAIN
    #: manager fixtures: the manager class and its short name in ``create_all_managers``
    manager_class: str | None = None
    manager_short: str | None = None
    plain_manager: bool = False
    #: factory fixtures already in the new style (inner function takes ``session`` first)
    new_style: bool = False
    #: names the recipe reads from its module: imported ones -> [module, obj, asname]
    imports: dict[str, list[str | None]] = field(default_factory=dict)
    #: names the recipe reads that its module defines itself (helpers, constants)
    module_names: list[str] = field(default_factory=list)
    #: why the tool will not rewrite it (reported with file:line), None if it will
    problem: str | None = None
    #: returns a closure that calls into the application (``run_cli``): the application
    #: opens its own SessionContext there, so a test's session may hold stale objects after
    runs_app: bool = False
    #: the function's own name when ``@pytest.fixture(name=...)`` registers it under
    #: another one (``name`` is the registered name, the one tests request)
    function: str | None = None

    @property
    def where(self) -> str:
        return f"{self.rel}:{self.line}"

    def node(self) -> cst.FunctionDef:
        """The definition as a libcst node (parsed from the recorded source, cached)."""
        cached = _NODE_CACHE.get(self.source)
        if cached is None:
            if len(_NODE_CACHE) > 4096:
                _NODE_CACHE.clear()
            cached = cst.ensure_type(cst.parse_statement(self.source), cst.FunctionDef)
            _NODE_CACHE[self.source] = cached
        return cached


_NODE_CACHE: dict[str, cst.FunctionDef] = {}
fastcst.content_cache(_NODE_CACHE.clear)


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

    def resolve_current(self, name: str, rel: str) -> Fixture | None:
        version = self._version()
        if self._memo.get("version") != version:
            self._memo.clear()
            self._memo["version"] = version
        key = ("visible-from", rel)
        table = self._memo.get(key)
        if table is None:
            table = {}
            for scope in reversed(self.scopes(rel)):
                table.update(self.visible(scope))
            self._memo[key] = table
        return table.get(name)

    def resolve(self, name: str, rel: str) -> Fixture | None:
        """The fixture ``name`` as a test or fixture at ``rel`` gets it (recorded as fallback)."""
        fixture = self.resolve_current(name, rel)
        if fixture is None and self.fallback is not None:
            fixture = self.fallback.resolve(name, rel)
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

    def attribute_kind(self, attr: str) -> str:
        kinds = self.relationships.get(attr)
        if not kinds:
            return "scalar"  # a column (or an attribute no model declares a relationship for)
        if kinds == {"collection"}:
            return "collection"
        if kinds == {"scalar"}:
            return "scalar"
        return "unknown"


# ------------------------------------------------------------------------------- building


_LINES = fastcst.TreeMemo()
_TEXTS = fastcst.TreeMemo()


def _texts(module: cst.Module, source: bytes) -> dict[int, str]:
    """Source text of each top-level statement (without its leading lines), sliced from
    ``source`` where libcst would print exactly that; missing ones are printed by the caller."""
    cached = _TEXTS.get(module)
    if cached is None:
        cached = _TEXTS.put(module, statement_texts(source, module) or {})
    return cached


def _line(module: cst.Module, node: cst.CSTNode, source: bytes | None = None) -> int:
    """1-based line of a top-level statement (its first decorator), without a metadata pass
    (read off Python's parser when the module's ``source`` is given, else printed)."""
    cached = _LINES.get(module)
    if cached is None and source is not None:
        found = statement_lines(source, module)
        if found is not None:
            cached = _LINES.put(module, found)
    if cached is None:
        lines: dict[int, int] = {}
        before = 1 + len(module.header)
        for stmt in module.body:
            # decorators start the definition; leading blank lines and comments do not
            lines[id(stmt)] = before + len(getattr(stmt, "leading_lines", ()))
            before += fastcst.code(stmt, module).count("\n")
        cached = _LINES.put(module, lines)
    return cached.get(id(node), 0)


line_of_statement = _line


def _module_for(project: Project, dotted: str) -> str | None:
    base = dotted.replace(".", "/")
    for candidate in (f"{base}.py", f"{base}/__init__.py"):
        if project.exists(candidate):
            return candidate
    return None


def _star_imports(
    project: Project, rel: str, module: cst.Module
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
        out.append((_module_for(project, dotted), dotted, _line(module, stmt, project.read_bytes(rel))))
    return out


def _plugin_modules(project: Project, module: cst.Module) -> list[tuple[str | None, str]]:
    """(relpath or None, dotted name) of the modules a module-level ``pytest_plugins``
    names (a string, or a list or tuple of strings): pytest loads their fixtures as if
    the conftest defined them, so the graph follows them like star imports."""
    out = []
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.Assign) and any(
                matches(t.target, m.Name("pytest_plugins")) for t in small.targets
            ):
                value = small.value
            elif isinstance(small, (cst.AnnAssign, cst.AugAssign)) and matches(
                small.target, m.Name("pytest_plugins")
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


def build_graph(project: Project, managers: ManagerGraph | None) -> FixtureGraph:
    """The fixture graph of the project's current conftests (and what they star-import)."""
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
        source = project.read_bytes(rel)
        parsed[rel] = module
        stars = []
        pulled = [(r, d) for r, d, _ in _star_imports(project, rel, module)]
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
        graph.fixtures[rel] = {}
        for name, nodes in defs.items():
            if len(nodes) > 1:
                fixture_module.dead[name] = [_line(module, n, source) for n in nodes[:-1]]
            fn = nodes[-1]
            graph.fixtures[rel][name] = _describe(module, rel, fn, bindings, source)
        graph.modules[rel] = fixture_module
    classifier = _Classifier(project, graph, managers, parsed)
    for fixture in graph.all():
        classifier.kind(fixture)
    return graph


def _describe(
    module: cst.Module,
    rel: str,
    fn: cst.FunctionDef,
    bindings: dict[str, Any],
    module_source: bytes | None = None,
) -> Fixture:
    params = positional_params(fn)
    _, body = split_docstring(statements(fn))
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
    bare = fn.with_changes(leading_lines=[])
    source = _texts(module, module_source).get(id(fn)) if module_source is not None else None
    if source is None:
        source = fastcst.code(bare, module)
    _NODE_CACHE.setdefault(source, bare)
    registered = registered_name(fn)
    return Fixture(
        name=registered,
        function=fn.name.value if registered != fn.name.value else None,
        rel=rel,
        line=_line(module, fn, module_source),
        params=params,
        source=source,
        autouse=any(matches(d, AUTOUSE_DECORATOR) for d in fn.decorators),
        yields=scanned.yields,
        imports=imports,
        module_names=module_names,
    )


class _Classifier:
    def __init__(
        self,
        project: Project,
        graph: FixtureGraph,
        managers: ManagerGraph | None,
        parsed: dict[str, cst.Module],
    ) -> None:
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
        dep = self.graph.resolve_current(name, fixture.rel)
        if dep is fixture:
            return None
        if dep is not None:
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
        if origin is not None:
            # a re-export (``from sologm.core import GameManager``): match by class name
            for qualified in candidates:
                if qualified.rsplit(".", 1)[-1] == origin.rsplit(".", 1)[-1]:
                    return qualified
        return None

    def _calls_application(self, fixture: Fixture, inner: cst.FunctionDef) -> bool:
        package = self.config.package_dotted
        called = set()
        for call in findall(inner.body, ANY_CALL):
            root = cst.ensure_type(call, cst.Call).func
            while isinstance(root, (cst.Attribute, cst.Call)):
                root = root.value if isinstance(root, cst.Attribute) else root.func
            if isinstance(root, cst.Name):
                called.add(root.value)
        for name in called:
            binding = fixture.imports.get(name)
            if binding and (
                binding[0] == package or str(binding[0]).startswith(package + ".")
            ):
                return True
        return False

    def _classify(self, fixture: Fixture) -> str:
        config = self.config
        if fixture.name == config.session_fixture:
            return SESSION
        if fixture.name == config.session_context_fixture:
            return SESSION_CONTEXT
        fn = fixture.node()
        _, body = split_docstring(statements(fn))
        deps = {p: self._dep(p, fixture) for p in fixture.params}
        dep_kinds = {p: (d.kind if d is not None else None) for p, d in deps.items()}
        touches_db = any(k in DB_KINDS for k in dep_kinds.values())
        if fixture.function is not None and (
            touches_db or self.config.session_fixture in fixture.params
        ):
            # phases 4 and 5 find definitions and recipes by the function's name
            fixture.problem = (
                f"is the function {fixture.function!r} registered with name="
                f"{fixture.name!r}, which the tool does not rewrite"
            )
            return DB_OTHER

        # ---- manager: returns ``SomeManager(...)`` (directly or through one local)
        returned = _returned_expression(body)
        manager = (
            self._manager_class(fixture, returned) if returned is not None else None
        )
        if manager is not None and not fixture.yields:
            cls = self.managers.classes[manager] if self.managers is not None else None
            fixture.manager_class = manager
            fixture.manager_short = cls.short if cls is not None else None
            simple = len(body) == 1 and isinstance(returned, cst.Call)
            plain_params = all(
                k in (SESSION, MANAGER) for k in dep_kinds.values()
            ) and all(
                deps[p] is None or deps[p].kind != MANAGER or deps[p].plain_manager
                for p in deps
            )
            fixture.plain_manager = bool(
                simple and plain_params and manager in self._factory_classes
            )
            if not fixture.plain_manager:
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
                fixture.problem = _factory_problem(fixture, body, inner, deps)
                return FACTORY
        if not touches_db:
            if inner is not None:
                fixture.runs_app = self._calls_application(fixture, inner)
            return PLAIN
        if fixture.yields:
            fixture.problem = "yields (a teardown phase 5 cannot inline)"
            return DB_OTHER
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


def _returned_expression(
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


def _factory_problem(
    fixture: Fixture,
    body: Sequence[cst.BaseStatement],
    inner: cst.FunctionDef,
    deps: dict[str, Fixture | None],
) -> str | None:
    if fixture.yields:
        return "yields"
    extra = [s for s in body[:-1] if s is not inner]
    if extra:
        return "has statements besides its inner function"
    for name, dep in deps.items():
        if dep is None:
            continue
        if dep.kind == MANAGER and not dep.plain_manager:
            return f"uses manager fixture {name!r}, which create_all_managers cannot stand for"
        if dep.kind in (OBJECT, DB_OTHER):
            return f"depends on {dep.kind.replace('_', ' ')} fixture {name!r}"
    return None


# ------------------------------------------------------------------------------- models


fastcst.content_cache(lambda: _ast_relationship_kinds.cache_clear())


def relationship_kinds(project: Project) -> dict[str, set[str]]:
    """Relationship attribute name -> kinds, from every model class in the package.

    ``Mapped[List[X]]`` / ``Mapped[list[X]]`` / ``Mapped[Set[X]]`` or ``uselist=True``: a
    collection; ``uselist=False`` or ``Mapped[X]`` / ``Mapped[Optional[X]]``: a scalar; a
    ``relationship()`` with neither: unknown (SQLAlchemy decides from the foreign keys).
    """
    config = project.config
    package = config.package.rstrip("/") + "/"
    files = [
        rel
        for rel in project.python_files()
        if rel.startswith(package)
        and not is_test_module(rel)
        and PurePosixPath(rel).name != "conftest.py"
    ]
    out: dict[str, set[str]] = {}
    relationship_call = m.Call(
        func=m.Name("relationship") | m.Attribute(attr=m.Name("relationship"))
    )
    for rel in project.grep(files, "relationship("):
        if not project.is_parsed(rel):
            # a model module no phase transforms: Python's own parser is many times faster
            found = _ast_relationship_kinds(project.read_bytes(rel))
            if found is not None:
                for name, kinds in found.items():
                    out.setdefault(name, set()).update(kinds)
                continue
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
                    out.setdefault(target.value, set()).add(
                        _relationship_kind(cst.ensure_type(value, cst.Call), annotation)
                    )
    return out


@functools.lru_cache(maxsize=256)
def _ast_relationship_kinds(source: bytes) -> dict[str, set[str]] | None:
    """:func:`relationship_kinds` of one module read with :mod:`ast` (None: it does not
    parse here, e.g. syntax newer than this interpreter; libcst decides then). Kept by
    content (phases 4 and 5 both ask, and models rarely change): treat it as read-only."""
    tree = python_module(source)
    if tree is None:
        return None
    out: dict[str, set[str]] = {}

    def classes(body: list[ast.stmt]) -> Iterator[ast.ClassDef]:
        for stmt in body:
            blocks: list[list[ast.stmt]] = []
            if isinstance(stmt, ast.ClassDef):
                yield stmt
                blocks.append(stmt.body)
            elif isinstance(stmt, ast.If):
                blocks += [stmt.body, stmt.orelse]
            elif isinstance(stmt, (ast.Try, getattr(ast, "TryStar", ast.Try))):
                blocks += [stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody]
            for block in blocks:
                yield from classes(block)

    def is_relationship(value: ast.expr | None) -> bool:
        if not isinstance(value, ast.Call):
            return False
        func = value.func
        return (isinstance(func, ast.Name) and func.id == "relationship") or (
            isinstance(func, ast.Attribute) and func.attr == "relationship"
        )

    def kind(call: ast.Call, annotation: ast.expr | None) -> str:
        for keyword in call.keywords:
            if keyword.arg == "uselist":
                value = keyword.value
                if isinstance(value, ast.Constant) and value.value is True:
                    return "collection"
                if isinstance(value, ast.Constant) and value.value is False:
                    return "scalar"
                return "unknown"
        if annotation is None:
            return "unknown"
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            try:
                annotation = ast.parse(annotation.value, mode="eval").body
            except SyntaxError:
                return "unknown"
        if not (
            isinstance(annotation, ast.Subscript)
            and (
                (isinstance(annotation.value, ast.Name) and annotation.value.id == "Mapped")
                or (isinstance(annotation.value, ast.Attribute) and annotation.value.attr == "Mapped")
            )
        ):
            return "unknown"
        inner = annotation.slice
        if isinstance(inner, ast.Tuple) or isinstance(inner, ast.Slice):
            return "unknown"
        if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
            text = inner.value.strip()
        else:
            text = ast.unparse(inner).strip()
        return "collection" if _COLLECTION_TYPES.match(text) else "scalar"

    for cls in classes(tree.body):
        for stmt in cls.body:
            if isinstance(stmt, ast.AnnAssign):
                target, annotation, value = stmt.target, stmt.annotation, stmt.value
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target, annotation, value = stmt.targets[0], None, stmt.value
            else:
                continue
            if isinstance(target, ast.Name) and is_relationship(value):
                out.setdefault(target.id, set()).add(kind(value, annotation))  # type: ignore[arg-type]
    return out


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
            blocks.extend(b.body for b in (stmt.orelse, stmt.finalbody) if b is not None)
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
    )


def is_old_style(graph: FixtureGraph) -> bool:
    return graph.count(REMOVED_KINDS) > 0


def record(project: Project, graph: FixtureGraph) -> None:
    """Store the graph in ``project.state`` unless a fuller record is already there."""
    if not is_old_style(graph):
        return
    existing = FixtureGraph.from_json(project.state.get(STATE_KEY))
    if existing is not None and existing.count(REMOVED_KINDS) > graph.count(
        REMOVED_KINDS
    ):
        return
    project.state[STATE_KEY] = graph.to_json()


def recorded(project: Project) -> FixtureGraph | None:
    return FixtureGraph.from_json(project.state.get(STATE_KEY))


# ------------------------------------------------------------------------------- rewriting


def managers_attr(config: Config, short: str) -> cst.Attribute:
    return cst.Attribute(value=cst.Name(config.managers_variable), attr=cst.Name(short))


class NameRewriter(cst.CSTTransformer):
    """Rewrites fixture names inside one function body (or a recipe).

    ``replacements`` maps a name to the expression that stands for it from now on
    (``db_session`` -> ``session``, ``game_manager`` -> ``managers.game``); calls of a name in
    ``factories`` get ``session`` as their first argument. Attribute names, keyword names and
    names a nested function or lambda rebinds are left alone. ``conflicts`` collects names
    that cannot be rewritten because the replacement would be captured by an inner binding.
    """

    def __init__(
        self,
        replacements: dict[str, cst.BaseExpression],
        factories: Iterable[str] = (),
        session_name: str = "session",
    ) -> None:
        super().__init__()
        self.replacements = replacements
        self.factories = set(factories)
        self.session_name = session_name
        self.conflicts: list[str] = []
        self.factory_values: list[str] = []
        self._skip: set[cst.CSTNode] = set()
        self._shadow: list[set[str]] = []
        self._calls: set[cst.CSTNode] = set()

    def _shadowed(self, name: str) -> bool:
        return any(name in s for s in self._shadow)

    # Everything this rewriter does is about the names in ``replacements`` and
    # ``factories``: a subtree holding none of them is neither visited nor rebuilt.
    visits_only: set[int] | None = None

    def rewrite(self, node: cst.BaseStatement) -> cst.BaseStatement:
        self.visits_only = holding(node, set(self.replacements) | self.factories)
        try:
            if id(node) not in self.visits_only:
                return node  # none of the names: nothing to do
            return cst.ensure_type(transform(node, self), cst.BaseStatement)
        finally:
            self.visits_only = None

    def _enter(self, params: cst.Parameters, body: cst.CSTNode) -> None:
        names = {
            p.name.value
            for p in (*params.posonly_params, *params.params, *params.kwonly_params)
        }
        for star in (params.star_arg, params.star_kwarg):
            if isinstance(star, cst.Param):
                names.add(star.name.value)
        names |= scan([body]).bound
        self._shadow.append(names)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._skip.add(node.name)
        self._enter(node.params, node.body)

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        self._shadow.pop()
        return updated_node

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._enter(node.params, node.body)

    def leave_Lambda(
        self, original_node: cst.Lambda, updated_node: cst.Lambda
    ) -> cst.Lambda:
        self._shadow.pop()
        return updated_node

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._skip.add(node.name)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._skip.add(node.attr)

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self._skip.add(node.keyword)

    def visit_Param(self, node: cst.Param) -> None:
        self._skip.add(node.name)

    def visit_ImportAlias(self, node: cst.ImportAlias) -> bool:
        return False

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name):
            self._calls.add(node.func)

    def leave_Name(
        self, original_node: cst.Name, updated_node: cst.Name
    ) -> cst.BaseExpression:
        name = original_node.value
        if original_node in self._skip or self._shadowed(name):
            return updated_node
        if name in self.factories and original_node not in self._calls:
            self.factory_values.append(name)
        replacement = self.replacements.get(name)
        if replacement is None:
            return updated_node
        root = replacement
        while isinstance(root, cst.Attribute):
            root = root.value
        if (
            isinstance(root, cst.Name)
            and root.value != name
            and self._shadowed(root.value)
        ):
            self.conflicts.append(name)
            return updated_node
        return clone(replacement).with_changes(
            lpar=updated_node.lpar, rpar=updated_node.rpar
        )

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        func = original_node.func
        if not (
            isinstance(func, cst.Name) and func.value in self.factories
        ) or self._shadowed(func.value):
            return updated_node
        if self._shadowed(self.session_name):
            self.conflicts.append(func.value)
            return updated_node
        args = list(updated_node.args)
        if (
            args
            and not args[0].keyword
            and not args[0].star
            and matches(args[0].value, m.Name(self.session_name))
        ):
            return updated_node
        ws = updated_node.whitespace_before_args
        if args:
            if isinstance(ws, cst.ParenthesizedWhitespace):
                comma = cst.Comma(whitespace_after=ws)
            else:
                comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            first = cst.Arg(value=cst.Name(self.session_name), comma=comma)
        else:
            first = cst.Arg(value=cst.Name(self.session_name))
        return updated_node.with_changes(args=[first, *args])


def rewrite_names(
    nodes: Sequence[cst.BaseStatement],
    replacements: dict[str, cst.BaseExpression],
    factories: Iterable[str],
    session_name: str,
) -> tuple[list[cst.BaseStatement], NameRewriter]:
    rewriter = NameRewriter(replacements, factories, session_name)
    # the rewriter acts only on those names: a statement without any is left as it is
    out = [rewriter.rewrite(n) if not isinstance(n, cst.RemovalSentinel) else n for n in nodes]
    return out, rewriter


_LOG_CALL = m.Call(
    func=m.Attribute(value=m.Name(m.MatchRegex(r"(?i).*(log|logger|logging)$")))
    | m.Attribute(value=m.Attribute(attr=m.Name(m.MatchRegex(r"(?i).*(log|logger)$"))))
    | m.Name("print")
)
_LOG_ONLY_STATEMENT = m.SimpleStatementLine(
    body=[m.OneOf(m.Expr(value=_LOG_CALL), m.Pass())]
)


class SessionCallCleaner(cst.CSTTransformer):
    """Drops ``<session>.merge`` and refreshes of relationship collections.

    * ``x = session.merge(x)`` / ``session.merge(x)`` disappear, ``return session.merge(x)``
      becomes ``return x``, ``y = session.merge(x)`` becomes ``y = x``;
    * ``session.refresh(obj, attribute_names=[...])`` loses the collection names (a refresh
      of a collection right after creating its parent freezes it: see the README); with
      none left, the statement goes;
    * a ``try:`` whose body became empty and whose handlers only log goes too, and so does a
      ``for``/``if``/``with`` whose body became empty;
    * a refresh naming an attribute whose kind cannot be told is kept and reported.
    """

    def __init__(self, session_name: str, attribute_kind: Any) -> None:
        super().__init__()
        self.session_name = session_name
        self.attribute_kind = attribute_kind
        self.unknown: list[tuple[cst.CSTNode, str]] = []
        self.changed = False
        self._emptied: set[int] = set()
        self._leftovers: set[int] = set()  # expressions whose statement is to go

    def _session_method(self, node: cst.CSTNode, method: str) -> bool:
        return matches(node, _call_on(self.session_name, method))

    # ---- merge
    def leave_Call(
        self, original_node: cst.Call, updated_node: cst.Call
    ) -> cst.BaseExpression:
        if (
            self._session_method(updated_node, "merge")
            and len(updated_node.args) == 1
            and not updated_node.args[0].keyword
        ):
            self.changed = True
            value = updated_node.args[0].value
            self._leftovers.add(id(value))
            return value
        if self._session_method(updated_node, "refresh"):
            return self._refresh(original_node, updated_node)
        return updated_node

    def _refresh(self, original_node: cst.Call, call: cst.Call) -> cst.BaseExpression:
        args = list(call.args)
        index = next(
            (
                i
                for i, a in enumerate(args)
                if a.keyword is not None and a.keyword.value == "attribute_names"
            ),
            1 if len(args) > 1 and args[1].keyword is None else None,
        )
        if index is None:
            return call
        names = args[index].value
        if not isinstance(names, (cst.List, cst.Tuple, cst.Set)):
            return call
        keep = []
        dropped = False
        for element in names.elements:
            value = element.value
            text = (
                value.evaluated_value if isinstance(value, cst.SimpleString) else None
            )
            kind = self.attribute_kind(text) if isinstance(text, str) else "unknown"
            if kind == "collection":
                dropped = True
                continue
            if kind == "unknown":
                self.unknown.append((original_node, str(text)))
            keep.append(element)
        if not dropped:
            return call
        self.changed = True
        if not keep:
            self._leftovers.add(id(call))
            return call
        keep[-1] = keep[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        args[index] = args[index].with_changes(value=names.with_changes(elements=keep))
        return call.with_changes(args=args)

    # ---- statements
    def leave_SimpleStatementLine(
        self,
        original_node: cst.SimpleStatementLine,
        updated_node: cst.SimpleStatementLine,
    ) -> cst.SimpleStatementLine | cst.RemovalSentinel:
        body = []
        for small in updated_node.body:
            if isinstance(small, cst.Expr) and id(small.value) in self._leftovers:
                continue  # ``session.merge(x)`` left ``x``; a refresh with nothing left
            if (
                isinstance(small, cst.Assign)
                and id(small.value) in self._leftovers
                and matches(
                    small,
                    m.Assign(targets=[m.AssignTarget(target=m.Name())], value=m.Name()),
                )
            ):
                assign = cst.ensure_type(small, cst.Assign)
                if (
                    cst.ensure_type(assign.targets[0].target, cst.Name).value
                    == cst.ensure_type(assign.value, cst.Name).value
                ):
                    continue  # ``x = session.merge(x)``
            body.append(small)
        if not body:
            return cst.RemoveFromParent()
        if len(body) != len(updated_node.body):
            body[-1] = body[-1].with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
            return updated_node.with_changes(body=body)
        return updated_node

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        if original_node.body and not updated_node.body:
            self._emptied.add(id(updated_node))
        return updated_node

    def _is_emptied(self, block: cst.BaseSuite) -> bool:
        return id(block) in self._emptied

    def leave_Try(
        self, original_node: cst.Try, updated_node: cst.Try
    ) -> cst.BaseStatement | cst.RemovalSentinel:
        if not self._is_emptied(updated_node.body):
            return updated_node
        log_only = all(
            all(matches(s, _LOG_ONLY_STATEMENT) for s in h.body.body)
            for h in updated_node.handlers
        )
        if log_only and updated_node.orelse is None and updated_node.finalbody is None:
            return cst.RemoveFromParent()
        return updated_node.with_changes(
            body=updated_node.body.with_changes(
                body=[cst.SimpleStatementLine([cst.Pass()])]
            )
        )

    def leave_For(
        self, original_node: cst.For, updated_node: cst.For
    ) -> cst.BaseStatement | cst.RemovalSentinel:
        if self._is_emptied(updated_node.body) and updated_node.orelse is None:
            return cst.RemoveFromParent()
        return updated_node

    def leave_If(
        self, original_node: cst.If, updated_node: cst.If
    ) -> cst.BaseStatement | cst.RemovalSentinel:
        if self._is_emptied(updated_node.body) and updated_node.orelse is None:
            return cst.RemoveFromParent()
        return updated_node

    def leave_With(
        self, original_node: cst.With, updated_node: cst.With
    ) -> cst.BaseStatement | cst.RemovalSentinel:
        if self._is_emptied(updated_node.body):
            return cst.RemoveFromParent()
        return updated_node


def clean_statements(
    stmts: Sequence[cst.BaseStatement], session_name: str, attribute_kind: Any
) -> tuple[list[cst.BaseStatement], SessionCallCleaner]:
    """Run :class:`SessionCallCleaner` over a statement list (empty blocks filled by ``pass``)."""
    cleaner = SessionCallCleaner(session_name, attribute_kind)
    wrapper = cst.Module(body=list(stmts))
    cleaned = cst.ensure_type(wrapper.visit(cleaner), cst.Module)
    return list(cleaned.body), cleaner


# ------------------------------------------------------------------------------- parameters


def _strip_comment(ws: Any) -> Any:
    if (
        isinstance(ws, cst.ParenthesizedWhitespace)
        and ws.first_line.comment is not None
    ):
        return ws.with_changes(
            first_line=ws.first_line.with_changes(
                comment=None, whitespace=cst.SimpleWhitespace("")
            )
        )
    return ws


def _comma_without_comment(comma: Any) -> Any:
    if isinstance(comma, cst.Comma):
        return comma.with_changes(
            whitespace_after=_strip_comment(comma.whitespace_after)
        )
    return comma


def _has_comment(comma: Any) -> bool:
    return (
        isinstance(comma, cst.Comma)
        and isinstance(comma.whitespace_after, cst.ParenthesizedWhitespace)
        and comma.whitespace_after.first_line.comment is not None
    )


def edit_params(
    params: cst.Parameters,
    remove: Iterable[str] = (),
    insert: Sequence[cst.Param] = (),
    at: int | None = None,
) -> cst.Parameters:
    """Remove named positional parameters and insert new ones, keeping the layout.

    New parameters go where the first removed one was (or at index ``at``, or at the end).
    A removed parameter takes its trailing comment (``db_session,  # Inject db_session``)
    with it; the others keep theirs; a trailing comma stays a trailing comma.
    """
    remove = set(remove)
    old = list(params.params)
    if not any(p.name.value in remove for p in old) and not insert:
        return params
    more_after = (
        isinstance(params.star_arg, (cst.Param, cst.ParamStar))
        or bool(params.kwonly_params)
        or params.star_kwarg is not None
    )
    separators = [p.comma for p in old[:-1] if isinstance(p.comma, cst.Comma)]
    sep = (
        _comma_without_comment(separators[0])
        if separators
        else cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    )
    new_params = [p.with_changes(comma=sep) for p in insert]
    out: list[cst.Param] = []
    inserted = not new_params
    for i, param in enumerate(old):
        if at is not None and i == at and not inserted:
            out.extend(new_params)
            inserted = True
        if param.name.value in remove:
            if not inserted and at is None:
                out.extend(new_params)
                inserted = True
            continue
        out.append(param)
    if not inserted:
        out.extend(new_params)
    if not old:
        last_comma: Any = cst.MaybeSentinel.DEFAULT
        last_ws: Any = cst.SimpleWhitespace("")
    else:
        last_comma = _comma_without_comment(old[-1].comma)
        last_ws = _strip_comment(old[-1].whitespace_after_param)
    for j, param in enumerate(out):
        if j < len(out) - 1 or more_after:
            if not isinstance(param.comma, cst.Comma):
                param = param.with_changes(comma=sep)
            if old and param is old[-1] and j < len(out) - 1:
                param = param.with_changes(
                    whitespace_after_param=cst.SimpleWhitespace("")
                )
        elif not (old and param is old[-1]):
            if isinstance(last_comma, cst.Comma) or not _has_comment(param.comma):
                param = param.with_changes(comma=last_comma)
            param = param.with_changes(whitespace_after_param=last_ws)
        out[j] = param
    return params.with_changes(params=out)


def new_param(name: str, annotation: cst.BaseExpression | None = None) -> cst.Param:
    return cst.Param(
        name=cst.Name(name),
        annotation=cst.Annotation(annotation=annotation)
        if annotation is not None
        else None,
    )


# ------------------------------------------------------------------------------- statements


_BANNER_RULE = re.compile(r"^#\s*([-=*#~_+])\1{2,}\s*$")


def _is_banner(lines: Sequence[cst.EmptyLine]) -> bool:
    comments = [line.comment.value for line in lines if line.comment is not None]
    return (
        len(comments) >= 2
        and bool(_BANNER_RULE.match(comments[0]))
        and bool(_BANNER_RULE.match(comments[-1]))
    )


def _split_leading(
    lines: Sequence[cst.EmptyLine],
) -> tuple[list[cst.EmptyLine], list[cst.EmptyLine]]:
    """(detached part, attached comments): comments right above a definition belong to it."""
    lines = list(lines)
    last_blank = max(
        (i for i, line in enumerate(lines) if line.comment is None), default=-1
    )
    return lines[: last_blank + 1], lines[last_blank + 1 :]


def _comment_blocks(lines: Sequence[cst.EmptyLine]) -> list[list[cst.EmptyLine]]:
    blocks: list[list[cst.EmptyLine]] = []
    current: list[cst.EmptyLine] = []
    for line in lines:
        if line.comment is None:
            if current:
                blocks.append(current)
                current = []
        else:
            current.append(line)
    if current:
        blocks.append(current)
    return blocks


def remove_statements(
    body: Sequence[cst.BaseStatement],
    doomed: set[int],
    footer: Sequence[cst.EmptyLine] = (),
) -> tuple[list[cst.BaseStatement], list[cst.EmptyLine]]:
    """Remove the statements at the indices in ``doomed``, keeping detached comments.

    Comments directly above a removed definition go with it. Comment blocks separated from
    it by a blank line (commented-out old code, section banners) move to the next statement
    that stays, except a banner that another banner follows before that statement (the
    section it headed is gone).
    """
    out: list[cst.BaseStatement] = []
    carried: list[list[cst.EmptyLine]] = []

    def surviving(
        blocks: list[list[cst.EmptyLine]], after: list[list[cst.EmptyLine]]
    ) -> list[list[cst.EmptyLine]]:
        everything = blocks + after
        return [
            block
            for k, block in enumerate(blocks)
            if not (
                _is_banner(block) and any(_is_banner(b) for b in everything[k + 1 :])
            )
        ]

    for i, stmt in enumerate(body):
        leading = list(getattr(stmt, "leading_lines", ()))
        if i in doomed:
            detached, _ = _split_leading(leading)
            carried.extend(_comment_blocks(detached))
            continue
        if carried:
            prefix: list[cst.EmptyLine] = []
            for block in surviving(carried, _comment_blocks(leading)):
                if out or prefix:
                    prefix.extend([cst.EmptyLine(), cst.EmptyLine()])
                prefix.extend(block)
            if prefix:
                stmt = stmt.with_changes(leading_lines=prefix + leading)
            carried = []
        out.append(stmt)
    new_footer = list(footer)
    if carried:
        extra: list[cst.EmptyLine] = []
        for block in surviving(carried, []):
            if not _is_banner(block):
                extra.extend([cst.EmptyLine(), cst.EmptyLine(), *block])
        new_footer = extra + new_footer
    return out, new_footer


def unused_names(module: cst.Module, candidates: Iterable[str]) -> set[str]:
    """Those of ``candidates`` that ``module`` mentions nowhere outside its import
    statements: neither as a name nor in a string without whitespace (a string
    annotation, an ``__all__`` entry; not prose). Most candidates stay in use: the walk
    stops at the first mention of the last of them."""
    remaining = set(candidates)
    if not remaining:
        return remaining
    texts: list[str] = []
    for leaf in fastcst.names_below(module, outside_imports=True, strings=True):
        if type(leaf) is cst.Name:
            remaining.discard(leaf.value)
            if not remaining:
                return remaining
        elif not re.search(r"\s", leaf.value):
            texts.append(leaf.value)
    strings = "\n".join(texts)
    return {name for name in remaining if not re.search(rf"\b{re.escape(name)}\b", strings)}


def remove_unused_imports(module: cst.Module, candidates: Iterable[str]) -> cst.Module:
    """Drop module-level imports of ``candidates`` that nothing in the module uses any more.

    The codemods know which names the code they deleted used; one cheap pass over what is
    left decides (a name still mentioned anywhere, even in a string, keeps its import).
    ``RemoveImportsVisitor`` would decide the same through a full scope analysis, which
    costs seconds on a large conftest, for every step that deletes something.
    """
    unused = unused_names(module, candidates)
    if not unused:
        return module

    def local(alias: cst.ImportAlias) -> str:
        if alias.asname is not None:
            return get_full_name_for_node(alias.asname.name) or ""
        return (get_full_name_for_node(alias.name) or "").split(".")[0]

    body: list[cst.BaseStatement] = []
    carried: list[cst.EmptyLine] = []
    for stmt in module.body:
        if matches(stmt, _ONE_IMPORT_LINE):
            line = cst.ensure_type(stmt, cst.SimpleStatementLine)
            small = line.body[0]
            names = small.names  # type: ignore[union-attr]
            if not isinstance(names, cst.ImportStar):
                keep = [a for a in names if local(a) not in unused]
                if not keep:
                    carried = carried or list(line.leading_lines)
                    continue
                if len(keep) != len(names):
                    trailing = (
                        names[-1].comma
                        if small.__class__ is cst.ImportFrom and small.rpar is not None
                        else cst.MaybeSentinel.DEFAULT
                    )  # type: ignore[union-attr]
                    keep[-1] = keep[-1].with_changes(comma=trailing)
                    stmt = line.with_changes(body=[small.with_changes(names=keep)])
        if carried:
            if not getattr(stmt, "leading_lines", None):
                stmt = stmt.with_changes(leading_lines=carried)
            carried = []
        body.append(stmt)
    return module.with_changes(body=body)


class ImportBlockOnly:
    """Mixin for a codemod: run ``AddImportsVisitor`` over the module's import block only.

    ``AddImportsVisitor`` only ever inserts next to the module-level imports, but it walks
    the whole module, which costs more than everything else phase 5 does to a big test
    module. It is given the statements up to the last module-level import (the rest of the
    module cannot change its decision), and its result is put back in front of the rest.
    """

    def _instantiate_and_run(self, transform: Any, tree: cst.Module) -> cst.Module:
        from libcst.codemod.visitors import AddImportsVisitor

        if transform is not AddImportsVisitor:
            return super()._instantiate_and_run(transform, tree)  # type: ignore[misc]
        last = -1
        for i, stmt in enumerate(tree.body):
            if matches(stmt, _IMPORT_LINE):
                last = i
        if last < 0:
            return super()._instantiate_and_run(transform, tree)  # type: ignore[misc]
        head = tree.with_changes(body=tree.body[: last + 1], footer=[])
        done = run_helper(transform, self.context, head)  # type: ignore[attr-defined]
        return tree.with_changes(
            header=done.header, body=[*done.body, *tree.body[last + 1 :]]
        )
