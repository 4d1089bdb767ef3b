"""Phase 5 of docs/plan.md: refactor the individual test modules.

Every test that needs the database session, directly or through any fixture, is rewritten:

* its signature asks for ``session_context`` where the removed fixtures were (the session
  fixture, manager fixtures, object fixtures); the other parameters keep their order, and
  whatever the inlined recipes need (factory fixtures, mock clients) is added after it;
* its body is wrapped in ``with session_context as session:`` starting with
  ``managers = create_all_managers(session)`` when the rewritten body uses ``managers``
  (imported at module level: one import per module instead of one per test, which
  docs/plan.md allows: "if not already imported");
* the object fixtures it used, transitively, are rebuilt inside the block in dependency
  order under their own names (so ``test_game.id`` keeps working), from the recipes the
  analysis found in the conftests or recorded before phase 4 deleted them; the recipes'
  ``merge`` calls and refreshes of relationship collections are dropped (see docs/end-state.md: a
  collection refreshed right after its parent is created never sees later children);
* factory calls leave out the arguments equal to the literal defaults of the factory's inner
  function (:func:`refactor_tool.model.fixtures.factory_defaults`);
* an inlined statement binding names that nothing in the test (or in the helper fixture it
  ends up in) reads keeps only what evaluating its value does: a fixture requested for its
  side effect becomes ``create_test_game(session)`` without ``test_game =``, a tuple of
  names goes; the block is ``with session_context:`` when it never reads the session;
* when two or more rewritten tests of a module start with the same inlined statements, a
  module-level helper fixture ``make_<the last name it returns>`` requests the fixtures they read
  and returns a function of the session (and ``managers``, and what no module-level
  fixture can request: ``parametrize`` arguments, fixtures of the test's class) that runs
  them and returns what the tests read; each test asks for it instead of the fixtures only
  it reads now and calls it (``test_scene = make_scene(session)``). A test whose setup
  starts with a helper's statements calls it for them (if need be once the managers its
  setup builds go after the objects, where nothing between reads them), and a longer
  helper is built on a shorter one; a helper returns what at least half of its callers read
  of it, a caller that reads more running its setup itself (or with a shorter helper),
  unless that costs more lines than there are callers spared unread names; a helper whose last statement binds a call returns
  that call (``return test_game, create_test_act(...)``);
* a setup tests of two or more modules start with is one helper, written once at the end
  of the fixture module nearest to all of them (:func:`shared_helpers`, :func:`generate`):
  the modules call it and define no helper of their own for it;
* an inlined ``x = <value>`` (or helper call) right before ``<targets> = x``, where
  nothing else mentions ``x``, becomes ``<targets> = <value>``;
* manager fixture names become ``managers.<short>``; a manager fixture that injected
  something ``create_all_managers`` cannot (a mock client) is rebuilt from its recipe under
  its own name; ``db_session`` becomes ``session``; factory calls get ``session`` first;
* a ``with session_context as s:`` block already at the top level of such a test is merged
  into the new one (a SessionContext cannot be entered twice at once).
* before that, a ``usefixtures`` mark of a fixture phase 4 removes becomes the first
  parameter of each test it covers (:class:`MarkedFixturesAsParameters`).

Tests already in the new style and tests that touch no database are not touched, nor is a
module without such tests. A test that uses a fixture the tool cannot rewrite (neither
defined nor recorded, a yield fixture over the session, a recipe that cannot be inlined, a
factory fixture phase 4 left as it was) is reported with file:line and left unchanged.
Phase 4 keeps every fixture such a test requests: it asks :func:`left_alone`, which runs this
codemod without writing anything.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import itertools
import re
from collections.abc import Callable, Container, Iterator, Sequence
from typing import Any

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext, SkipFile
from libcst.codemod.visitors import AddImportsVisitor
from libcst.helpers import get_full_name_for_node
from libcst.matchers import matches

from codemods import imports, rewrite
from codemods.base import PhaseSpec, RefactorCodemod, StepSpec
from refactor_tool.model import fixtures as fx
from refactor_tool.model.config import Config, project_scripts
from refactor_tool.model.managers import (
    attributes_set_in_place,
    constructions_without_session,
    context_openers,
    import_map,
    relpath_for,
    resolve_local,
)
from refactor_tool.model.project import Project, first_party
from refactor_tool.model.state import state_of
from refactor_tool.model.syntax import (
    Lines,
    Visitor,
    findall,
    identifiers,
    line_map,
    names_used,
)

# ------------------------------------------------------------------------------- analysis

_FACTORY_KEYWORDS = ("factory keywords",)
#: (module, object) of each ``[project.scripts]`` entry point: the application itself
_ENTRY_POINTS = ("entry points",)
_SET_IN_PLACE = ("attributes set in place",)
#: rel -> what the text prefilter of :func:`files` learned of the module (:class:`_TextFacts`)
_TEXT_FACTS = ("text facts",)
#: setup code -> the :class:`SharedHelper` running it (:func:`shared_helpers`)
_SHARED = ("shared helpers",)
#: rel -> (the tree the survey rewrote, the codemod that did): finished, not redone
_SURVEYED = ("surveyed modules",)
#: dotted names of what opens a session context (``SessionContext``, ``get_db_context``)
_OPENERS = ("context openers",)


@dataclasses.dataclass(frozen=True)
class _TextFacts:
    """What a module's text says, read while :func:`files` selects it: a module whose text
    never mentions ``getfixturevalue`` or a manager class's name needs no walk for those."""

    fetches: bool
    names_a_manager: bool


def analyze(
    project: Project, current: fx.FixtureAnalysis | None = None
) -> fx.FixtureAnalysis:
    """The current fixture graph (``current``'s, when the caller analysed the project
    already), falling back on the one recorded before phase 4, and what phase 4 does (or
    did) with its fixtures: a test that calls a factory fixture phase 4 leaves as it was
    cannot pass it the session (:func:`refactor_tool.model.fixtures.fixture_plan`; what
    happens to a factory depends on no test, so no test requests are needed here)."""
    if current is None:
        analysis = fx.analyze_current(project)
    else:  # the same fixtures, in a graph of its own (the fallback is this phase's)
        graph = dataclasses.replace(current.graph, _memo={})
        analysis = dataclasses.replace(current, graph=graph, cache={}, plan=None)
    previous = state_of(project).fixture_graph
    if previous is not None and (current is None or previous is not current.graph):
        analysis.graph.fallback = previous
    analysis.cache[_FACTORY_KEYWORDS] = factory_keywords(analysis, project)
    analysis.cache[_OPENERS] = context_openers(project)
    # read only where a test drives the application (a walk of the whole package)
    analysis.cache[_SET_IN_PLACE] = functools.partial(attributes_set_in_place, project)
    analysis.cache[_ENTRY_POINTS] = {
        tuple(target.split(":", 1))
        for target in project_scripts(
            project.root,
            project.read_bytes("pyproject.toml") if project.exists("pyproject.toml") else None,
        ).values()
        if ":" in target
    }
    analysis.plan = fx.fixture_plan(analysis.graph)
    return analysis


def left_alone(
    project: Project, current: fx.FixtureAnalysis | None = None
) -> list[fx.Request]:
    """What the test modules will still request once this phase is done: the requests of
    every test it leaves as it is (one it reports, or one that needs nothing), of the
    fixtures test modules define and of the ``usefixtures`` marks of their classes and
    modules (:func:`refactor_tool.model.fixtures.module_requests`). Found by running the
    codemod over its candidate modules without writing anything; a module it does not take
    requests none of the fixtures phase 4 removes. Phase 4 keeps every fixture these reach
    (only the requests of fixtures it could delete are returned). ``current``: the
    analysis of the project as it is, if the caller has it."""
    analysis = analyze(project, current)
    wanted = fx.deletable_names(analysis.graph)
    config = analysis.config
    out: list[fx.Request] = []
    for rel in files(project, analysis):
        context = CodemodContext(
            filename=project.path_str(rel), full_module_name=project.module_name(rel)
        )
        codemod = RefactorTestFunctions(context, analysis)
        codemod.decide_only = True
        original = tree = project.parse(rel)
        # a test that requests only fixtures of its module is rewritten when they use old
        # fixtures: it decides whether those fixtures (and their requests) stay
        codemod.only_for = wanted | {
            fx.registered_name(f) for f in RefactorTestFunctions._fixture_defs(tree.body)
        }
        try:
            # the step's first codemod: its tests ask for what their marks asked for
            tree = MarkedFixturesAsParameters(context, analysis).transform_module_impl(tree)
        except SkipFile:
            pass
        try:
            codemod.transform_module_impl(tree)
        except SkipFile:
            continue
        fetches = b"getfixturevalue" in project.read_bytes(rel)
        requests = fx.module_requests(
            tree,
            rel,
            Lines(tree),
            codemod.untouched,
            wanted,
            fetches,
            dropped=codemod.dropped_fixtures,
        )
        if config.session_fixture in wanted:
            requests += fx.test_module_session_requests(
                tree,
                rel,
                Lines(tree),
                analysis.graph,
                config.session_fixture,
                config.session_variable,
                dropped=codemod.dropped_fixtures,
            )
        if tree is not original:  # lines of the file as it is
            back = line_map(original.code, tree.code)
            requests = [dataclasses.replace(r, line=back(r.line)) for r in requests]
        out += requests
    return out


def needles(analysis: fx.FixtureAnalysis) -> list[str]:
    graph = analysis.graph
    names = graph.names(*fx.REMOVED_KINDS) | graph.names(fx.FACTORY)
    names.add(analysis.config.session_fixture)
    return sorted(names)


def files(project: Project, analysis: fx.FixtureAnalysis) -> list[str]:
    """Test modules that request a fixture phase 4 removed (or a factory fixture): its name
    in the parameters of some ``def``, or in quotes (``usefixtures``, ``getfixturevalue``,
    ``parametrize``). A module that only has a local variable of such a name is not one."""
    tests = fx.test_modules(project)
    names = needles(analysis)
    managers = (
        [f"{c.name}(" for c in analysis.managers.classes.values()]
        if analysis.managers is not None
        else []
    )
    chosen = []
    facts = analysis.cache.setdefault(_TEXT_FACTS, {})
    for rel in project.grep(tests, *names):
        text = project.read_text(rel)
        if may_request(text, names):
            chosen.append(rel)
            facts[rel] = _TextFacts(
                "getfixturevalue" in text, any(n in text for n in managers)
            )
    return chosen


_DEF_HEADER = re.compile(r"\bdef\s+\w+\s*\(")


def _pytestmark_fixtures(body: Sequence[cst.CSTNode]) -> list[tuple[str, cst.CSTNode]]:
    """The fixtures the ``pytestmark = ...`` statements of a module or class body request
    through ``usefixtures`` marks, each with its statement."""
    return [
        (name, stmt)
        for stmt in body
        if m.matches(
            stmt,
            m.SimpleStatementLine(
                body=[m.Assign(targets=[m.AssignTarget(m.Name("pytestmark"))])]
            ),
        )
        for name in fx.usefixtures_names(stmt)
    ]


def may_request(text: str, names: list[str]) -> bool:
    """Whether ``text`` can request one of the fixtures ``names``: the name as a word inside
    the brackets of a ``def`` header or in quotes. Where a header holds a quote (a default
    that is a string) the header cannot be told from the text that follows: yes. A module
    that fetches fixtures by a computed name (``getfixturevalue``) is always one."""
    present = [n for n in names if n in text]
    if not present or "getfixturevalue" in text:
        return bool(present)
    alternatives = "|".join(re.escape(n) for n in present)
    words = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
    if re.search(rf"""["'](?:{alternatives})["']""", text):
        return True
    for header in _DEF_HEADER.finditer(text):
        depth, i = 1, header.end()
        while i < len(text) and depth:
            ch = text[i]
            if ch in "'\"#":
                return True  # a string or a comment in the header: assume it may
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
            i += 1
        if words.search(text, header.end(), i):
            return True
    return False


# ------------------------------------------------------------------------------- helpers


def factory_keywords(analysis: fx.FixtureAnalysis, project: Project) -> set[str]:
    """The keyword arguments the target's ``create_all_managers`` takes (a ``**`` parameter:
    any the manager analysis offers), read once per run from the factory module: a manager
    fixture is replaced by ``managers.<short>`` plus a keyword only when the factory takes
    it (a hand-written factory may not), and rebuilt from its recipe otherwise. Computed by
    :func:`analyze`, before the codemod changes anything."""
    config = analysis.config
    taken: set[str] = set()
    if project.exists(config.factory_module):
        try:
            tree = project.parse(config.factory_module)
        except Exception:
            tree = None
        function = next(
            (
                n
                for n in (tree.body if tree is not None else ())
                if isinstance(n, cst.FunctionDef)
                and n.name.value == config.factory_function
            ),
            None,
        )
        if function is not None:
            p = function.params
            taken = {q.name.value for q in (*p.params, *p.kwonly_params)}
            taken.discard(config.session_variable)
            if isinstance(p.star_kwarg, cst.Param) and analysis.managers is not None:
                taken |= set(analysis.managers.factory_overrides().values())
    return taken


def scope_scan(
    stmts: Sequence[cst.BaseStatement], memo: fx.ScanMemo | None = None
) -> fx.Scan:
    """Names bound and read in a function's own scope (nested functions only bind their name)."""
    return fx.scan(stmts, own_scope=True, memo=memo)


def _unwrap_log_only_try(
    stmts: list[cst.BaseStatement], session_name: str
) -> list[cst.BaseStatement]:
    """A ``try`` around refreshes whose handlers only log: keep the refreshes, drop the wrapper."""
    refresh = m.SimpleStatementLine(
        body=[
            m.Expr(
                value=m.Call(
                    func=m.Attribute(value=m.Name(session_name), attr=m.Name("refresh"))
                )
            )
        ]
    )
    out: list[cst.BaseStatement] = []
    for stmt in stmts:
        if (
            isinstance(stmt, cst.Try)
            and stmt.orelse is None
            and stmt.finalbody is None
            and all(matches(s, refresh) for s in stmt.body.body)
            and all(
                all(matches(s, rewrite.LOG_ONLY_STATEMENT) for s in h.body.body)
                for h in stmt.handlers
            )
        ):
            inner = list(stmt.body.body)
            if inner:
                inner[0] = inner[0].with_changes(
                    leading_lines=[*stmt.leading_lines, *inner[0].leading_lines]
                )
            out.extend(inner)
        else:
            out.append(stmt)
    return out


class _Shape(Visitor):
    """In one walk: the names assigned to (in order), whether ``return``, ``yield`` or
    ``await`` appears, and whether ``<session>.rollback()`` is called."""

    def __init__(self, session: str) -> None:
        self.session = session
        self.assigned: list[str] = []
        self.returns = False
        self.rolls_back = False
        self._targets = 0

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._targets += 1

    def leave_AssignTarget(self, original_node: cst.AssignTarget) -> None:
        self._targets -= 1

    def visit_Name(self, node: cst.Name) -> None:
        if self._targets:
            self.assigned.append(node.value)

    def visit_Return(self, node: cst.Return) -> None:
        self.returns = True

    def visit_Yield(self, node: cst.Yield) -> None:
        self.returns = True

    def visit_Await(self, node: cst.Await) -> None:
        self.returns = True

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value == "rollback"
            and isinstance(func.value, cst.Name)
            and func.value.value == self.session
        ):
            self.rolls_back = True


#: shapes of single statements, kept by the caller while the statements live (as
#: :data:`refactor_tool.model.fixtures.ScanMemo` keeps scans)
ShapeMemo = dict[int, tuple[cst.CSTNode, _Shape]]


def _shape(
    body: Sequence[cst.BaseStatement], session: str, memo: ShapeMemo | None = None
) -> _Shape:
    """The shape of ``body``: that of each statement, in order (``memo``: shapes of
    statements already walked, filled as statements are walked)."""
    if memo is None:
        shape = _Shape(session)
        for stmt in body:
            stmt.visit(shape)
        return shape
    out = _Shape(session)
    for stmt in body:
        hit = memo.get(id(stmt))
        if hit is None or hit[0] is not stmt:
            one = _Shape(session)
            stmt.visit(one)
            hit = memo[id(stmt)] = (stmt, one)
        part = hit[1]
        out.assigned.extend(part.assigned)
        out.returns = out.returns or part.returns
        out.rolls_back = out.rolls_back or part.rolls_back
    return out


#: where a test provokes the error it rolls back from: a ``with pytest.raises(...)`` or a
#: ``rollback()``/``commit()`` call
_PROVOKES = m.With(
    items=[m.WithItem(item=m.Call(func=m.Attribute(attr=m.Name("raises"))))]
) | m.Call(func=m.Attribute(attr=m.Name("rollback") | m.Name("commit")))


def _rolls_back(
    body: Sequence[cst.BaseStatement], session: str, memo: fx.ScanMemo
) -> bool:
    """Whether ``body`` calls ``<session>.rollback()`` itself (only a body that reads the
    session can: its scan, from ``memo`` where the statements were scanned, says)."""
    if session not in fx.scan(body, memo=memo).used:
        return False
    return _shape(body, session).rolls_back


def _strip_blank_leading(stmt: cst.BaseStatement) -> cst.BaseStatement:
    lines = list(getattr(stmt, "leading_lines", ()))
    while lines and lines[0].comment is None:
        lines.pop(0)
    return stmt.with_changes(leading_lines=lines)


@dataclasses.dataclass
class _Setup:
    """The inlined statements a rewritten test starts with (``codes``: the code of each),
    the rest of its ``with`` block (``body``), the fixtures it asks for (``params``),
    where the statements start in the block (``start``), its names that are not the
    fixtures a module-level fixture would get (``own``: its ``parametrize`` arguments, its
    classes' fixtures) and every name it binds or asks for (``names``: a helper's name is
    none of them)."""

    statements: list[cst.BaseStatement]
    codes: tuple[str, ...]
    body: list[cst.BaseStatement]
    params: list[str]
    start: int
    own: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    #: the positions in ``statements`` of those that build a manager (a manager fixture's
    #: recipe): they may go after the others when nothing between reads them
    managers: frozenset[int] = frozenset()


@dataclasses.dataclass
class _Cut:
    """What a helper running the first statements of a setup takes and gives: ``passed``
    (the session, ``managers``, then the test's fixtures they read), ``needed`` (what they
    bind that the rest reads before rebinding it), ``assigned`` (what they bind, in order)
    and ``not_fixtures`` (passed names a module-level fixture cannot request)."""

    passed: tuple[str, ...]
    needed: frozenset[str]
    assigned: tuple[str, ...]
    not_fixtures: frozenset[str]
    #: how many of ``passed`` are the session and ``managers``
    first: int = 1


@dataclasses.dataclass(frozen=True)
class _Typed:
    """An annotation as code, with what its names are: name -> (module, obj, asname), the
    imports a module writing it needs."""

    code: str
    imports: tuple[tuple[str, tuple[str, str | None, str | None]], ...] = ()

    @staticmethod
    def of_fixture(fixture: fx.Fixture | None) -> _Typed | None:
        """What ``fixture`` returns, as its definition annotates it; None when it does not,
        or when a name of its annotation is not imported from a module by its full name."""
        if fixture is None or fixture.returns is None:
            return None
        imports = []
        for name, binding in fixture.returns_imports.items():
            module, obj, asname = binding
            if not module or module.startswith("."):
                return None
            imports.append((name, (module, obj, asname)))
        return _Typed(fixture.returns, tuple(imports))

    @staticmethod
    def imported(module: str, obj: str) -> _Typed:
        return _Typed(obj, ((obj, (module, obj, None)),))

    @staticmethod
    def compose(code: str, parts: Sequence[_Typed]) -> _Typed | None:
        """``code`` made of ``parts``: None when two of them use one name for different
        objects."""
        imports: dict[str, tuple[str, str | None, str | None]] = {}
        for part in parts:
            for name, binding in part.imports:
                have = imports.setdefault(name, binding)
                if (have[1] or have[0]) != (binding[1] or binding[0]):
                    return None
        return _Typed(code, tuple(imports.items()))

    def imports_for(
        self, bindings: dict[str, tuple[str, str | None, str | None] | None]
    ) -> dict[str, tuple[str, str | None, str | None]] | None:
        """The imports a module with ``bindings`` lacks to write this annotation; None when
        it binds one of its names to something else."""
        wanted = {}
        for name, binding in self.imports:
            if name in bindings:
                have = bindings[name]
                if have is None or (have[1] or have[0]) != (binding[1] or binding[0]):
                    return None
            else:
                wanted[name] = binding
        return wanted


@dataclasses.dataclass(frozen=True)
class _HelperTypes:
    """The annotations of a helper fixture: its inner function's ``arguments`` and
    ``result``, the fixtures it ``requests`` and what it returns (``helper``: a callable of
    the arguments)."""

    arguments: tuple[_Typed, ...]
    result: _Typed
    requests: tuple[tuple[str, _Typed], ...]
    helper: _Typed

    def every(self) -> list[_Typed]:
        return [*self.arguments, self.result, *(t for _, t in self.requests), self.helper]


def _helper_types(
    plan: _Plan,
    requested: Sequence[str],
    resolve: Callable[[str], fx.Fixture | None],
    config: Config,
    helpers: dict[str, _Typed] | None = None,
) -> _HelperTypes | None:
    """The annotations of ``plan``'s helper, requesting ``requested``: the session is a
    ``Session``, ``managers`` a ``SimpleNamespace`` (what ``create_all_managers``
    returns), every other name what its fixture returns as its definition annotates it (a
    helper it is built on: what that helper returns). None when one of them is unknown."""
    arguments = []
    for name in plan.arguments:
        if name == config.session_variable:
            arguments.append(_Typed.imported("sqlalchemy.orm", "Session"))
        elif name == config.managers_variable:
            arguments.append(_Typed.imported("types", "SimpleNamespace"))
        else:
            return None
    results = [_Typed.of_fixture(resolve(name)) for name in plan.returned]
    if any(r is None for r in results):
        return None
    known = [r for r in results if r is not None]
    result = (
        known[0]
        if len(known) == 1
        else _Typed.compose(f"tuple[{', '.join(r.code for r in known)}]", known)
    )
    requests = []
    for name in requested:
        if plan.base is not None and name == plan.base.name:
            typed = plan.base.types.helper if plan.base.types is not None else None
        elif helpers is not None and name in helpers:  # another helper, shared
            typed = helpers[name]
        else:
            typed = _Typed.of_fixture(resolve(name))
        if typed is None:
            return None
        requests.append((name, typed))
    if result is None:
        return None
    callable_ = _Typed.imported("collections.abc", "Callable")
    helper = _Typed.compose(
        f"{callable_.code}[[{', '.join(a.code for a in arguments)}], {result.code}]",
        [callable_, *arguments, result],
    )
    if helper is None:
        return None
    types = _HelperTypes(tuple(arguments), result, tuple(requests), helper)
    if _Typed.compose("", types.every()) is None:
        return None
    return types


@dataclasses.dataclass(eq=False)
class _Plan:
    """A helper fixture: the setup statements it runs (``key``: their code) and the tests
    that call it (with how many of their statements the call replaces). ``own``: passed
    names its inner function takes; ``names``: its tests' names; ``base``: the shorter
    helper it is built on; ``position``: the module statement it goes before."""

    key: tuple[str, ...]
    statements: list[cst.BaseStatement]
    cut: _Cut
    tests: list[tuple[cst.FunctionDef, _Setup, int]] = dataclasses.field(
        default_factory=list
    )
    own: set[str] = dataclasses.field(default_factory=set)
    names: set[str] = dataclasses.field(default_factory=set)
    returned: list[str] = dataclasses.field(default_factory=list)
    base: _Plan | None = None
    name: str = ""
    arguments: list[str] = dataclasses.field(default_factory=list)
    #: the fixtures pytest builds for it, directly or through the helper it is built on
    requests: set[str] = dataclasses.field(default_factory=set)
    position: int = 0
    #: written once in a conftest for several modules (:class:`SharedHelper`), not here
    external: bool = False
    #: annotated like the tests that call it (every one annotates its parameters)
    annotate: bool = False
    #: its annotations, once known (:func:`_helper_types`)
    types: _HelperTypes | None = None

    @property
    def fixtures(self) -> list[str]:
        """The passed names it requests as fixtures (before it is built on a helper)."""
        return [n for n in self.cut.passed[self.cut.first :] if n not in self.own]


@dataclasses.dataclass(frozen=True)
class SharedHelper:
    """A helper fixture that tests of several modules call, written once into the fixture
    module nearest to all of them (``home``, a conftest) by :func:`generate`: its setup code
    (``key``), its name, its definition (``code``), what it is passed (``passed``: the
    session, ``managers``, then the fixtures it requests; ``first`` of them are arguments),
    binds (``assigned``) and returns, the fixtures pytest builds for it (``requests``), the
    imports its code needs (``imports``: (module, obj, asname)), the helper it is built on
    (``base``: its key), the test modules that may call it (``modules``) and whether the
    fixture module defines it already (``written``: the same code, under that name)."""

    key: tuple[str, ...]
    name: str
    home: str
    code: str
    passed: tuple[str, ...]
    first: int
    assigned: tuple[str, ...]
    returned: tuple[str, ...]
    requests: frozenset[str]
    imports: tuple[tuple[str, str | None, str | None], ...]
    modules: frozenset[str]
    base: tuple[str, ...] | None = None
    #: the fixture module has it already (written by a run over other modules)
    written: bool = False
    #: what it returns, annotated (when the tests calling it annotate their parameters)
    typed: _Typed | None = None


def _external_plan(helper: SharedHelper) -> _Plan:
    """The plan of a helper a conftest defines for this module and others."""
    cut = _Cut(helper.passed, frozenset(), helper.assigned, frozenset(), helper.first)
    return _Plan(
        helper.key,
        [],
        cut,
        name=helper.name,
        returned=list(helper.returned),
        arguments=list(helper.passed[: helper.first]),
        requests=set(helper.requests),
        external=True,
        types=(
            _HelperTypes((), helper.typed, (), helper.typed)
            if helper.typed is not None
            else None
        ),
    )


def _without_leading(stmt: cst.BaseStatement) -> cst.BaseStatement:
    if hasattr(stmt, "leading_lines"):
        return stmt.with_changes(leading_lines=[])
    return stmt


def _plain_assignment(
    stmt: cst.BaseStatement,
) -> tuple[set[str], cst.BaseExpression] | None:
    """``a = <value>`` or ``a, b = <value>`` (names only): the names and the value."""
    if not (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Assign)
    ):
        return None
    assign = stmt.body[0]
    names: set[str] = set()
    for target in assign.targets:
        node = target.target
        elements = (
            [e.value for e in node.elements]
            if isinstance(node, (cst.Tuple, cst.List))
            else [node]
        )
        for element in elements:
            if not isinstance(element, cst.Name):
                return None
            names.add(element.value)
    return names, assign.value


def _needed(
    bound: set[str], rest: Sequence[cst.BaseStatement], memo: fx.ScanMemo | None = None
) -> set[str]:
    """The names of ``bound`` that ``rest`` (straight-line statements) reads before an
    assignment of its own rebinds them (nested functions' reads count where defined).
    ``memo``: scans already made (:func:`refactor_tool.model.fixtures.scan`)."""
    needed: set[str] = set()
    killed: set[str] = set()
    for stmt in rest:
        live = bound - killed - needed
        if not live:
            break
        plain = _plain_assignment(stmt)
        if plain is None:
            needed |= set(fx.scan([stmt], memo=memo).used) & live
            continue
        targets, value = plain
        needed |= set(fx.scan([value], memo=memo).used) & live
        killed |= (targets & live) - needed
    return needed


def _read_by_half(callers: Sequence[frozenset[str]]) -> set[str]:
    """The names at least half of ``callers`` (what each reads) read, of those that read
    any (one that reads none calls it for what it does, whatever it returns)."""
    counts: dict[str, int] = {}
    for names in callers:
        for name in names:
            counts[name] = counts.get(name, 0) + 1
    reading = sum(1 for names in callers if names)
    return {name for name, count in counts.items() if 2 * count >= reading}


def _returned(
    callers: Sequence[tuple[frozenset[str], int]], spare: bool = True
) -> set[str]:
    """What a helper returns, from what each of its callers reads of it and how many lines
    of its statements that caller would run itself if it did not call it: what at least
    half of those that read any read, unless the callers that read more would then run
    more lines themselves than there are callers spared names they do not read; then
    everything they read."""
    everything = set().union(*(names for names, _ in callers))
    keep = _read_by_half([names for names, _ in callers])
    if keep == everything:
        return keep
    cost = sum(lines for names, lines in callers if not names <= keep)
    spared = sum(1 for names, _ in callers if names and names <= keep)
    return keep if cost <= spared else everything


def _lines_of(codes: Sequence[str]) -> int:
    return sum(max(1, code.count("\n")) for code in codes)


def _settle_callers(
    tests: list[Any],
    longer: list[Any],
    keep: set[str],
    enough: Callable[[list[Any], list[Any]], bool],
    retake: Callable[[Any, _Setup, int], None],
    find_base: Callable[[_Plan, _Setup, int], None],
    below: int,
) -> tuple[list[Any], list[Any]]:
    """The callers of a helper that returns the names ``keep``: the tests (``(caller,
    setup...), read`` pairs) and longer helpers (``(plan, setup, read)``) that read no more
    than it returns, if ``enough`` of them do. The others go back to a shorter helper or
    their own setup (``retake``, ``find_base``, for the first ``below`` statements)."""
    fit = [t for t, n in tests if n <= keep]
    fit_longer = [b for b in longer if b[2] <= keep]
    if not enough(fit, fit_longer):
        fit, fit_longer = [], []
    for t, n in tests:
        if not n <= keep or not fit:
            retake(t[0], t[1], below)
    for other, pseudo, n in longer:
        if not n <= keep or not fit_longer:
            find_base(other, pseudo, below)
    return fit, fit_longer


def _prefix_plans(plans: dict[tuple[str, ...], _Plan], codes: tuple[str, ...]) -> list[_Plan]:
    """The helpers whose statements ``codes`` starts with (and has more), longest first."""
    found = [p for k, p in plans.items() if len(k) < len(codes) and codes[: len(k)] == k]
    return sorted(found, key=lambda p: len(p.key), reverse=True)


def _own_lines(
    plans: dict[tuple[str, ...], _Plan], codemod: RefactorTestFunctions, setup: _Setup, end: int
) -> int:
    """The lines of the first ``end`` statements of ``setup`` that a test not calling their
    helper runs itself (a shorter helper it can call runs the first ones)."""
    start = max(
        (
            len(c.key)
            for c in _prefix_plans(plans, setup.codes)
            if len(c.key) < end and codemod._cut(setup, len(c.key)) is not None
        ),
        default=0,
    )
    return _lines_of(setup.codes[start:end])


def _helper_name(returned: list[str], taken: Callable[[str], bool]) -> str:
    """``make_<what it returns>`` (a ``test_`` prefix left out), not ``taken``: named after
    the last name it returns (what the others were made for), else after all of them."""
    parts = [n.removeprefix("test_") or n for n in returned]
    for base in dict.fromkeys(("make_" + parts[-1], "make_" + "_".join(parts))):
        if not taken(base):
            return base
    name, number = base, 2
    while taken(name):
        name, number = f"{base}_{number}", number + 1
    return name


def _call(plan: _Plan, needed: bool) -> cst.BaseStatement:
    """The statement that runs ``plan``'s helper: unpacking what it returns if ``needed``."""
    call = f"{plan.name}({', '.join(plan.arguments)})"
    if needed:
        call = f"{', '.join(plan.returned)} = {call}"
    return cst.parse_statement(call + "\n")


def _helper(
    plan: _Plan, stmts: list[cst.BaseStatement], requested: list[str], decorator: str
) -> cst.FunctionDef:
    """The helper fixture: it requests the fixtures ``requested`` and returns a function of
    its arguments (the session first) that runs ``stmts`` and returns ``plan.returned``."""
    returned = plan.returned
    stmts = [_without_leading(stmts[0]), *stmts[1:]]
    last = stmts[-1]
    plain = _plain_assignment(last)
    if (
        len(returned) == 1
        and plain is not None
        and plain[0] == {returned[0]}
        and returned[0] not in fx.scan([plain[1]]).used
    ):  # ``x = <expr>`` then ``return x``: ``return <expr>``
        line = cst.ensure_type(last, cst.SimpleStatementLine)
        stmts[-1] = line.with_changes(body=[cst.Return(value=plain[1])])
    elif (
        len(returned) > 1
        and plain is not None
        and plain[0] == {returned[-1]}
        and returned[-1] not in returned[:-1]
        and isinstance(plain[1], cst.Call)
        and returned[-1] not in fx.scan([plain[1]]).used
    ):  # ``x = f(...)`` then ``return a, x``: ``return a, f(...)``
        line = cst.ensure_type(last, cst.SimpleStatementLine)
        value = cst.ensure_type(
            cst.parse_expression(f"({', '.join(returned[:-1])}, _)"), cst.Tuple
        )
        elements = [*value.elements[:-1], value.elements[-1].with_changes(value=plain[1])]
        stmts[-1] = line.with_changes(
            body=[cst.Return(value=value.with_changes(elements=elements, lpar=[], rpar=[]))]
        )
    else:
        stmts.append(cst.parse_statement(f"return {', '.join(returned)}\n"))
    # what the helper binds and neither returns nor reads again: only its calls are run
    stmts = rewrite.drop_unread_bindings(stmts, lambda s: True)
    scan = scope_scan(stmts)
    seen = {*scan.used, *scan.bound, *plan.arguments, *requested, plan.name}
    inner_name = "make"
    while inner_name in seen:
        inner_name += "_"
    types = plan.types
    if types is not None:
        arguments = [f"{a}: {t.code}" for a, t in zip(plan.arguments, types.arguments)]
        signature = f"({', '.join(arguments)}) -> {types.result.code}"
        fixtures = dict(types.requests)
        outer = [f"{n}: {fixtures[n].code}" for n in requested]
        outer_signature = f"({', '.join(outer)}) -> {types.helper.code}"
    else:
        signature = f"({', '.join(plan.arguments)})"
        outer_signature = f"({', '.join(requested)})"
    inner = cst.ensure_type(
        cst.parse_statement(f"def {inner_name}{signature}:\n    pass\n"),
        cst.FunctionDef,
    ).with_changes(body=cst.IndentedBlock(body=stmts))
    fn = cst.ensure_type(
        cst.parse_statement(f"@{decorator}\ndef {plan.name}{outer_signature}:\n    pass\n"),
        cst.FunctionDef,
    )
    ret = cst.ensure_type(
        cst.parse_statement(f"return {inner_name}\n"), cst.SimpleStatementLine
    ).with_changes(leading_lines=[cst.EmptyLine(indent=False)])
    return fn.with_changes(
        body=cst.IndentedBlock(body=[inner, ret]),
        leading_lines=[cst.EmptyLine(indent=False), cst.EmptyLine(indent=False)],
    )


def _reads_base(plan: _Plan, base: _Plan) -> bool:
    """Whether the helper ``plan``, built on ``base``, reads what ``base`` returns."""
    rest = [
        *plan.statements[len(base.key) :],
        cst.parse_statement(f"return {', '.join(plan.returned)}\n"),
    ]
    return bool(_needed(set(base.returned), rest))


def _helper_code(
    plan: _Plan,
    decorator: str,
    annotations: Callable[[_Plan, list[str]], _HelperTypes | None] | None = None,
) -> cst.FunctionDef:
    """``plan``'s helper fixture (a call of the helper it is built on first, if any); sets
    ``plan.requests``, and ``plan.types`` from ``annotations`` (given what it requests)
    when the plan is to be annotated."""
    stmts = list(plan.statements)
    requested = plan.fixtures
    plan.requests = set(requested)
    if plan.base is not None:
        base = plan.base
        stmts = [_call(base, _reads_base(plan, base)), *stmts[len(base.key) :]]
        reads = set(
            fx.scan(
                [*stmts, cst.parse_statement(f"return {', '.join(plan.returned)}\n")]
            ).used
        )
        requested = [n for n in [base.name, *requested] if n in reads]
        plan.requests = set(requested) | base.requests
    if plan.annotate and annotations is not None:
        plan.types = annotations(plan, requested)
    return _helper(plan, stmts, requested, decorator)


def _annotates(fn: cst.FunctionDef | None) -> bool:
    """Whether the test ``fn`` annotates its parameters (one of them at least)."""
    return fn is not None and any(p.annotation is not None for p in fn.params.params)


def _call_setup(
    fn: cst.FunctionDef,
    setup: _Setup,
    count: int,
    call: cst.BaseStatement,
    plan: _Plan,
    ctx: str,
    annotation: cst.BaseExpression | None = None,
) -> cst.FunctionDef:
    """``fn`` (a rewritten test) with its first ``count`` setup statements replaced by
    ``call``, asking for the helper fixture (annotated with ``annotation``) instead of the
    fixtures it requested that only the helper reads now (pytest still builds them, for
    the helper)."""
    suite = cst.ensure_type(fn.body, cst.IndentedBlock)
    with_stmt = cst.ensure_type(suite.body[-1], cst.With)
    block = list(cst.ensure_type(with_stmt.body, cst.IndentedBlock).body)
    block[setup.start : setup.start + count] = [call]
    body = [
        *suite.body[:-1],
        with_stmt.with_changes(body=with_stmt.body.with_changes(body=block)),
    ]
    reads = set(fx.scan(body).used)
    names = [p.name.value for p in fn.params.params]
    dropped = [
        p.name.value
        for p in fn.params.params
        if p.default is None
        and p.name.value in plan.requests
        and p.name.value not in reads
        and p.name.value not in setup.own
        and p.name.value not in ("self", ctx)
    ]
    at = None
    if not dropped:  # after the session context (before any parameter with a default)
        at = names.index(ctx) + 1 if ctx in names else len(names)
        first_default = next(
            (i for i, p in enumerate(fn.params.params) if p.default is not None),
            len(names),
        )
        at = min(at, first_default)
    params = rewrite.edit_params(
        fn.params, remove=dropped, insert=[rewrite.new_param(plan.name, annotation)], at=at
    )
    return fn.with_changes(params=params, body=suite.with_changes(body=body))


def _autouse_fixtures(body: Sequence[cst.CSTNode]) -> list[tuple[str, cst.CSTNode]]:
    """The autouse fixtures a module or class body defines, each with its definition: like
    a ``usefixtures`` mark there, each runs before every test of the body."""
    return [
        (fx.registered_name(stmt), stmt)
        for stmt in body
        if isinstance(stmt, cst.FunctionDef)
        and fx.is_fixture(stmt)
        and any(matches(d, fx.AUTOUSE_DECORATOR) for d in stmt.decorators)
    ]


def _with_setup(
    fn: cst.FunctionDef, start: int, count: int, statements: list[cst.BaseStatement]
) -> cst.FunctionDef:
    """``fn`` (a rewritten test) with the ``count`` setup statements at ``start`` of its
    ``with`` block replaced by ``statements``."""
    suite = cst.ensure_type(fn.body, cst.IndentedBlock)
    with_stmt = cst.ensure_type(suite.body[-1], cst.With)
    block = list(cst.ensure_type(with_stmt.body, cst.IndentedBlock).body)
    block[start : start + count] = statements
    with_stmt = with_stmt.with_changes(body=with_stmt.body.with_changes(body=block))
    return fn.with_changes(body=suite.with_changes(body=[*suite.body[:-1], with_stmt]))


def _fixtures_defined(body: Sequence[cst.CSTNode]) -> set[str]:
    """The fixtures defined in ``body`` and in the classes in it."""
    out: set[str] = set()
    for stmt in body:
        if isinstance(stmt, cst.FunctionDef) and fx.is_fixture(stmt):
            out.add(stmt.name.value)
        elif isinstance(stmt, cst.ClassDef) and isinstance(
            stmt.body, cst.IndentedBlock
        ):
            out |= _fixtures_defined(stmt.body.body)
    return out


class _Skip(Exception):
    """A test the codemod leaves unchanged (the message was reported)."""


# ------------------------------------------------------------------------------- the codemod


class RefactorTestFunctions(RefactorCodemod):
    STEP = "5.2"
    DESCRIPTION = (
        "Wrap each database test in `with session_context as session:`, build managers with "
        "create_all_managers(session), inline the object fixtures it used through the "
        "create_test_* factories, pass `session` to every factory call."
    )
    ANALYZE = analyze
    #: when set, only the tests that request one of these names are looked at
    only_for: set[str] | None = None
    #: only decide which tests are rewritten and which are left alone (``left_alone``): a
    #: test that would be rewritten is not built
    decide_only: bool = False
    #: only rewrite the tests and keep their setups (:func:`shared_helpers`): no helper is
    #: made and the module is not finished
    survey: bool = False

    def visit_Module(self, node: cst.Module) -> None:
        analysis: fx.FixtureAnalysis = self.analysis
        rel = relpath_for(self.context.filename, analysis.root)
        if rel is None:
            raise SkipFile("outside the target")
        self._rel = rel
        self._bindings = fx.top_level_bindings(node)
        self._module = node
        facts = analysis.cache.get(_TEXT_FACTS, {}).get(rel)
        self._fetches = facts.fetches if facts else fx.fetches_by_name(node)
        #: whether a test may construct a manager (the module's text names a manager
        #: class): see :meth:`_sessionless`
        self._names_managers = analysis.managers is not None and (
            facts is None or facts.names_a_manager
        )
        self._local_fixtures = {
            s.name.value: s
            for s in node.body
            if fx.is_fixture(s)  # type: ignore[attr-defined]
        }
        self._classes: list[str] = []
        #: the classes of the module by name (a test class's bases whose fixtures it gets)
        self._module_classes = {
            s.name.value: s for s in node.body if isinstance(s, cst.ClassDef)
        }
        #: the fixture definitions each enclosing class gives its tests (its bases' first)
        self._class_layers: list[list[cst.FunctionDef]] = []
        #: the fixtures of the module and of its classes, as the tests of a class see them
        self._local_tables: dict[tuple[str, ...], dict[str, fx.Fixture]] = {}
        #: fixtures of the module (or of its classes) inlined into a rewritten test, by
        #: (name, line); and the lines of the definitions as they leave ``leave_FunctionDef``
        self._inlined_local: set[tuple[str, int]] = set()
        self._fixture_lines: dict[int, int] = {}
        #: the notes about a fixture of the module, held back until it is known to stay
        #: (registered name, line) -> [(node, message)]
        self._deferred: dict[tuple[str, int], list[tuple[cst.CSTNode, str]]] = {}
        self._deferring: tuple[str, int] | None = None
        #: ``decide_only``: the tests it would rewrite (ids of what it returned for them),
        #: and the names of the module's own fixtures it would then drop
        self._decided: set[int] = set()
        self.dropped_fixtures: set[str] = set()
        #: the fixtures ``usefixtures`` marks request for every test of the module, then of
        #: each enclosing class (``pytestmark``, class decorators)
        self._marked: list[list[tuple[str, cst.CSTNode]]] = [
            [*_pytestmark_fixtures(node.body), *_autouse_fixtures(node.body)]
        ]
        #: a mark that leaves tests alone (id) -> (the mark, the fixture, those tests)
        self._mark_skips: dict[int, tuple[cst.CSTNode, str, list[str]]] = {}
        #: the fixtures each enclosing class defines (a helper fixture cannot request them)
        self._class_fixture_names: list[set[str]] = []
        #: every fixture the module defines, in a class or not (a helper's name is none)
        self._module_fixture_names = _fixtures_defined(node.body)
        self._depth = 0
        self._changed = False
        #: rewritten tests and the setup they start with (see ``_setup_of``)
        self._setups: list[tuple[cst.FunctionDef, _Setup]] = []
        #: (factory, overriding fixture) pairs reported (``_report_lost_overrides``)
        self._lost_overrides: set[tuple[str, str, str, int]] = set()
        self._setup: _Setup | None = None
        self._cuts: dict[tuple[int, int], _Cut | None] = {}
        self._pseudo: list[_Setup] = []
        #: the test functions left as they are (reported, or needing nothing)
        self.untouched: list[cst.FunctionDef] = []
        # the graph does not change while a module is rewritten: each lookup is made once
        self._resolved: dict[str, fx.Fixture | None] = {}
        self._graph_resolved: dict[tuple[str, str], fx.Fixture | None] = {}
        #: scans and shapes of the statements looked at in this module (:func:`fx.scan`,
        #: :func:`_shape`)
        self._scans: fx.ScanMemo = {}
        self._shapes: ShapeMemo = {}
        #: the ``with session_context`` items of the rewritten tests and the inlined
        #: statements in their blocks (by id; the nodes are kept alive in ``_made``)
        self._blocks: set[int] = set()
        self._inlined: set[int] = set()
        self._made: list[cst.CSTNode] = []
        #: the recipes inlined in this module so far, with their comments (the first time)
        self._explained: set[tuple[str, int, str]] = set()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.append(node.name.value)
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
        self._marked.append(
            [
                *((n, d) for d in node.decorators for n in fx.usefixtures_names(d)),
                *_pytestmark_fixtures(body),
                *_autouse_fixtures(body),
            ]
        )
        self._class_fixture_names.append(
            {
                s.name.value
                for s in (
                    node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
                )
                if isinstance(s, cst.FunctionDef) and fx.is_fixture(s)
            }
        )
        self._class_layers.append(self._class_fixture_defs(node, set()))

    def _class_fixture_defs(
        self, node: cst.ClassDef, seen: set[str]
    ) -> list[cst.FunctionDef]:
        """The fixtures a class gives its tests: those of its bases defined in the module
        (the first base last, so that it wins, as in Python's lookup), then its own."""
        seen.add(node.name.value)
        out: list[cst.FunctionDef] = []
        for base in reversed(node.bases):
            if isinstance(base.value, cst.Name):
                parent = self._module_classes.get(base.value.value)
                if parent is not None and parent.name.value not in seen:
                    out += self._class_fixture_defs(parent, seen)
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
        out += [s for s in body if isinstance(s, cst.FunctionDef) and fx.is_fixture(s)]
        return out

    def leave_ClassDef(
        self, original_node: cst.ClassDef, updated_node: cst.ClassDef
    ) -> cst.ClassDef:
        self._classes.pop()
        self._class_fixture_names.pop()
        self._class_layers.pop()
        self._marked.pop()
        return updated_node

    def _database_fixture(self, name: str) -> bool:
        fixture = self._resolve(name)
        return (
            fixture is not None and fixture.kind in fx.DB_KINDS
        ) or name == self.config.session_fixture

    def _skip_marked(self, fn: cst.FunctionDef, used: str) -> None:
        """Leave ``fn`` alone when a ``usefixtures`` mark on it requests a database
        fixture ``used`` (the mark would still request it)."""
        if self._database_fixture(used):
            self._skip(
                fn,
                f"{fn.name.value}: requests {used!r} through usefixtures; rewrite by hand",
            )

    def _class_fixtures(self) -> set[str]:
        return set().union(*self._class_fixture_names)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self._depth += 1
        return False  # a test is rewritten as a whole in leave_FunctionDef

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        self._depth -= 1
        if self._depth:
            return updated_node
        if not fx.is_test_function(original_node, self.analysis.naming):
            if fx.is_fixture(original_node) and not self.decide_only:
                line = self._lines.start(original_node) or 0
                self._deferring = (fx.registered_name(original_node), line)
                try:
                    result = self._local_fixture(original_node, updated_node)
                finally:
                    self._deferring = None
                self._fixture_lines[id(result)] = line
                self._made.append(result)
                return result
            return updated_node
        return self._test_function(original_node, updated_node)

    def report(self, node: cst.CSTNode, message: str) -> None:
        if self._deferring is not None:
            self._deferred.setdefault(self._deferring, []).append((node, message))
            return
        super().report(node, message)

    def _report_deferred(self, gone: Container[tuple[str, int | None]]) -> None:
        """The held-back notes of the module's fixtures, but those of the fixtures the
        rewrite deleted (``gone``): their code is no longer there for a person."""
        deferred, self._deferred = self._deferred, {}
        for key, notes in deferred.items():
            if key not in gone:
                for node, message in notes:
                    self.report(node, message)

    def _local_fixture(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        """A fixture of the test module stays: it passes the session to the factories
        phase 4 rewrote, as a test left as it is does (not one whose calls pass a session
        already)."""
        graph = self.analysis.graph
        factories = {
            n
            for n in fx.requested_names(original_node, bool(self._classes), False)
            if (f := graph.resolve_current(n, self._rel)) is not None
            and f.kind == fx.FACTORY
        }
        if fx.passes_no_session(
            original_node,
            factories,
            {self.config.session_fixture, self.config.session_variable},
        ):
            return self._session_to_factories(original_node, updated_node)
        return updated_node

    def _test_function(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        if self.only_for is not None and not self.only_for.intersection(
            fx.requested_names(original_node, bool(self._classes), self._fetches)
        ):
            return (
                updated_node  # a question about other tests only (see ``left_alone``)
            )
        result = updated_node
        self._setup = None
        if all(self.analysis.naming.is_test_class_name(c) for c in self._classes):
            try:
                result = self._rewrite(original_node)
            except _Skip:
                self._setup = None
                self.untouched.append(original_node)
                if self.decide_only:
                    return updated_node
                return self._session_to_factories(original_node, updated_node)
        if result is original_node or result is updated_node:
            self.untouched.append(original_node)
        elif self.decide_only:
            self._decided.add(id(result))
        elif self._setup is not None:
            self._setups.append((result, self._setup))
        return result

    # ---------------------------------------------------------------- shared setup
    def _setup_of(
        self,
        inlined: list[cst.BaseStatement],
        body: list[cst.BaseStatement],
        params: list[str],
        start: int,
        own: set[str],
        managers: frozenset[int] = frozenset(),
    ) -> _Setup | None:
        """The inlined statements a test starts with (two or more), which a module-level
        helper may run, all or the first few (see ``_cut``). ``own``: the test's names
        that are not the fixtures a module-level fixture would get (its ``parametrize``
        arguments, its classes' fixtures)."""
        if len(inlined) < 2:  # a helper in place of one line says nothing more
            return None
        codes = tuple(cst.Module(body=[_without_leading(s)]).code for s in inlined)
        bound = scope_scan([*inlined, *body], self._scans).bound
        return _Setup(
            list(inlined),
            codes,
            list(body),
            list(params),
            start,
            frozenset(own),
            frozenset({*params, *own, *bound}),
            managers,
        )

    def _managers_last(self, setup: _Setup) -> _Setup | None:
        """``setup`` with the statements that build managers after the others, where that
        changes nothing: they read nothing the others bind and the others read nothing
        they bind (``None`` where they are last already or cannot move)."""
        moved = [s for i, s in enumerate(setup.statements) if i in setup.managers]
        stay = [s for i, s in enumerate(setup.statements) if i not in setup.managers]
        order = [*stay, *moved]
        if not moved or not stay or all(a is b for a, b in zip(order, setup.statements)):
            return None
        moved_scan = scope_scan(moved, self._scans)
        stay_scan = scope_scan(stay, self._scans)
        if moved_scan.bound & set(stay_scan.used) or stay_scan.bound & set(moved_scan.used):
            return None
        variant = dataclasses.replace(
            setup,
            statements=order,
            codes=tuple(cst.Module(body=[_without_leading(s)]).code for s in order),
            managers=frozenset(range(len(stay), len(order))),
        )
        self._pseudo.append(variant)  # alive while its cuts are cached by id
        return variant

    def _cut(self, setup: _Setup, count: int) -> _Cut | None:
        """What a helper running the first ``count`` (two or more) statements of ``setup``
        would take and give, if one can: every name they read is the session,
        ``managers``, a fixture the test requests or a name of the module (or a builtin),
        and the rest of the test rebinds none of the names the helper is passed, nor one it
        must return (a name the rest rebinds before reading it is not returned)."""
        key = (id(setup), count)
        if key in self._cuts:
            return self._cuts[key]
        self._cuts[key] = None
        config = self.config
        memo = self._scans
        head = setup.statements[:count]
        rest = [*setup.statements[count:], *setup.body]
        shape = _shape(head, config.session_variable, self._shapes)
        if count < 2 or shape.returns:
            return None
        if sum(1 for i in range(count) if i not in setup.managers) < 2:
            # a manager built beside one line of data: the test says it as well itself
            return None
        if any(i in setup.managers for i in range(count)):
            # a helper returning managers and objects hides both: the test builds its
            # managers itself (after the helper's objects, where nothing between reads them)
            return None
        bound = scope_scan(head, memo).bound
        free = [
            n for n in dict.fromkeys(fx.scan(head, memo=memo).used) if n not in bound
        ]
        fixtures = [p for p in setup.params if p != "self"]
        passed: list[str] = []
        for name in free:
            if name in (config.session_variable, config.managers_variable) or (
                name in fixtures
            ):
                passed.append(name)
            elif name not in self._bindings and not hasattr(builtins, name):
                return None
        needed = _needed(bound, rest, memo)
        if scope_scan(rest, memo).bound & {*passed, *needed}:
            return None
        first = [config.session_variable]
        if config.managers_variable in passed:
            first.append(config.managers_variable)
        others = [n for n in passed if n not in first]
        not_fixtures = {
            n
            for n in others
            if n in setup.own or n == "self" or self._resolve(n) is None
        }
        assigned = tuple(n for n in dict.fromkeys(shape.assigned) if n in bound)
        cut = _Cut(
            (*first, *others),
            frozenset(needed),
            assigned,
            frozenset(not_fixtures),
            len(first),
        )
        self._cuts[key] = cut
        return cut

    def leave_Module(
        self, original_node: cst.Module, updated_node: cst.Module
    ) -> cst.Module:
        if self.decide_only:
            # which of the module's own fixtures go (``left_alone`` counts no request of
            # theirs): the tests to be rewritten request none of them any more
            dropped = self._dropped_fixtures(updated_node, self._decided)
            kept = {
                fx.registered_name(f)
                for f in self._fixture_defs(updated_node.body)
                if id(f) not in dropped
            }
            self.dropped_fixtures = {
                fx.registered_name(f)
                for f in self._fixture_defs(updated_node.body)
                if id(f) in dropped
            } - kept
            return updated_node
        if self.survey:
            self._surveyed = updated_node
            self._survey_original = original_node
            return updated_node
        return self._finish(original_node, updated_node)

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        """The module rewritten; a module :func:`shared_helpers` rewrote already from this
        very tree is finished from where the survey stopped (once) instead of rewritten
        again."""
        rel = relpath_for(self.context.filename, self.analysis.root)
        survey = self.analysis.cache.get(_SURVEYED, {}).pop(rel, None)
        if survey is None or survey[0] is not tree:
            return super().transform_module_impl(tree)
        codemod = survey[1]
        codemod.survey = False
        module = codemod._finish(codemod._survey_original, codemod._surveyed)
        self._lines = codemod._lines
        self.notes, self.tree_lines = codemod.notes, codemod.tree_lines
        self.context.warnings.extend(codemod.context.warnings)
        self.context.scratch.update(codemod.context.scratch)
        return module

    def _finish(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        """The rewritten module with its helpers, without what the rewrite left unread (nor
        the imports only what it removed used: the annotations of the old fixture
        parameters)."""
        module = self._share_setups(updated_node)
        if not self._blocks:
            self._report_deferred(())
            return module
        module = module.with_changes(body=[self._unread(s) for s in module.body])
        module = self._without_inlined_fixtures(module)
        module = self._helpers_take_the_session(module)
        graph = self.analysis.graph
        if any(g is not None and g.star_imported(self._rel) for g in (graph, graph.fallback)):
            return module
        return rewrite.drop_imports_made_unused(original_node, module)

    def _helpers_take_the_session(self, module: cst.Module) -> cst.Module:
        """The module's plain functions (no test, no fixture: ``repair_bench(db_session)``)
        with a parameter named like the session fixture, which the rewritten tests hand
        their session now, name it like the session: ``repair_bench(session)``. Not where the
        function already uses that name, nor where the module passes that parameter by
        keyword."""
        config = self.config
        old, new = config.session_fixture, config.session_variable
        naming = self.analysis.naming

        def named(stmt: cst.BaseStatement) -> list[cst.Param]:
            """The parameters of a plain function of the module named like the fixture."""
            if (
                not isinstance(stmt, cst.FunctionDef)
                or fx.is_fixture(stmt)
                or fx.is_test_function(stmt, naming)
                or not isinstance(stmt.body, cst.IndentedBlock)
            ):
                return []
            params = stmt.params
            return [
                p
                for p in (*params.posonly_params, *params.params, *params.kwonly_params)
                if p.name.value == old
            ]

        if (
            old == new
            or not any(named(s) for s in module.body)
            or findall(module, m.Arg(keyword=m.Name(old)))
        ):
            return module

        def renamed(stmt: cst.BaseStatement) -> cst.BaseStatement:
            found = named(stmt)
            if not found:
                return stmt
            assert isinstance(stmt, cst.FunctionDef) and isinstance(stmt.body, cst.IndentedBlock)
            params = stmt.params
            names = fx.scan([stmt.body], memo=self._scans)
            taken = {*names.used, *names.bound, *(p.name.value for p in _every_param(params))}
            if new in taken:
                return stmt
            body, rewriter = rewrite.rewrite_names(
                list(stmt.body.body), {old: cst.Name(new)}, (), new
            )
            if rewriter.conflicts:
                return stmt
            param = found[0]
            return stmt.with_deep_changes(param, name=cst.Name(new)).with_changes(
                body=stmt.body.with_changes(body=body)
            )

        return module.with_changes(body=[renamed(s) for s in module.body])

    @staticmethod
    def _fixture_defs(body: Sequence[cst.BaseStatement]) -> Iterator[cst.FunctionDef]:
        """The fixtures of a module and of its classes."""
        for stmt in body:
            if isinstance(stmt, cst.FunctionDef) and fx.is_fixture(stmt):
                yield stmt
            elif isinstance(stmt, cst.ClassDef) and isinstance(stmt.body, cst.IndentedBlock):
                yield from RefactorTestFunctions._fixture_defs(stmt.body.body)

    def _without_inlined_fixtures(self, module: cst.Module) -> cst.Module:
        """The module without the fixtures of its own (or of its classes) that rewritten
        tests now build themselves and that nothing left requests (:meth:`_dropped_fixtures`)."""
        dropped = self._dropped_fixtures(module)
        self._report_deferred(
            {
                (fx.registered_name(f), self._fixture_lines.get(id(f)))
                for f in self._fixture_defs(module.body)
                if id(f) in dropped
            }
        )
        if not dropped:
            return module
        return self._without(module, dropped)

    def _dropped_fixtures(self, module: cst.Module, skip: Container[int] = ()) -> set[int]:
        """The fixtures of the module (or of its classes), as ids of their definitions, that
        rewritten tests build themselves now and that nothing left requests: no test, no
        fixture that stays, no ``usefixtures`` mark (a name any of them asks for keeps every
        definition of it; a name fetched with a computed ``getfixturevalue`` keeps all).
        ``skip``: functions whose requests do not count (the tests ``decide_only`` found it
        would rewrite, still as they were)."""
        graph = self.analysis.graph
        if not self._inlined_local or any(
            self._rel in g.modules for g in (graph, graph.fallback) if g is not None
        ):  # a module other modules pull fixtures from keeps them all
            return set()
        if self._fetches and None in fx.getfixturevalue_names(module):
            return set()
        dropped: set[int] = set()

        def inlined(stmt: cst.CSTNode) -> bool:
            if not isinstance(stmt, cst.FunctionDef):
                return False
            line = self._fixture_lines.get(id(stmt))
            if line is None and self.decide_only:
                line = self._lines.start(stmt)
            return (fx.registered_name(stmt), line) in self._inlined_local

        def requests(body: Sequence[cst.BaseStatement], method: bool) -> set[str]:
            out: set[str] = set()
            for stmt in body:
                if isinstance(stmt, cst.FunctionDef):
                    if id(stmt) not in dropped and id(stmt) not in skip:
                        out.update(fx.requested_names(stmt, method, self._fetches))
                elif isinstance(stmt, cst.ClassDef):
                    for decorator in stmt.decorators:
                        out.update(fx.usefixtures_names(decorator))
                    if isinstance(stmt.body, cst.IndentedBlock):
                        out |= requests(stmt.body.body, True)
                else:
                    out.update(name for name, _ in _pytestmark_fixtures([stmt]))
            return out

        def candidates(body: Sequence[cst.BaseStatement]) -> Iterator[cst.FunctionDef]:
            for stmt in body:
                if inlined(stmt):
                    yield cst.ensure_type(stmt, cst.FunctionDef)
                elif isinstance(stmt, cst.ClassDef) and isinstance(
                    stmt.body, cst.IndentedBlock
                ):
                    yield from candidates(stmt.body.body)

        found = list(candidates(module.body))
        while True:  # a fixture dropped may have been the last to request another
            asked = requests(module.body, False)
            more = {
                id(f)
                for f in found
                if id(f) not in dropped and fx.registered_name(f) not in asked
            }
            if not more:
                break
            dropped |= more
        return dropped

    def _without(self, module: cst.Module, dropped: set[int]) -> cst.Module:
        def without(body: Sequence[cst.BaseStatement]) -> list[cst.BaseStatement]:
            out: list[cst.BaseStatement] = []
            for stmt in body:
                if id(stmt) in dropped:
                    continue
                if isinstance(stmt, cst.ClassDef) and isinstance(
                    stmt.body, cst.IndentedBlock
                ):
                    inner = without(stmt.body.body)
                    if len(inner) != len(stmt.body.body):
                        if not inner:
                            inner = [cst.SimpleStatementLine(body=[cst.Pass()])]
                        elif id(stmt.body.body[0]) in dropped:
                            inner[0] = _strip_blank_leading(inner[0])
                        stmt = stmt.with_changes(body=stmt.body.with_changes(body=inner))
                out.append(stmt)
            return out

        gone = [
            name.value
            for node in self._dropped_nodes(module.body, dropped)
            for name in findall(node, m.Name())
        ]
        imported = {n for n in gone if self._bindings.get(n) is not None}
        return rewrite.remove_unused_imports(
            module.with_changes(body=without(module.body)), imported
        )

    @staticmethod
    def _dropped_nodes(
        body: Sequence[cst.BaseStatement], dropped: set[int]
    ) -> Iterator[cst.BaseStatement]:
        for stmt in body:
            if id(stmt) in dropped:
                yield stmt
            elif isinstance(stmt, cst.ClassDef) and isinstance(stmt.body, cst.IndentedBlock):
                yield from RefactorTestFunctions._dropped_nodes(stmt.body.body, dropped)

    def _unread(self, stmt: cst.BaseStatement) -> cst.BaseStatement:
        """A rewritten test (or a class of them) without the names its new code binds and
        nothing reads: an inlined assignment nothing reads keeps only its call
        (:func:`codemods.rewrite.drop_unread_bindings`), ``with session_context as session``
        whose block never reads the session loses ``as session``."""
        if isinstance(stmt, cst.ClassDef) and isinstance(stmt.body, cst.IndentedBlock):
            inner = [self._unread(s) for s in stmt.body.body]
            if any(a is not b for a, b in zip(inner, stmt.body.body)):
                return stmt.with_changes(body=stmt.body.with_changes(body=inner))
            return stmt
        if not (
            isinstance(stmt, cst.FunctionDef)
            and isinstance(stmt.body, cst.IndentedBlock)
            and stmt.body.body
            and isinstance(stmt.body.body[-1], cst.With)
        ):
            return stmt
        with_stmt = cst.ensure_type(stmt.body.body[-1], cst.With)
        if id(with_stmt.items[0]) not in self._blocks or not isinstance(
            with_stmt.body, cst.IndentedBlock
        ):
            return stmt
        inlined = self._inlined
        block = rewrite.drop_unread_bindings(
            with_stmt.body.body, lambda s: id(s) in inlined, self._scans
        )
        block = rewrite.collapse_aliases(
            block, lambda s: id(s) in inlined, self._scans, stmt.body.body[:-1]
        )
        if not block:
            block = [cst.SimpleStatementLine(body=[cst.Pass()])]
        item = with_stmt.items[0]
        session = self.config.session_variable
        if session not in fx.scan(block, memo=self._scans).used:
            item = item.with_changes(asname=None)
        if item is with_stmt.items[0] and all(
            a is b for a, b in zip(block, with_stmt.body.body)
        ) and len(block) == len(with_stmt.body.body):
            return stmt
        with_stmt = with_stmt.with_changes(
            items=[item], body=with_stmt.body.with_changes(body=block)
        )
        return stmt.with_changes(
            body=stmt.body.with_changes(body=[*stmt.body.body[:-1], with_stmt])
        )

    def _share_setups(self, updated_node: cst.Module) -> cst.Module:
        """Two or more rewritten tests starting with the same setup ask for one helper
        fixture instead: it requests the fixtures the setup reads that a module-level
        fixture gets as the tests do, and returns a function of the session (``managers``,
        the other names the setup reads) that runs the setup and returns what the tests
        read of it. A test whose setup starts with a helper's statements (and a longer
        helper) calls that helper for them. A test no longer asks for the fixtures only
        the helper reads."""
        for mark, used, tests in self._mark_skips.values():
            shown = ", ".join(tests)
            what = (
                f"the autouse fixture {used!r} uses the database for every test here (in a "
                "session of its own, which theirs would not see)"
                if isinstance(mark, cst.FunctionDef)
                else f"a usefixtures mark requests {used!r} for every test here"
            )
            self.report(
                mark,
                f"{what}, so {len(tests)} test(s) that use old fixtures are left as they are "
                f"({shown}); rewrite by hand",
            )
        config = self.config
        pytest_binding = self._bindings.get("pytest", ("pytest", None, None))
        if pytest_binding is None or pytest_binding[:2] != ("pytest", None):
            return updated_node  # ``pytest`` is something else here
        # a test in a class (nested ones too) stands at the module statement of its outermost class
        position: dict[int, int] = {}

        def place(stmt: cst.BaseStatement, index: int) -> None:
            position[id(stmt)] = index
            if isinstance(stmt, cst.ClassDef) and isinstance(
                stmt.body, cst.IndentedBlock
            ):
                for inner in stmt.body.body:
                    place(inner, index)

        for index, stmt in enumerate(updated_node.body):
            place(stmt, index)

        # ---- the helpers: setups shared whole by two or more tests
        groups: dict[tuple[str, ...], list[tuple[cst.FunctionDef, _Setup]]] = {}
        for fn, setup in self._setups:
            if self._cut(setup, len(setup.statements)) is not None:
                groups.setdefault(setup.codes, []).append((fn, setup))
            elif (variant := self._managers_last(setup)) is not None:
                # a helper makes the objects; the managers are built after it, by the test
                data = len(variant.statements) - len(variant.managers)
                if self._cut(variant, data) is not None:
                    groups.setdefault(variant.codes[:data], []).append((fn, variant))
        every_shared: dict[tuple[str, ...], SharedHelper] = self.analysis.cache.get(
            _SHARED, {}
        )
        plans: dict[tuple[str, ...], _Plan] = {
            key: _external_plan(helper)
            for key, helper in every_shared.items()
            if self._rel in helper.modules
        }
        for key, group in groups.items():
            setup = group[0][1]
            cut = self._cut(setup, len(key))
            if key in plans or len(group) < 2 or cut is None or not cut.assigned:
                continue
            plan = _Plan(key, setup.statements[: len(key)], cut)
            for fn, s in group:
                plan.own |= self._cut(s, len(key)).not_fixtures  # type: ignore[union-attr]
            plans[key] = plan
        if not plans:
            return updated_node

        def prefix_plans(codes: tuple[str, ...]) -> list[_Plan]:
            return _prefix_plans(plans, codes)

        # ---- who calls which: the tests of a group, then tests starting with a helper's setup
        #: a test whose statements were put in another order (id) -> the test as it was
        origin: dict[int, int] = {}

        def fits(plan: _Plan, setup: _Setup, count: int) -> bool:
            """Whether ``setup``'s first ``count`` statements may be a call of ``plan``."""
            cut = self._cut(setup, count)
            if cut is None or cut.not_fixtures & set(plan.fixtures):
                return False
            return not plan.external or (
                cut.needed <= set(plan.returned) and plan.name not in setup.names
            )

        def take(fn: cst.FunctionDef, setup: _Setup) -> bool:
            plan = plans.get(setup.codes)
            if plan is not None and fits(plan, setup, len(setup.codes)):
                plan.tests.append((fn, setup, len(setup.codes)))
                return True
            for candidate in prefix_plans(setup.codes):
                if fits(candidate, setup, len(candidate.key)):
                    candidate.tests.append((fn, setup, len(candidate.key)))
                    return True
            return False

        for fn, setup in self._setups:
            if take(fn, setup):
                continue
            # its managers built after its objects: a helper may build those
            variant = self._managers_last(setup)
            if variant is None:
                continue
            reordered = _with_setup(fn, setup.start, len(setup.statements), variant.statements)
            self._made.append(reordered)
            if take(reordered, variant):
                origin[id(reordered)] = id(fn)
        for plan in plans.values():
            for fn, setup, count in plan.tests:
                plan.names |= setup.names

        # ---- what each returns, and the longer helpers built on shorter ones, longest
        # first: a helper returns what at least half of its callers (tests, longer helpers)
        # read of it; a caller that reads more calls a shorter helper for its setup (or
        # runs it itself), and a helper left with fewer than two callers is not made
        #: a helper (id) -> the longer ones built on it, each with what it reads of it
        built: dict[int, list[tuple[_Plan, _Setup, frozenset[str]]]] = {}

        def find_base(plan: _Plan, pseudo: _Setup, below: int) -> None:
            plan.base = None
            for candidate in prefix_plans(plan.key):
                if len(candidate.key) < below and fits(
                    candidate, pseudo, len(candidate.key)
                ):  # what the shorter one takes, the longer one was passed
                    plan.base = candidate
                    cut = self._cut(pseudo, len(candidate.key))
                    built.setdefault(id(candidate), []).append(
                        (plan, pseudo, cut.needed)  # type: ignore[union-attr]
                    )
                    return

        def retake(fn: cst.FunctionDef, setup: _Setup, below: int) -> None:
            for candidate in prefix_plans(setup.codes):
                if len(candidate.key) < below and fits(
                    candidate, setup, len(candidate.key)
                ):
                    candidate.tests.append((fn, setup, len(candidate.key)))
                    candidate.names |= setup.names
                    return

        live: list[_Plan] = []
        for plan in sorted(plans.values(), key=lambda p: len(p.key), reverse=True):
            if plan.external:
                continue
            tests = [
                (t, self._cut(t[1], t[2]).needed)  # type: ignore[union-attr]
                for t in plan.tests
            ]
            longer = built.pop(id(plan), [])

            def own_lines(setup: _Setup, end: int = len(plan.key)) -> int:
                return _own_lines(plans, self, setup, end)

            keep = _returned(
                [(n, own_lines(t[1])) for t, n in tests]
                + [(n, own_lines(s)) for _, s, n in longer]
            )
            fit, fit_longer = _settle_callers(
                tests, longer, keep, lambda f, b: len(f) + len(b) >= 2,
                retake, find_base, len(plan.key),
            )
            plan.tests = fit
            if not fit and not fit_longer:
                continue
            live.append(plan)
            plan.returned = [n for n in plan.cut.assigned if n in keep] or [
                plan.cut.assigned[-1]
            ]
            first = list(plan.cut.passed[: plan.cut.first])
            plan.arguments = [
                *first,
                *(n for n in plan.cut.passed[plan.cut.first :] if n in plan.own),
            ]
            pseudo = _Setup(
                plan.statements,
                plan.key,
                [cst.parse_statement(f"return {', '.join(plan.returned)}\n")],
                list(plan.cut.passed),
                0,
                frozenset(plan.own),
            )
            self._pseudo.append(pseudo)  # alive while its cuts are cached by id
            find_base(plan, pseudo, len(plan.key))
        # where each goes: before its first caller (a longer helper built on it included)
        for plan in live:  # longest first
            plan.position = min(
                [position.get(origin.get(id(fn), id(fn)), 0) for fn, _, _ in plan.tests]
                + [p.position for p in live if p.base is plan],
                default=0,
            )

        # ---- names, in the order the helpers appear
        taken = (
            set(self._bindings)
            | self._module_fixture_names
            | {h.name for h in every_shared.values() if self._rel in h.modules}
        )
        ordered = sorted(live, key=lambda p: (p.position, len(p.key)))
        for plan in ordered:
            plan.name = _helper_name(
                plan.returned,
                lambda c, plan=plan: (
                    c in taken or c in plan.names or self._resolve(c) is not None
                ),
            )
            taken.add(plan.name)

        # ---- the helpers' code, shorter ones first (a longer one requests what they do)
        helpers: dict[int, list[cst.FunctionDef]] = {}

        def callers(plan: _Plan) -> list[cst.FunctionDef]:
            """The tests that call ``plan``'s helper, or a longer one built on it."""
            out = [fn for fn, _, _ in plan.tests]
            for other in ordered:
                if other.base is plan:
                    out += callers(other)
            return out

        shared_types = {
            p.name: p.types.helper for p in plans.values() if p.external and p.types is not None
        }

        def annotations(plan: _Plan, requested: list[str]) -> _HelperTypes | None:
            types = _helper_types(plan, requested, self._resolve, config, shared_types)
            every = _Typed.compose("", types.every()) if types is not None else None
            if every is None or every.imports_for(self._bindings) is None:
                return None
            return types

        for plan in sorted(ordered, key=lambda p: len(p.key)):
            tests = callers(plan)
            plan.annotate = bool(tests) and all(_annotates(fn) for fn in tests)
            helpers.setdefault(plan.position, []).append(
                _helper_code(plan, "pytest.fixture", annotations)
            )
            if plan.types is not None:
                for typed in plan.types.every():
                    self._typed_expression(typed)

        # ---- the tests call them
        replaced: dict[int, cst.FunctionDef] = {}
        ctx = config.session_context_fixture
        for plan in plans.values():
            for fn, setup, count in plan.tests:
                cut = self._cut(setup, count)
                needed = cut is not None and bool(cut.needed & set(plan.returned))
                call = _call(plan, needed)
                self._inlined.add(id(call))  # setup, as the statements it replaces
                self._made.append(call)
                annotation = (
                    self._typed_expression(plan.types.helper)
                    if plan.types is not None and _annotates(fn)
                    else None
                )
                replaced[origin.get(id(fn), id(fn))] = _call_setup(
                    fn, setup, count, call, plan, ctx, annotation
                )
        if helpers:
            AddImportsVisitor.add_needed_import(self.context, "pytest")

        def swap(stmt: cst.BaseStatement) -> cst.BaseStatement:
            if isinstance(stmt, cst.FunctionDef):
                return replaced.get(id(stmt), stmt)
            if isinstance(stmt, cst.ClassDef) and isinstance(
                stmt.body, cst.IndentedBlock
            ):
                inner = [swap(s) for s in stmt.body.body]
                if any(a is not b for a, b in zip(inner, stmt.body.body)):
                    return stmt.with_changes(body=stmt.body.with_changes(body=inner))
            return stmt

        body: list[cst.BaseStatement] = []
        for index, stmt in enumerate(updated_node.body):
            body.extend(helpers.get(index, ()))
            body.append(swap(stmt))
        module = updated_node.with_changes(body=body)
        if any(p.external and p.tests for p in plans.values()):
            self._unschedule_unused_imports(
                module, [fn for made in helpers.values() for fn in made]
            )
        return module

    def _unschedule_unused_imports(
        self, module: cst.Module, helpers: Sequence[cst.FunctionDef]
    ) -> None:
        """Drop the imports the inlined statements asked for that nothing reads now: the
        statements went into a conftest's helper. Only the rewritten tests' blocks and the
        module's new helpers can read a name the module did not have."""
        scheduled = self.context.scratch.get(AddImportsVisitor.CONTEXT_KEY)
        if not scheduled:
            return
        used = set(fx.scan(helpers).used)

        def visit(body: Sequence[cst.BaseStatement]) -> None:
            for stmt in body:
                if isinstance(stmt, cst.ClassDef) and isinstance(stmt.body, cst.IndentedBlock):
                    visit(stmt.body.body)
                elif (
                    isinstance(stmt, cst.FunctionDef)
                    and isinstance(stmt.body, cst.IndentedBlock)
                    and stmt.body.body
                    and isinstance(stmt.body.body[-1], cst.With)
                ):
                    block = stmt.body.body[-1]
                    if id(block.items[0]) in self._blocks and isinstance(
                        block.body, cst.IndentedBlock
                    ):
                        used.update(fx.scan(block.body.body, memo=self._scans).used)
                        # and the annotations of the parameters it was given
                        used.update(
                            fx.scan(
                                [cst.Expr(p.annotation.annotation) for p in stmt.params.params if p.annotation]
                            ).used
                        )

        visit(module.body)
        self.context.scratch[AddImportsVisitor.CONTEXT_KEY] = [
            item
            for item in scheduled
            if (item.alias or item.obj_name or item.module_name.split(".")[0]) in used
        ]

    # ---------------------------------------------------------------- resolution
    def _resolve(self, name: str) -> fx.Fixture | None:
        """The fixture ``name`` as the test being looked at gets it: one of its classes or
        of its module first (:func:`refactor_tool.model.fixtures.local_fixtures`), else
        the conftests'."""
        key = (tuple(self._classes), name)
        if key not in self._resolved:
            self._resolved[key] = self._resolve_once(name)
        return self._resolved[key]

    def _graph_resolve(self, name: str, rel: str) -> fx.Fixture | None:
        key = (name, rel)
        if key not in self._graph_resolved:
            self._graph_resolved[key] = self.analysis.graph.resolve(name, rel)
        return self._graph_resolved[key]

    def _dep_resolve(self, name: str, requester: fx.Fixture) -> fx.Fixture | None:
        """What ``requester`` gets for its request of ``name`` in the test being looked
        at: pytest resolves every request of a test's fixtures from the test, so a
        conftest's fixture gets what a conftest nearer the test (or the test's module or
        class) defines under that name; only a fixture's request of its own name gets the
        definition above its own."""
        if name == requester.name:
            return self.analysis.graph.above(requester)
        return self._resolve(name)

    def _local_table(self) -> dict[str, fx.Fixture]:
        key = tuple(self._classes)
        if key not in self._local_tables:
            layers = [(list(self._local_fixtures.values()), False)]
            layers += [(fns, True) for fns in self._class_layers]
            self._local_tables[key] = fx.local_fixtures(
                self.analysis, self._module, self._rel, layers, self._lines
            )
        return self._local_tables[key]

    def _resolve_once(self, name: str) -> fx.Fixture | None:
        table = self._local_table() if self._local_fixtures or any(self._class_layers) else {}
        local = table.get(name)
        if local is None:
            return self._graph_resolve(name, self._rel)
        if local.kind != fx.PLAIN and self._is_helper_fixture(local.node()):
            local.kind, local.problem = fx.PLAIN, None  # as ``leave_Module`` writes them
        return local

    def _is_helper_fixture(
        self, fixture: cst.FunctionDef, seen: frozenset[str] = frozenset()
    ) -> bool:
        """Whether a fixture of the test module is a helper fixture as ``leave_Module``
        writes them: it requests factory fixtures, plain ones and other such helpers of
        the module, and returns a function that takes the session first; a test asking
        for it is in the new style."""
        seen = seen | {fixture.name.value}

        def kind(param: str) -> str | None:
            local = self._local_fixtures.get(param)
            if local is not None:
                helper = param not in seen and self._is_helper_fixture(local, seen)
                return fx.PLAIN if helper else None
            dep = self._graph_resolve(param, self._rel)
            return dep.kind if dep is not None else None

        kinds = (kind(p) for p in fx.positional_params(fixture))
        return fx.is_session_helper(fixture, kinds, self.config)

    def _manager_rebuilt(
        self, fixture: fx.Fixture | None, seen: frozenset[str] = frozenset()
    ) -> bool:
        """Whether a manager fixture is rebuilt in the test from its recipe rather than
        stood for by ``managers.<short>``: it builds its manager otherwise than
        ``create_all_managers`` does, or it is handed a manager fixture that does, as the
        test gets it (a test module's own ``enrollment_manager`` reaches the conftest's
        ``grade_manager`` that requests that name)."""
        if fixture is None or fixture.kind != fx.MANAGER:
            return False
        if not fixture.plain_manager and not self._by_factory(fixture):
            return True
        if fixture.name in seen:
            return False
        return any(
            self._manager_rebuilt(self._dep_resolve(p, fixture), seen | {fixture.name})
            for p in fixture.params
            if p != fixture.name
        )

    def _by_factory(self, fixture: fx.Fixture) -> bool:
        """Whether ``create_all_managers`` builds what this manager fixture built, handed the
        objects the fixture injected (its ``factory_overrides``) as keywords it takes."""
        if fixture.kind != fx.MANAGER or not fixture.factory_overrides:
            return False
        return set(fixture.factory_overrides) <= self.analysis.cache.get(
            _FACTORY_KEYWORDS, set()
        )

    def _factory_defaults(self, names: set[str]) -> dict[str, fx.FactoryDefaults]:
        """The defaults of the factories ``names`` as the test will get them (resolved
        from its module: the factories the recipes call become its parameters)."""
        out: dict[str, fx.FactoryDefaults] = {}
        cache = self.analysis.cache
        for name in names:
            factory = self._resolve(name)
            if factory is None or factory.kind != fx.FACTORY:
                continue
            key = ("factory defaults", factory.rel, factory.name, factory.source)
            if key not in cache:
                cache[key] = fx.factory_defaults(factory, self.config.session_variable)
            if cache[key] is not None:
                out[name] = cache[key]
        return out

    def _session_to_factories(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        """A test left as it is that calls factory fixtures whose inner function takes the
        session first now (phase 4 rewrote them) passes them the session fixture, which it
        requests if it did not (only where phase 4 kept that fixture): it keeps working as
        before. Otherwise each such call is reported."""
        graph = self.analysis.graph
        params = updated_node.params
        names = [p.name.value for p in params.params]
        factories = {
            n
            for n in names
            if (f := graph.resolve_current(n, self._rel)) is not None
            and f.kind == fx.FACTORY
            and f.new_style
        }
        if not factories or not isinstance(updated_node.body, cst.IndentedBlock):
            return updated_node
        session = self.config.session_fixture
        listed = ", ".join(repr(f) for f in sorted(factories))
        requested: cst.FunctionDef | None = updated_node
        if session not in names:
            kept = graph.resolve_current(session, self._rel)
            requested = (
                rewrite.with_fixture_request(updated_node, session)
                if kept is not None and kept.kind == fx.SESSION
                else None
            )
            if requested is None:
                self.report(
                    original_node,
                    f"{original_node.name.value}: calls {listed} without a session, which "
                    "their inner functions take first now; pass one by hand",
                )
                return updated_node
        stmts, rewriter = rewrite.rewrite_names(
            fx.statements(updated_node), {}, factories, session
        )
        if rewriter.conflicts or rewriter.factory_values:
            self.report(
                original_node,
                f"{original_node.name.value}: pass the session to its calls of {listed} by hand",
            )
            return updated_node
        new = requested.with_changes(
            body=updated_node.body.with_changes(body=stmts)
        )
        return updated_node if new.deep_equals(updated_node) else new

    def _overrides_factories_lose(
        self, called: dict[str, fx.Fixture | None]
    ) -> list[tuple[str, str, str, fx.Fixture]]:
        """The factory fixtures the test calls that were handed, in this test, a manager
        fixture that the test's module (or a conftest nearer it) builds otherwise than the
        one the factory's own module sees: phase 4 made the factory build its managers with
        ``create_all_managers``, so its calls here no longer go through that construction.
        Each as (the factory's name, where it is, the name it requested, what it got)."""
        graph = self.analysis.graph
        before = graph.fallback if graph.fallback is not None else graph
        out: list[tuple[str, str, str, fx.Fixture]] = []
        for factory_name, factory in called.items():
            if factory is None:
                continue
            where = factory.where
            # what it requested before phase 4 rewrote it
            factory = before.resolve(factory.name, factory.rel) or factory
            for param in factory.params:
                dep = self._dep_resolve(param, factory)
                own = before.resolve(param, factory.rel)
                if dep is None or dep is own or not self._manager_rebuilt(dep):
                    continue
                if own is not None and (own.rel, own.line) == (dep.rel, dep.line):
                    continue
                out.append((factory_name, where, param, dep))
        return out

    def _report_lost_overrides(
        self, fn: cst.FunctionDef, lost: list[tuple[str, str, str, fx.Fixture]]
    ) -> None:
        """Reported once per factory and fixture, at the first test."""
        for factory_name, where, param, dep in lost:
            key = (factory_name, where, dep.rel, dep.line)
            if key in self._lost_overrides:
                continue
            self._lost_overrides.add(key)
            self.report(
                fn,
                f"{fn.name.value}: factory fixture {factory_name!r} ({where}) got "
                f"{param!r} ({dep.where}) here, which builds its manager otherwise; the "
                f"factory builds its managers with {self.config.factory_function}(session) "
                "now, so its calls in this module no longer use that construction; check "
                "what they build",
            )

    def _skip(self, node: cst.CSTNode, message: str) -> None:
        self.report(node, message)
        raise _Skip(message)

    # ---------------------------------------------------------------- the rewrite
    def _rewrite(self, fn: cst.FunctionDef) -> cst.FunctionDef:
        config = self.config
        name = fn.name.value
        params = [p.name.value for p in fn.params.params]
        in_class = bool(self._classes)
        # pytest fills only parameters without a default (and not ``self``) with fixtures
        requested = [p.name.value for p in fn.params.params if p.default is None]
        fixture_params = requested[1:] if in_class and requested else requested
        first_default = next(
            (i for i, p in enumerate(fn.params.params) if p.default is not None),
            len(params),
        )
        parametrized = fx.parametrized_names(fn.decorators)
        for used in (n for d in fn.decorators for n in fx.usefixtures_names(d)):
            self._skip_marked(fn, used)
        if "request" in fixture_params:  # pytest's request: fixtures fetched by name
            for used in fx.getfixturevalue_names(fn.body, fn.decorators):
                fixture = self._resolve(used) if isinstance(used, str) else None
                if (
                    not isinstance(used, str)
                    or used == config.session_fixture
                    or (fixture is not None and fixture.kind in fx.DB_KINDS)
                ):
                    shown = repr(used) if isinstance(used, str) else "a fixture"
                    self._skip(
                        fn,
                        f"{name}: fetches {shown} with request.getfixturevalue; "
                        "rewrite by hand",
                    )
        resolved = {
            p: self._resolve(p) for p in fixture_params if p not in parametrized
        }
        kinds = {p: (f.kind if f is not None else None) for p, f in resolved.items()}
        removed = [
            p
            for p, k in kinds.items()
            if k in fx.REMOVED_KINDS or (k is None and p == config.session_fixture)
        ]
        factories = [p for p, k in kinds.items() if k == fx.FACTORY]
        ctx = config.session_context_fixture
        has_ctx = ctx in params
        if not removed and not (factories and not has_ctx):
            for p, fixture in resolved.items():
                if fixture is not None and fixture.kind == fx.DB_OTHER:
                    self._skip(
                        fn,
                        f"{name}: fixture {p!r} ({fixture.where}) {fixture.problem}; rewrite by hand",
                    )
            return fn  # new style already, or no database at all
        # the marks of its module and classes: a test with nothing to rewrite keeps working
        # with them, one rewritten would build again what they build
        for used, mark in (item for level in self._marked for item in level):
            if self._database_fixture(used):
                # one note for the mark, naming the tests it leaves alone (``leave_Module``)
                entry = self._mark_skips.setdefault(id(mark), (mark, used, []))
                entry[2].append(name)
                raise _Skip(used)

        for p, fixture in resolved.items():
            if fixture is None and p not in fx.BUILTIN_FIXTURES:
                if p == config.session_fixture:
                    continue
                if p in self._class_fixtures():
                    self._skip(
                        fn,
                        f"{name}: fixture {p!r} is defined in its class, where phase 4 does "
                        "not look; rewrite by hand",
                    )
                self._skip(
                    fn,
                    f"{name}: fixture {p!r} is gone and no recipe was recorded; rewrite by hand",
                )
            if fixture is not None and fixture.kind == fx.DB_OTHER:
                self._skip(
                    fn,
                    f"{name}: fixture {p!r} ({fixture.where}) {fixture.problem}; rewrite by hand",
                )
        removed = [
            p
            for p in fixture_params
            if p not in parametrized
            and (kinds.get(p) in fx.REMOVED_KINDS or p == config.session_fixture)
        ]

        # ---- what to inline, in dependency order
        order: list[fx.Fixture] = []
        visiting: set[tuple[str, str, int | None]] = set()

        def needs_inlining(fixture: fx.Fixture | None) -> bool:
            return fixture is not None and (
                fixture.kind == fx.OBJECT or self._manager_rebuilt(fixture)
            )

        # manager fixtures that create_all_managers builds when handed what they injected
        keywords: dict[str, str] = {}  # factory keyword -> fixture name

        def hand_over(fixture: fx.Fixture | None) -> None:
            if fixture is None or not self._by_factory(fixture):
                return
            for keyword, source in fixture.factory_overrides.items():
                if keywords.setdefault(keyword, source) != source:
                    self._skip(
                        fn,
                        f"{name}: fixtures hand {config.factory_function} both {source!r} and "
                        f"{keywords[keyword]!r} as {keyword!r}; rewrite by hand",
                    )

        def visit(fixture: fx.Fixture) -> None:
            # by definition: an override that requests its own name extends another one
            key = (fixture.rel, fixture.name, fixture.line)
            if key in visiting or any((f.rel, f.name, f.line) == key for f in order):
                return
            if fixture.problem:
                self._skip(
                    fn,
                    f"{name}: fixture {fixture.name!r} ({fixture.where}) {fixture.problem}; "
                    "rewrite by hand",
                )
            visiting.add(key)
            for dep_name in fixture.params:
                dep = self._dep_resolve(dep_name, fixture)
                hand_over(dep)
                if needs_inlining(dep):
                    visit(dep)  # type: ignore[arg-type]
            visiting.discard(key)
            order.append(fixture)

        for p in fixture_params:
            fixture = resolved.get(p)
            if p not in parametrized:
                hand_over(fixture)
            if needs_inlining(fixture):
                visit(fixture)  # type: ignore[arg-type]

        # ---- parameters the recipes need that the test does not ask for yet
        extras: list[str] = []
        replacements: dict[str, cst.BaseExpression] = {}
        session_expr = cst.Name(config.session_variable)
        replacements[config.session_fixture] = session_expr
        factory_names = set(factories)
        called = {p: resolved[p] for p in factories}
        for recipe in order:
            for dep_name in recipe.params:
                dep = self._dep_resolve(dep_name, recipe)
                kind = dep.kind if dep is not None else None
                if kind == fx.FACTORY:
                    called.setdefault(dep_name, dep)
                if kind in (fx.OBJECT, fx.SESSION, fx.MANAGER):
                    continue  # inlined, or rewritten inside the recipe itself
                if kind == fx.DB_OTHER:
                    self._skip(
                        fn,
                        f"{name}: fixture {dep_name!r} ({dep.where}) {dep.problem}; rewrite by hand",
                    )  # type: ignore[union-attr]
                if dep is None and dep_name not in fx.BUILTIN_FIXTURES:
                    self._skip(
                        fn,
                        f"{name}: fixture {dep_name!r}, needed by {recipe.name!r}, is gone and no "
                        "recipe was recorded; rewrite by hand",
                    )
                if kind == fx.FACTORY:
                    factory_names.add(dep_name)
                if dep_name not in params and dep_name not in extras:
                    extras.append(dep_name)
        for factory_name, factory in called.items():
            if factory is not None and self.analysis.plan.fate(factory) == fx.LEAVE:
                self._skip(
                    fn,
                    f"{name}: factory fixture {factory_name!r} ({factory.where}) {factory.problem}, "
                    "so phase 4 left it as it was: it does not build what it makes on the "
                    "session it would be passed; rewrite by hand",
                )
        for source in keywords.values():  # the fixtures handed to the factory stay
            if source not in params and source not in extras:
                extras.append(source)
        for p in removed:
            fixture = resolved.get(p)
            if fixture is None or fixture.kind == fx.SESSION:
                replacements[p] = session_expr
            elif fixture.kind == fx.MANAGER and not self._manager_rebuilt(fixture):
                replacements[p] = rewrite.managers_attr(
                    config, fixture.manager_short or p
                )
                if fixture.rel == self._rel:  # one of the module's: managers.<name> now
                    self._inlined_local.add((fixture.name, fixture.line))

        # ---- the body
        docstring, body = fx.split_docstring(fx.statements(fn))
        # the imports it starts with stay first, before the block
        imports = list(itertools.takewhile(lambda s: matches(s, fx.ONE_IMPORT_LINE), body))
        body = body[len(imports) :]
        body, checked_after, opened_at = self._checked_in_own_context(
            body, {*removed, *factories, config.session_fixture}
        )
        merged_session = False
        if has_ctx:
            body, merged_session = self._merge_inner_contexts(
                fn, body, replacements, {*removed, config.session_fixture}
            )
        own = scope_scan(body, self._scans)
        for reserved in (config.session_variable, config.managers_variable):
            # a session fixture named like the session variable reads the session it stands for
            is_session = reserved == config.session_variable and (
                merged_session
                or (reserved in removed and replacements.get(reserved) is session_expr)
            )
            used = reserved in own.used and not is_session
            if reserved in own.bound or used:
                self._skip(
                    fn, f"{name}: already uses the name {reserved!r}; rewrite by hand"
                )
        for p in removed:
            if p in own.bound and p in replacements:
                self._skip(
                    fn, f"{name}: assigns to fixture name {p!r}; rewrite by hand"
                )
        # where the application commits in its own session (a question for the rewrite
        # only: it leaves no test alone)
        stale_after = (
            set() if self.decide_only else self._application_calls(body, resolved)
        )
        sessionless = self._sessionless(fn)
        if sessionless:
            body = rewrite.pass_session(body, sessionless, config.session_variable)
        new_body, rewriter = rewrite.rewrite_names(
            body, replacements, factory_names, config.session_variable
        )
        for index in sorted(stale_after, reverse=True):
            new_body.insert(index + 1, self._expire_line())
        if opened_at is not None:
            new_body.insert(
                opened_at + sum(1 for i in stale_after if i < opened_at),
                cst.parse_statement(
                    f"{config.session_variable}.commit()  # the test's own session context "
                    "sees what is committed\n"
                ),
            )
        if rewriter.conflicts:
            self._skip(
                fn,
                f"{name}: {', '.join(sorted(set(rewriter.conflicts)))} would be captured by an inner "
                f"binding of {config.session_variable!r}; rewrite by hand",
            )
        if rewriter.factory_values:
            self._skip(
                fn,
                f"{name}: passes factory fixture {rewriter.factory_values[0]!r} around as a value "
                "(its callers must now pass the session); rewrite by hand",
            )

        final_params = [p for p in params if p not in removed]
        reserved_names = (
            (set(own.used) - own.bound)
            | set(final_params)
            | set(extras)
            | {
                config.session_variable,
                config.managers_variable,
                ctx,
            }
            | {f.name for f in order}
        )
        recipe_frees: set[str] = set()
        for recipe in order:
            recipe_frees |= (
                set(recipe.imports) | set(recipe.module_names) | set(recipe.params)
            )
        reserved_names |= recipe_frees
        inlined: list[cst.BaseStatement] = []
        manager_positions: set[int] = set()
        for recipe in order:
            made = self._inline(fn, recipe, replacements, factory_names, reserved_names)
            if recipe.kind == fx.MANAGER:
                manager_positions.update(range(len(inlined), len(inlined) + len(made)))
            inlined.extend(made)
        self._inlined_local.update(
            (recipe.name, recipe.line) for recipe in order if recipe.rel == self._rel
        )
        lost = self._overrides_factories_lose(called)
        # the module's own fixture the factory got is requested by nothing rewritten now
        self._inlined_local.update((d.name, d.line) for _, _, _, d in lost if d.rel == self._rel)
        if self.decide_only:
            return fn.with_changes()  # rewritten: nothing after this point leaves it alone
        self._report_lost_overrides(fn, lost)

        arguments = [config.session_variable]
        arguments += [f"{keyword}={source}" for keyword, source in keywords.items()]
        managers_line = cst.parse_statement(
            f"{config.managers_variable} = {config.factory_function}({', '.join(arguments)})\n"
        )
        first_leading: list[cst.EmptyLine] = []
        if new_body:
            first_leading = list(getattr(new_body[0], "leading_lines", ()))
            spaced = bool(inlined) or isinstance(
                new_body[0], (cst.FunctionDef, cst.ClassDef)
            )
            new_body[0] = new_body[0].with_changes(
                leading_lines=[cst.EmptyLine(indent=False)] if spaced else []
            )
        if inlined:
            inlined[0] = _strip_blank_leading(inlined[0])
        signatures = self._factory_defaults(factory_names)
        inlined = rewrite.drop_default_arguments(
            inlined, signatures, config.session_variable, self._scans
        )
        if set(signatures) & set(own.used):  # the test calls a factory itself
            new_body = rewrite.drop_default_arguments(
                new_body, signatures, config.session_variable, self._scans
            )
        rolls_back = _rolls_back(new_body, config.session_variable, self._scans)
        rebuilt_managers = {r.name for r in order if r.kind == fx.MANAGER}
        if rolls_back:
            # its own calls of factories and managers before it provokes the error
            # committed what they did too (a manager committed every operation): the last
            # of them is followed by the commit
            managers_variable = config.managers_variable
            calls = (
                m.Call(func=m.Name(m.MatchIfTrue(lambda n: n in factory_names)))
                | m.Call(
                    func=m.Attribute(
                        value=m.Attribute(value=m.Name(managers_variable))
                        | m.Name(m.MatchIfTrue(lambda n: n in rebuilt_managers))
                    )
                )
            )
            ends = next(
                (
                    i
                    for i, stmt in enumerate(new_body)
                    if findall(stmt, _PROVOKES)
                ),
                len(new_body),
            )
            last = max(
                (i for i in range(ends) if findall(new_body[i], calls)), default=None
            )
            if last is not None:
                new_body.insert(
                    last + 1,
                    cst.parse_statement(
                        f"{config.session_variable}.commit()  # the setup stays when the "
                        "test rolls back\n"
                    ),
                )
        if inlined and rolls_back:
            # the fixtures' managers committed what they built; a test that rolls the
            # session back itself would now roll its setup back with it
            inlined.append(
                cst.parse_statement(
                    f"{config.session_variable}.commit()  # the setup stays when the test "
                    "rolls back\n"
                )
            )
        elif runs := self._application_runs(body, resolved):
            # the application reads in a session of its own, which sees only what was
            # committed (as the fixtures' managers did), not what this one only flushed
            commit = cst.parse_statement(
                f"{config.session_variable}.commit()  # the application reads in its "
                "own session\n"
            )
            # the test's own statements before it may write too (their managers
            # committed): then the commit goes right before the application runs
            first = min(runs) + sum(1 for i in stale_after if i < min(runs))
            writers = {
                config.session_variable,
                config.managers_variable,
                *factory_names,
                *(r.name for r in order if r.kind == fx.MANAGER),
            }
            if first and names_used(cst.Module(body=new_body[:first]), writers):
                new_body.insert(first, commit)
            elif inlined:
                inlined.append(commit)
        block = [*inlined, *new_body]
        uses_managers = (
            config.managers_variable in fx.scan(block, memo=self._scans).used
        )
        self._setup = self._setup_of(
            inlined,
            new_body,
            [*final_params, *([] if has_ctx else [ctx]), *extras],
            int(uses_managers),
            parametrized | self._class_fixtures(),
            frozenset(manager_positions),
        )
        if uses_managers:
            block.insert(0, managers_line)
            AddImportsVisitor.add_needed_import(
                self.context, config.factory_module_name, config.factory_function
            )
        elif block:
            block[0] = _strip_blank_leading(block[0])
        item = cst.WithItem(
            item=cst.Name(ctx),
            asname=cst.AsName(name=cst.Name(config.session_variable)),
        )
        with_stmt = cst.With(
            items=[item],
            body=cst.IndentedBlock(body=block),
            leading_lines=first_leading,
        )
        placed = block[int(uses_managers) : int(uses_managers) + len(inlined)]
        self._blocks.add(id(item))
        self._inlined.update(id(s) for s in placed)
        self._made += [item, *placed]

        # ---- the signature
        insert = [] if has_ctx else [ctx]
        insert += extras
        new_params = rewrite.edit_params(
            fn.params,
            remove=removed,
            insert=self._new_params(fn, insert),
            at=None if removed else first_default,
        )
        suite = fn.body
        if not isinstance(suite, cst.IndentedBlock):
            suite = cst.IndentedBlock(body=[])
        self._changed = True
        return fn.with_changes(
            params=new_params,
            body=suite.with_changes(body=[*docstring, *imports, with_stmt, *checked_after]),
        )

    def _checked_in_own_context(
        self, body: list[cst.BaseStatement], database: set[str]
    ) -> tuple[list[cst.BaseStatement], list[cst.BaseStatement], int | None]:
        """``body`` split where the test opens a session context of its own at its top level
        (``with SessionContext(...) as s:``) to look at what it did before, when nothing from
        there on reads the database fixtures (``database``), the session or managers the
        rewrite names, or a name the statements before bind (objects of a session that is
        closed by then). The new block ends there: it commits on its way out, as the old
        managers did, and the test's own context opens after it, as before.

        When something from there on does read them, the body stays whole and the index of
        that statement is returned third: the new block commits right before it (the
        managers had committed), so the test's own session sees the work. Without such a
        statement: ``body``, nothing, None."""
        openers = self.analysis.cache.get(_OPENERS, frozenset())
        if not openers:
            return body, [], None
        if not any(
            isinstance(stmt, cst.With) and stmt.items and isinstance(stmt.items[0].item, cst.Call)
            for stmt in body[1:]
        ):
            return body, [], None
        config = self.config
        module_name = self.context.full_module_name or ""
        imports = import_map(self._module, module_name, self._rel)
        local = [n.name.value for n in self._module.body if isinstance(n, cst.ClassDef)]

        def opens_context(stmt: cst.BaseStatement) -> bool:
            if not isinstance(stmt, cst.With) or not stmt.items:
                return False
            call = stmt.items[0].item
            if not isinstance(call, cst.Call):
                return False
            dotted = get_full_name_for_node(call.func)
            origin = resolve_local(dotted, imports, module_name, local) if dotted else None
            return origin in openers

        start = next((i for i, stmt in enumerate(body) if opens_context(stmt)), None)
        if not start:
            return body, [], None
        head, tail = body[:start], body[start:]
        read = fx.scan(tail, own_scope=True, memo=self._scans)
        items = fx.scan(
            [item.item for item in cst.ensure_type(tail[0], cst.With).items],
            own_scope=True,
            memo=self._scans,
        )
        forbidden = {
            *database,
            config.session_variable,
            config.managers_variable,
            config.session_context_fixture,
            *scope_scan(head, self._scans).bound,
        }
        free = (set(read.used) - set(read.bound)) | set(items.used)
        if free & forbidden:
            return body, [], start
        return head, tail, None

    def _new_params(self, fn: cst.FunctionDef, names: Sequence[str]) -> list[cst.Param]:
        """The parameters ``names`` the rewrite adds to the test ``fn``: where ``fn``
        annotates its parameters, each is annotated with what its fixture returns (as the
        fixture's definition says), the names that reads imported as its module imports
        them; without an annotation where that cannot be written here."""
        if not any(p.annotation is not None for p in fn.params.params):
            return [rewrite.new_param(n) for n in names]
        return [rewrite.new_param(n, self._fixture_annotation(n)) for n in names]

    def _fixture_annotation(self, name: str) -> cst.BaseExpression | None:
        return self._typed_expression(_Typed.of_fixture(self._resolve(name)))

    def _typed_expression(self, typed: _Typed | None) -> cst.BaseExpression | None:
        """``typed`` as an expression of this module, its names imported (the same object
        imported from the same module or re-exported counts as the same); None when the
        module binds one of them to something else."""
        if typed is None:
            return None
        wanted = typed.imports_for(self._bindings)
        if wanted is None:
            return None
        for free, (source, obj, asname) in wanted.items():
            AddImportsVisitor.add_needed_import(self.context, source, obj, asname)  # type: ignore[arg-type]
            self._bindings[free] = (source, obj, asname)
        return cst.parse_expression(typed.code)

    def _sessionless(self, fn: cst.FunctionDef) -> set[int]:
        """The manager constructions in the test ``fn`` that pass no session (managers
        require one now), by id: in a rewritten test they get the test's."""
        managers = self.analysis.managers
        if not self._names_managers or managers is None:
            return set()
        found = constructions_without_session(
            self._module, self.context.full_module_name or "", self._rel, managers, within=fn
        )
        return {id(call) for call, _ in found}

    def _application_calls(
        self, body: list[cst.BaseStatement], resolved: dict[str, fx.Fixture | None]
    ) -> set[int]:
        """Statements after which the test's session must forget what it loaded.

        The old session fixture was the thread-local session the application shared: code
        the test ran through a fixture closure (``run_cli(...)``) committed and closed that
        same session, so the test's next read through it loaded fresh rows. Now the
        application opens its own session; the test's session would answer from its
        identity map. After such a call, when the test reads through the old session
        fixture later on, ``session.expire_all()`` restores the fresh read; not where the
        session has loaded nothing yet (no object fixture, and no statement before the call
        uses a database fixture), nor where the test's next use of the session is an
        ``expire_all()`` of its own, nor before another such call that comes first.
        """
        runs = self._application_runs(body, resolved)
        if not runs:
            return set()
        session_fixture = self.config.session_fixture
        database = {session_fixture} | {
            p for p, f in resolved.items() if f is not None and f.kind in fx.DB_KINDS
        }
        uses = [
            bool(findall(stmt, m.Name(m.MatchIfTrue(lambda n: n in database))))
            for stmt in body
        ]
        # a read through the session, or of an attribute the application sets in place
        # (``tool.status``) on what the session holds: the objects of object fixtures and
        # the names a statement using the database bound before the first run
        held = {
            p for p, f in resolved.items() if f is not None and f.kind == fx.OBJECT
        }
        for stmt, used in zip(body[: runs[0]], uses):
            if used:
                held |= set(scope_scan([stmt], self._scans).bound)
        found = self.analysis.cache.get(_SET_IN_PLACE)
        changed = found() if found is not None else frozenset()
        stale = m.Name(session_fixture) | m.Attribute(
            value=m.Name(m.MatchIfTrue(lambda n: n in held)),
            attr=m.Name(m.MatchIfTrue(lambda n: n in changed)),
        )
        reads = [bool(findall(stmt, stale)) for stmt in body]
        set_up = any(f is not None and f.kind == fx.OBJECT for f in resolved.values())
        expires = m.SimpleStatementLine(
            body=[
                m.Expr(
                    m.Call(
                        func=m.Attribute(
                            value=m.Name(session_fixture), attr=m.Name("expire_all")
                        )
                    )
                )
            ]
        )
        out = set()
        for i in runs:
            later = [j for j in range(i + 1, len(body)) if reads[j]]
            if not later or matches(body[later[0]], expires):
                continue
            if any(i < k < later[0] for k in runs):
                continue  # a later run before the read expires it
            if set_up or any(uses[:i]):
                out.add(i)
        return out

    def _application_runs(
        self, body: list[cst.BaseStatement], resolved: dict[str, fx.Fixture | None]
    ) -> list[int]:
        """The statements of ``body`` that run the application through a fixture that
        calls it (``run_cli(...)``): the application opens a session of its own there."""
        runners = {
            p
            for p, f in resolved.items()
            if f is not None and f.kind == fx.PLAIN and f.runs_app
        }
        # the entry point imported here, handed to a runner (``runner.invoke(cli, ...)``)
        # or called
        entry_points = self.analysis.cache.get(_ENTRY_POINTS, set())
        apps = {
            local
            for local, binding in self._bindings.items()
            if binding is not None and binding[1] is not None
            and (binding[0], binding[1]) in entry_points
        }
        # or reached through its module (``from app import cli`` ... ``cli.main(args)``)
        in_module = {
            (local, obj)
            for local, binding in self._bindings.items()
            if binding is not None
            for module, obj in entry_points
            if module == (f"{binding[0]}.{binding[1]}" if binding[1] else binding[0])
            and (binding[1] is not None or binding[2] is not None)
        }
        if not runners and not apps and not in_module:
            return []
        # a runner called (``run_cli(...)``) or driven (``client.post(...)``)
        runner = m.Name(m.MatchIfTrue(lambda n: n in runners))
        call = m.Call(func=runner | m.Attribute(value=runner))
        app = m.Name(m.MatchIfTrue(lambda n: n in apps))
        modules = {local for local, _ in in_module}
        objects = {obj for _, obj in in_module}
        through = m.Attribute(
            value=m.Name(m.MatchIfTrue(lambda n: n in modules)),
            attr=m.Name(m.MatchIfTrue(lambda n: n in objects)),
        ) if in_module else None
        return [
            i
            for i, stmt in enumerate(body)
            if (runners and findall(stmt, call))
            or (apps and findall(stmt, app))
            or (through is not None and findall(stmt, through))
        ]

    def _expire_line(self) -> cst.SimpleStatementLine:
        line = cst.parse_statement(f"{self.config.session_variable}.expire_all()\n")
        return cst.ensure_type(line, cst.SimpleStatementLine).with_changes(
            trailing_whitespace=cst.TrailingWhitespace(
                whitespace=cst.SimpleWhitespace("  "),
                comment=cst.Comment("# the application committed in its own session"),
            )
        )

    def _merge_inner_contexts(
        self,
        fn: cst.FunctionDef,
        body: list[cst.BaseStatement],
        replacements: dict[str, cst.BaseExpression],
        database: set[str],
    ) -> tuple[list[cst.BaseStatement], bool]:
        """``with session_context as s:`` at the test's top level joins the new block.
        Where the old block ended the context committed, and what follows it read the
        database through another session (``database``: the fixtures the test requested
        that are removed): a block followed by such statements ends with a commit.

        Returns the new body and whether a merged block named its session like the new one.
        """
        config = self.config
        ctx = config.session_context_fixture
        out: list[cst.BaseStatement] = []
        same_name = False
        for index, stmt in enumerate(body):
            if matches(stmt, m.With(items=[m.WithItem(item=m.Name(ctx))])):
                with_stmt = cst.ensure_type(stmt, cst.With)
                asname = with_stmt.items[0].asname
                if asname is not None:
                    if not isinstance(asname.name, cst.Name):
                        self._skip(
                            fn, f"{fn.name.value}: unpacks {ctx}; rewrite by hand"
                        )
                    alias = cst.ensure_type(asname.name, cst.Name).value
                    if alias != config.session_variable:
                        replacements[alias] = cst.Name(config.session_variable)
                    else:
                        same_name = True
                inner = (
                    list(cst.ensure_type(with_stmt.body, cst.IndentedBlock).body)
                    if isinstance(with_stmt.body, cst.IndentedBlock)
                    else [cst.SimpleStatementLine(body=list(with_stmt.body.body))]
                )
                if inner:
                    inner[0] = inner[0].with_changes(
                        leading_lines=[
                            *with_stmt.leading_lines,
                            *inner[0].leading_lines,
                        ]
                    )
                later = names_used(cst.Module(body=body[index + 1 :]), database)
                bound = (
                    cst.ensure_type(asname.name, cst.Name).value
                    if asname is not None
                    else None
                )
                if later and (
                    bound is not None
                    or config.session_variable not in identifiers(fn)
                ):
                    # in the block's own name for its session (renamed with it)
                    committer = bound or config.session_variable
                    same_name = same_name or bound is None
                    inner.append(cst.parse_statement(f"{committer}.commit()\n"))
                out.extend(inner)
                continue
            if findall(stmt, m.Name(ctx)):
                self._skip(
                    fn,
                    f"{fn.name.value}: uses {ctx} inside a nested block and also old fixtures; "
                    "rewrite by hand",
                )
            out.append(stmt)
        return out, same_name

    def _inline(
        self,
        fn: cst.FunctionDef,
        recipe: fx.Fixture,
        replacements: dict[str, cst.BaseExpression],
        factories: set[str],
        reserved: set[str],
    ) -> list[cst.BaseStatement]:
        """The recipe's statements, assigning the fixture's name, rewritten for the test.

        Only the renaming of the recipe's locals that would collide with the test depends on
        the test; the rest is computed once per recipe (and the statements shared).
        """
        shape = self._recipe_shape(recipe)
        renames: dict[str, str] = {}
        for local in shape["locals"]:
            if local in reserved or local == recipe.name:
                fresh = f"{recipe.name}_{local}"
                while fresh in reserved:
                    fresh += "_"
                renames[local] = fresh
                reserved.add(fresh)
        key = (
            "inline",
            recipe.rel,
            recipe.line,
            recipe.name,
            recipe.source,
            tuple(sorted(renames.items())),
        )
        cache = self.analysis.cache
        if key not in cache:
            cache[key] = self._rewrite_recipe(recipe, shape, renames)
        stmts, needed, unknown, failed = cache[key]
        if failed:
            self._skip(
                fn,
                f"{fn.name.value}: the recipe of {recipe.name!r} ({recipe.where}) cannot be inlined "
                "mechanically; rewrite by hand",
            )
        for attr in unknown:
            self.report(
                fn,
                f"{fn.name.value}: the inlined recipe of {recipe.name!r} refreshes {attr!r}, which "
                "may be a relationship collection; check it by hand",
            )
        for free, (source, obj, asname) in needed:
            if free not in self._bindings:
                AddImportsVisitor.add_needed_import(self.context, source, obj, asname)  # type: ignore[arg-type]
                self._bindings[free] = (source, obj, asname)
        # a recipe's comments say once per module what its statements do, where it first
        # appears; the tests after it repeat the statements only
        origin = (recipe.rel, recipe.line, recipe.name)
        if origin in self._explained:
            quiet = ("uncommented", *key[1:])
            if quiet not in cache:
                cache[quiet] = rewrite.drop_comments(stmts)
            return list(cache[quiet])
        self._explained.add(origin)
        return list(stmts)

    def _recipe_shape(self, recipe: fx.Fixture) -> dict:
        key = ("shape", recipe.rel, recipe.line, recipe.name, recipe.source)
        cache = self.analysis.cache
        if key in cache:
            return cache[key]
        _, body = fx.split_docstring(
            fx.recipe_statements(
                recipe.node(), self.config.session_fixture, recipe.drops_teardown
            )
        )
        last = cst.ensure_type(body[-1], cst.SimpleStatementLine)
        value = cst.ensure_type(last.body[0], cst.Return).value
        assert value is not None
        rest = body[:-1]
        session = self.config.session_variable
        if (
            recipe.kind == fx.MANAGER
            and isinstance(value, cst.Call)
            and fx.omits_session(
                recipe, value, lambda q: self._dep_resolve(q, recipe), session
            )
        ):  # the manager fetched a session itself: it gets the test's
            value = rewrite.add_session_argument(value, session)
        # comments about the fixtures the rewrite removes are not carried into the tests
        gone = set(self.config.removed_names)
        for param in recipe.params:
            dep = self._dep_resolve(param, recipe)
            if dep is not None and dep.kind in (fx.SESSION, fx.MANAGER):
                gone.add(param)
        rest = rewrite.drop_comments_mentioning(rest, gone)
        [last] = rewrite.drop_comments_mentioning([last], gone)
        own = scope_scan(rest)
        returned: str | None = None
        if (
            isinstance(value, cst.Name)
            and value.value in own.bound
            and value.value not in recipe.params
            and any(
                matches(
                    s,
                    m.SimpleStatementLine(
                        body=[
                            m.Assign(
                                targets=[m.AssignTarget(target=m.Name(value.value))]
                            )
                        ]
                    ),
                )
                for s in rest
            )
        ):
            returned = value.value
            stmts = list(rest)
        elif matches(value, m.Name(recipe.name)) and recipe.name in recipe.params:
            # an override returning what it extended: that variable holds it already
            stmts = list(rest)
        else:
            stmts = [
                *rest,
                last.with_changes(
                    body=[
                        cst.Assign(
                            targets=[cst.AssignTarget(cst.Name(recipe.name))],
                            value=value,
                        )
                    ]
                ),
            ]
        shape = {
            "stmts": stmts,
            "returned": returned,
            "locals": sorted(own.bound - {returned} - set(recipe.params)),
        }
        cache[key] = shape
        return shape

    def _rewrite_recipe(
        self, recipe: fx.Fixture, shape: dict, renames: dict[str, str]
    ) -> tuple:
        config = self.config
        graph = self.analysis.graph
        local_replacements: dict[str, cst.BaseExpression] = {
            config.session_fixture: cst.Name(config.session_variable)
        }
        if shape["returned"] is not None:
            local_replacements[shape["returned"]] = cst.Name(recipe.name)
        for local, fresh in renames.items():
            local_replacements[local] = cst.Name(fresh)
        # the recipe's parameters: the session -> session, plain managers -> managers.x
        recipe_factories = set()
        for param in recipe.params:
            dep = self._dep_resolve(param, recipe)
            if dep is not None and dep.kind == fx.SESSION:
                local_replacements[param] = cst.Name(config.session_variable)
            elif (
                dep is not None
                and dep.kind == fx.MANAGER
                and not self._manager_rebuilt(dep)
            ):
                local_replacements[param] = rewrite.managers_attr(
                    config, dep.manager_short or param
                )
            elif dep is not None and dep.kind == fx.FACTORY:
                recipe_factories.add(param)
        stmts, rewriter = rewrite.rewrite_names(
            shape["stmts"],
            local_replacements,
            recipe_factories,
            config.session_variable,
        )
        if rewriter.conflicts or rewriter.factory_values:
            return [], [], [], True
        stmts, cleaner = rewrite.clean_statements(
            stmts, config.session_variable, self.analysis.attribute_kind
        )
        stmts = _unwrap_log_only_try(stmts, config.session_variable)
        # the names the recipe takes from its module, which a test module may lack
        needed = []
        module = graph.modules.get(recipe.rel) or (
            graph.fallback.modules.get(recipe.rel) if graph.fallback else None
        )
        for free in dict.fromkeys(fx.scan(stmts).used):
            if free in recipe.imports:
                source, obj, asname = recipe.imports[free]
                needed.append((free, (source, obj, asname)))
            elif free in recipe.module_names and module is not None:
                needed.append((free, (module.module, free, None)))
        return stmts, needed, [attr for _, attr in cleaner.unknown], False


# ------------------------------------------------------- usefixtures marks become parameters

_PYTESTMARK_LINE = m.SimpleStatementLine(
    body=[m.Assign(targets=[m.AssignTarget(m.Name("pytestmark"))])]
)


class MarkedFixturesAsParameters(RefactorCodemod):
    """A ``usefixtures`` mark of a fixture phase 4 removes becomes a parameter of every test
    it covers.

    ``pytestmark = pytest.mark.usefixtures("test_greenhouse")`` (or the same mark on a class
    or on a test) asks pytest to set ``test_greenhouse`` up before each test it covers, ahead
    of the test's own parameters. Asking for it as the test's first parameters (nearest mark
    first, as pytest reads them) does the same, and makes it a request
    :class:`RefactorTestFunctions` rewrites like any other: the fixture is rebuilt in the
    test's block, without a binding when nothing reads it. The name leaves the mark, and the
    mark leaves the code once it names nothing (an element of a ``pytestmark`` list goes). A
    test left as it is keeps the parameter, and phase 4 keeps the fixture for it as it kept
    it for the mark. A mark stays as it is where the module or its classes define the
    fixture, or where some test of the module parametrizes the name. An autouse object
    fixture the module defines is moved the same way, as if the module marked it
    (:meth:`_movable_autouse`)."""

    STEP = "5.2"
    DESCRIPTION = (
        "A usefixtures mark of a fixture phase 4 removes becomes the first parameter of each "
        "test it covers."
    )
    ANALYZE = analyze

    def visit_Module(self, node: cst.Module) -> bool:
        rel = relpath_for(self.context.filename, self.analysis.root)
        if rel is None:
            raise SkipFile("outside the target")
        self._rel = rel
        functions = list(fx.collected_functions(node.body))
        self._local = {fx.registered_name(f) for f in functions if fx.is_fixture(f)}
        self._parametrized: set[str] = set().union(
            *(fx.parametrized_names(f.decorators) for f in functions if fx.is_test_function(f, self.analysis.naming))
        )
        #: the movable autouse fixtures of the module (key None) and of its top-level
        #: classes (key: the class node's id)
        self._autouse: dict[int | None, list[str]] = {None: self._movable_autouse(node, rel)}
        bases = {
            b.value.value
            for c in _class_defs(node.body)
            for b in c.bases
            if isinstance(b.value, cst.Name)
        }
        for stmt in node.body:
            if isinstance(stmt, cst.ClassDef) and stmt.name.value not in bases:
                self._autouse[id(stmt)] = self._movable_autouse(node, rel, stmt)
        if not any(self._autouse.values()) and not any(
            self._movable(n) for n in fx.marked_names(node)
        ):
            raise SkipFile("no usefixtures mark of a fixture phase 4 removes")
        self._levels = [[*self._autouse[None], *self._mark_names(node.body)]]
        return True

    def _movable_autouse(
        self, module: cst.Module, rel: str, cls: cst.ClassDef | None = None
    ) -> list[str]:
        """The autouse fixtures the module itself (or its top-level class ``cls``) defines
        that phase 5 rebuilds in a test (an object fixture, set up once per test, with no
        teardown). Like a ``usefixtures`` mark of the module (or class), each runs before
        every test there: asked for as the tests' first parameters, without ``autouse``, it
        runs as before, and the rewritten tests build it in their own block, in their own
        session. (The caller leaves out a class another class of the module derives from,
        whose tests would lose the fixture.)"""
        owner = cls.body.body if cls is not None and isinstance(cls.body, cst.IndentedBlock) else ()
        candidates = _autouse_fixtures(module.body if cls is None else owner)
        if not candidates:
            return []
        # classified as they would be without ``autouse`` (the classifier leaves an autouse
        # fixture alone: every test would need its recipe, which is what happens here)
        names = {name for name, _ in candidates}

        def plain_body(body: Sequence[cst.BaseStatement]) -> list[cst.BaseStatement]:
            return [
                fx.without_autouse(f) if isinstance(f, cst.FunctionDef) and fx.is_fixture(f) and fx.registered_name(f) in names else f
                for f in body
            ]

        layers: list[tuple[Sequence[cst.FunctionDef], bool]] = []
        if cls is None:
            plain = module.with_changes(body=plain_body(module.body))
        else:
            new_cls = cls.with_changes(body=cls.body.with_changes(body=plain_body(owner)))
            plain = module.with_changes(body=[new_cls if s is cls else s for s in module.body])
            methods = [f for f in new_cls.body.body if isinstance(f, cst.FunctionDef) and fx.is_fixture(f)]
            layers.append((methods, True))
        fixtures = [f for f in plain.body if isinstance(f, cst.FunctionDef) and fx.is_fixture(f)]
        table = fx.local_fixtures(self.analysis, plain, rel, [(fixtures, False), *layers])
        out = []
        for name, stmt in candidates:
            fixture = table.get(name)
            if (
                fixture is not None
                and fixture.kind == fx.OBJECT
                and fixture.problem is None
                and not fixture.yields
                and fx.per_test(cst.ensure_type(stmt, cst.FunctionDef))
                and name not in self._parametrized
            ):
                out.append(name)
        return out

    def _movable(self, name: str) -> bool:
        if name in self._local or name in self._parametrized:
            return False
        fixture = self.analysis.graph.resolve(name, self._rel)
        if fixture is not None:
            return fixture.kind in fx.REMOVED_KINDS
        return name == self.config.session_fixture

    def _mark_names(self, nodes: Sequence[cst.CSTNode]) -> list[str]:
        """The movable names of the marks among ``nodes`` (decorators, or the statements of a
        body, of which only ``pytestmark = ...`` counts)."""
        marks = [
            n for n in nodes if isinstance(n, cst.Decorator) or m.matches(n, _PYTESTMARK_LINE)
        ]
        names = (n for mark in marks for n in fx.usefixtures_names(mark))
        return list(dict.fromkeys(n for n in names if self._movable(n)))

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
        autouse = self._autouse.get(id(node), [])
        self._levels.append([*autouse, *self._mark_names([*node.decorators, *body])])
        return True

    def leave_ClassDef(
        self, original_node: cst.ClassDef, updated_node: cst.ClassDef
    ) -> cst.ClassDef:
        moved = self._levels.pop()
        if not moved:
            return updated_node
        autouse = self._autouse.get(id(original_node), [])
        body = updated_node.body
        if isinstance(body, cst.IndentedBlock):
            kept = [
                fx.without_autouse(stmt)
                if isinstance(stmt, cst.FunctionDef) and fx.registered_name(stmt) in autouse
                else stmt
                for stmt in self._statements_without(body.body, moved)
            ]
            body = body.with_changes(body=kept or [cst.SimpleStatementLine([cst.Pass()])])
        return updated_node.with_changes(
            decorators=self._decorators_without(updated_node.decorators, moved), body=body
        )

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False  # nothing inside a function marks a test

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        if not fx.is_test_function(original_node, self.analysis.naming):
            return updated_node
        own = self._mark_names(original_node.decorators)
        names = list(dict.fromkeys([*own, *(n for level in reversed(self._levels) for n in level)]))
        if not names:
            return updated_node
        return updated_node.with_changes(
            decorators=self._decorators_without(updated_node.decorators, own),
            params=_asking_first(updated_node.params, names, method=len(self._levels) > 1),
        )

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        moved = self._levels[0]
        if not moved:
            return updated_node
        body = [
            fx.without_autouse(stmt)
            if isinstance(stmt, cst.FunctionDef) and fx.registered_name(stmt) in self._autouse[None]
            else stmt
            for stmt in self._statements_without(updated_node.body, moved)
        ]
        return updated_node.with_changes(body=body)

    # ------------------------------------------------------------------ the marks without
    def _decorators_without(
        self, decorators: Sequence[cst.Decorator], names: list[str]
    ) -> list[cst.Decorator]:
        out = []
        for decorator in decorators:
            value = _mark_without(decorator.decorator, names)
            if value is not None:
                out.append(decorator.with_changes(decorator=value))
        return out

    def _statements_without(
        self, body: Sequence[cst.BaseStatement], names: list[str]
    ) -> list[cst.BaseStatement]:
        out: list[cst.BaseStatement] = []
        for stmt in body:
            if m.matches(stmt, _PYTESTMARK_LINE):
                line = cst.ensure_type(stmt, cst.SimpleStatementLine)
                assign = cst.ensure_type(line.body[0], cst.Assign)
                value = _mark_without(assign.value, names)
                if value is None:
                    continue
                stmt = line.with_changes(body=[assign.with_changes(value=value)])
            out.append(stmt)
        return out


def _class_defs(body: Sequence[cst.CSTNode]) -> Iterator[cst.ClassDef]:
    """The classes of a module body, nested ones too (not those inside functions)."""
    for stmt in body:
        if isinstance(stmt, cst.ClassDef):
            yield stmt
            if isinstance(stmt.body, cst.IndentedBlock):
                yield from _class_defs(stmt.body.body)


def _every_param(params: cst.Parameters) -> list[cst.Param]:
    star = [p for p in (params.star_arg, params.star_kwarg) if isinstance(p, cst.Param)]
    return [*params.posonly_params, *params.params, *params.kwonly_params, *star]


def _asking_first(params: cst.Parameters, names: list[str], method: bool) -> cst.Parameters:
    """``params`` asking for ``names`` first (after the instance parameter of a method), in
    that order and once each; the other parameters keep their order."""
    items = list(params.params)
    head = items[:1] if method and items else []
    rest = [p for p in items[len(head) :] if p.name.value not in names]
    ordered = [*head, *(cst.Param(cst.Name(n)) for n in names), *rest]
    last_comma = items[-1].comma if items else cst.MaybeSentinel.DEFAULT
    comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    fixed = [
        p.with_changes(comma=comma)
        if isinstance(p.comma, cst.MaybeSentinel)
        else p
        for p in ordered[:-1]
    ]
    return params.with_changes(params=[*fixed, ordered[-1].with_changes(comma=last_comma)])


def _string_value(node: cst.BaseExpression) -> str | None:
    value = node.evaluated_value if isinstance(node, cst.SimpleString) else None
    return value if isinstance(value, str) else None


def _mark_without(expr: cst.BaseExpression, names: list[str]) -> cst.BaseExpression | None:
    """``expr`` (a mark, or a list or tuple of marks) without ``names`` in its usefixtures
    calls; None when nothing of it is left."""
    if m.matches(expr, fx.USEFIXTURES_CALL):
        call = cst.ensure_type(expr, cst.Call)
        args = [a for a in call.args if _string_value(a.value) not in names]
        if len(args) == len(call.args):
            return call
        if not args:
            return None
        return call.with_changes(
            args=[*args[:-1], args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)]
        )
    if isinstance(expr, (cst.List, cst.Tuple)):
        elements = []
        for element in expr.elements:
            value = _mark_without(element.value, names)
            if value is not None:
                elements.append(element.with_changes(value=value))
        if not elements:
            return None
        if len(elements) != len(expr.elements):
            single_tuple = isinstance(expr, cst.Tuple) and len(elements) == 1
            elements[-1] = elements[-1].with_changes(
                comma=cst.Comma() if single_tuple else cst.MaybeSentinel.DEFAULT
            )
        return expr.with_changes(elements=elements)
    return expr


# ------------------------------------------------------------------------------- shared helpers


def shared_helpers(
    project: Project, analysis: fx.FixtureAnalysis
) -> dict[tuple[str, ...], SharedHelper]:
    """The helpers that setups of tests in two or more modules share: each is defined once,
    in the fixture module nearest to all the modules that would write it, instead of once in
    each. Found by running the codemod over the candidate modules without finishing them
    (their setups, as each module's own helpers are found), then sharing across modules as
    :meth:`RefactorTestFunctions._share_setups` shares within one."""
    surveyed: list[RefactorTestFunctions] = []
    kept = analysis.cache.setdefault(_SURVEYED, {})
    for rel in files(project, analysis):

        def context(rel: str = rel) -> CodemodContext:
            return CodemodContext(
                filename=project.path_str(rel), full_module_name=project.module_name(rel)
            )

        tree = project.parse(rel)
        try:
            tree = MarkedFixturesAsParameters(context(), analysis).transform_module_impl(tree)
        except SkipFile:
            pass
        codemod = RefactorTestFunctions(context(), analysis)
        codemod.survey = True
        try:
            codemod.transform_module_impl(tree)
        except SkipFile:
            continue
        kept[rel] = (tree, codemod)
        if codemod._setups:
            surveyed.append(codemod)
    if len(surveyed) < 2:
        return {}
    return _share_across(project, analysis, surveyed)


def _where(fixture: fx.Fixture | None) -> tuple[str, int] | None:
    return None if fixture is None else (fixture.rel, fixture.line)


def _share_across(
    project: Project,
    analysis: fx.FixtureAnalysis,
    surveyed: list[RefactorTestFunctions],
) -> dict[tuple[str, ...], SharedHelper]:
    """The helpers ``surveyed`` (the candidate modules, rewritten without their helpers)
    share, by their setup code."""
    graph = analysis.graph
    serving = {c._rel: graph.fixture_modules_serving(c._rel) for c in surveyed}
    homes: dict[str, dict | None] = {}

    def home_bindings(home: str) -> dict | None:
        """The fixture module's module-level names (None where it is not a file)."""
        if home not in homes:
            homes[home] = (
                fx.top_level_bindings(project.parse(home)) if project.exists(home) else None
            )
        return homes[home]

    # ---- setups shared whole by tests of two or more modules
    groups: dict[tuple[str, ...], list[tuple[RefactorTestFunctions, _Setup, _Cut]]] = {}
    for codemod in surveyed:
        for _fn, setup in codemod._setups:
            cut = codemod._cut(setup, len(setup.statements))
            if cut is not None and cut.assigned and not cut.not_fixtures:
                groups.setdefault(setup.codes, []).append((codemod, setup, cut))
    plans: dict[tuple[str, ...], _Plan] = {}
    facts: dict[tuple[str, ...], tuple[str, tuple, frozenset[str]]] = {}
    owners: dict[tuple[str, ...], RefactorTestFunctions] = {}
    #: a helper (id) -> the tests that would call it: their module, setup, statements it runs
    callers: dict[int, list[tuple[RefactorTestFunctions, _Setup, int]]] = {}
    for key, group in groups.items():
        rels = list(dict.fromkeys(c._rel for c, _, _ in group))
        if len(rels) < 2:
            continue
        first_codemod, setup, cut = group[0]
        if any(c.passed != cut.passed or c.first != cut.first for _, _, c in group):
            continue
        fixtures = cut.passed[cut.first :]

        def resolved(
            codemod: RefactorTestFunctions, fixtures: tuple[str, ...] = fixtures
        ) -> tuple | None:
            found = tuple(_where(codemod._resolve(n)) for n in fixtures)
            return None if None in found else found

        same = {resolved(c) for c, _, _ in group}
        if len(same) != 1 or None in same:
            continue
        scan = scope_scan(setup.statements)
        free = [
            n
            for n in dict.fromkeys(fx.scan(setup.statements).used)
            if n not in scan.bound and n not in cut.passed and not hasattr(builtins, n)
        ]
        imported = [{n: c._bindings.get(n) for n in free} for c, _, _ in group]
        if any(v is None for v in imported[0].values()) or any(
            i != imported[0] for i in imported
        ):
            continue  # a name of the module's own, or imported otherwise elsewhere
        home = _nearest_common([serving[r] for r in rels])
        if home is None:
            continue
        bindings = home_bindings(home[0])
        needs = {"pytest": ("pytest", None, None), **imported[0]}
        if (
            bindings is None
            or (home[1] and "__all__" in bindings)
            or any(n in bindings and bindings[n] != v for n, v in needs.items())
        ):
            continue
        plan = _Plan(key, list(setup.statements), cut)
        plans[key] = plan
        callers[id(plan)] = [(c, s, len(key)) for c, s, _ in group]
        owners[key] = first_codemod
        modules = frozenset(
            c._rel
            for c in surveyed
            if any(m == home[0] for m, _ in serving[c._rel]) and resolved(c) in same
        )
        facts[key] = (home[0], tuple(v for v in imported[0].values() if v), modules)
    if not plans:
        return {}

    def prefix_plans(codes: tuple[str, ...]) -> list[_Plan]:
        return _prefix_plans(plans, codes)

    def fits(
        codemod: RefactorTestFunctions, candidate: _Plan, setup: _Setup, count: int
    ) -> bool:
        cut = codemod._cut(setup, count)
        return (
            codemod._rel in facts[candidate.key][2]
            and cut is not None
            and not (cut.not_fixtures & set(candidate.fixtures))
        )

    def retake(codemod: RefactorTestFunctions, setup: _Setup, below: int) -> None:
        for candidate in prefix_plans(setup.codes):
            if len(candidate.key) < below and fits(
                codemod, candidate, setup, len(candidate.key)
            ):
                callers[id(candidate)].append((codemod, setup, len(candidate.key)))
                return

    # ---- the tests whose setup starts with a shared one call it too
    for codemod in surveyed:
        for _fn, setup in codemod._setups:
            if setup.codes not in plans:
                retake(codemod, setup, len(setup.codes))

    # ---- what each returns, and the longer helpers built on shorter ones (as one of the
    # modules that share the longer one sees them), longest first, as within a module
    # (:meth:`RefactorTestFunctions._share_setups`); a helper is shared by two modules or
    # more
    built: dict[int, list[tuple[_Plan, _Setup, frozenset[str]]]] = {}
    users: dict[int, set[str]] = {}

    def find_base(plan: _Plan, pseudo: _Setup, below: int) -> None:
        plan.base = None
        owner = owners[plan.key]
        for candidate in prefix_plans(plan.key):
            cut = owner._cut(pseudo, len(candidate.key))
            if (
                len(candidate.key) < below
                and cut is not None
                and not (cut.not_fixtures & set(candidate.fixtures))
                and facts[plan.key][2] <= facts[candidate.key][2]
            ):
                plan.base = candidate
                built.setdefault(id(candidate), []).append((plan, pseudo, cut.needed))
                return

    #: a setup (id) -> its test
    tests_of = {id(setup): fn for codemod in surveyed for fn, setup in codemod._setups}
    live: list[_Plan] = []
    for plan in sorted(plans.values(), key=lambda p: len(p.key), reverse=True):
        tests = [
            (t, t[0]._cut(t[1], t[2]).needed)  # type: ignore[union-attr]
            for t in callers[id(plan)]
        ]
        longer = built.pop(id(plan), [])

        def own_lines(
            codemod: RefactorTestFunctions, setup: _Setup, end: int = len(plan.key)
        ) -> int:
            return _own_lines(plans, codemod, setup, end)

        keep = _returned(
            [(n, own_lines(t[0], t[1])) for t, n in tests]
            + [(n, own_lines(owners[p.key], s)) for p, s, n in longer]
        )
        def modules_of(fit: list[Any], fit_longer: list[Any]) -> set[str]:
            return {t[0]._rel for t in fit}.union(*(users[id(b[0])] for b in fit_longer))

        fit, fit_longer = _settle_callers(
            tests, longer, keep,
            lambda f, b: len(f) + len(b) >= 2 and len(modules_of(f, b)) >= 2,
            retake, find_base, len(plan.key),
        )
        modules = modules_of(fit, fit_longer)
        if not fit and not fit_longer:
            continue
        plan.annotate = bool(fit) and all(
            _annotates(tests_of.get(id(setup))) for _c, setup, _n in fit
        )
        users[id(plan)] = modules
        live.append(plan)
        for _codemod, setup, _count in fit:
            plan.names |= setup.names
        plan.returned = [n for n in plan.cut.assigned if n in keep] or [
            plan.cut.assigned[-1]
        ]
        plan.arguments = list(plan.cut.passed[: plan.cut.first])
        pseudo = _Setup(
            plan.statements,
            plan.key,
            [cst.parse_statement(f"return {', '.join(plan.returned)}\n")],
            list(plan.cut.passed),
            0,
        )
        owners[plan.key]._pseudo.append(pseudo)  # alive while its cuts are cached by id
        find_base(plan, pseudo, len(plan.key))
    if not live:
        return {}

    # ---- names, shorter helpers first: none any module, conftest or fixture has, nor a
    # helper a module that may call this one sees
    taken = set(graph.names())
    for codemod in surveyed:
        taken |= set(codemod._bindings) | codemod._module_fixture_names
    for home in {f[0] for f in facts.values()}:
        taken |= set(home_bindings(home) or ())
    ordered = sorted(live, key=lambda p: (len(p.key), p.key))

    def annotations(plan: _Plan, requested: list[str]) -> _HelperTypes | None:
        types = _helper_types(plan, requested, owners[plan.key]._resolve, analysis.config)
        every = _Typed.compose("", types.every()) if types is not None else None
        bindings = home_bindings(facts[plan.key][0])
        if every is None or bindings is None or every.imports_for(bindings) is None:
            return None
        return types

    named: list[_Plan] = []
    codes: dict[tuple[str, ...], str] = {}
    written: set[tuple[str, ...]] = set()
    for plan in ordered:
        modules = facts[plan.key][2]
        seen = {p.name for p in named if facts[p.key][2] & modules}
        # the same helper an earlier run (of other modules) wrote into the conftest
        plan.name = _helper_name(
            plan.returned, lambda c, plan=plan, seen=seen: c in seen or c in plan.names
        )
        code = _helper_source(_helper_code(plan, "pytest.fixture", annotations))
        if _fixture_sources(project, facts[plan.key][0]).get(plan.name) == code:
            written.add(plan.key)
        else:
            plan.name = _helper_name(
                plan.returned,
                lambda c, plan=plan, seen=seen: c in taken or c in seen or c in plan.names,
            )
            code = _helper_source(_helper_code(plan, "pytest.fixture", annotations))
        codes[plan.key] = code
        named.append(plan)

    out: dict[tuple[str, ...], SharedHelper] = {}
    for plan in ordered:
        home, imported, modules = facts[plan.key]
        if plan.types is not None:  # and what its annotations need
            every = _Typed.compose("", plan.types.every())
            bindings = home_bindings(home) or {}
            wanted = every.imports_for(bindings) if every is not None else None
            imported = (*imported, *(wanted or {}).values())
        out[plan.key] = SharedHelper(
            plan.key,
            plan.name,
            home,
            codes[plan.key],
            tuple(plan.cut.passed),
            plan.cut.first,
            tuple(plan.cut.assigned),
            tuple(plan.returned),
            frozenset(plan.requests),
            imported,
            modules,
            plan.base.key if plan.base is not None else None,
            plan.key in written,
            plan.types.helper if plan.types is not None else None,
        )
    return out


def _helper_source(fn: cst.FunctionDef) -> str:
    return cst.Module(body=[fn.with_changes(leading_lines=[])]).code


def _fixture_sources(project: Project, rel: str) -> dict[str, str]:
    """The module-level fixtures of a fixture module, by name: their code."""
    if not project.exists(rel):
        return {}
    return {
        stmt.name.value: _helper_source(stmt)
        for stmt in project.parse(rel).body
        if isinstance(stmt, cst.FunctionDef) and fx.is_fixture(stmt)
    }


def _nearest_common(servings: list[list[tuple[str, bool]]]) -> tuple[str, bool] | None:
    """The fixture module all of ``servings`` (each nearest first) share, nearest to all of
    them (the smallest of its furthest places), with whether a star import reaches it."""
    best: tuple[int, tuple[str, bool]] | None = None
    for index, (module, starred) in enumerate(servings[0]):
        places = []
        reached = starred
        for serving in servings:
            place = next((i for i, (m, s) in enumerate(serving) if m == module), None)
            if place is None:
                break
            places.append(place)
            reached = reached or serving[place][1]
        else:
            rank = max(places)
            if best is None or rank < best[0]:
                best = (rank, (module, reached))
    return best[1] if best is not None else None


def generate(
    project: Project, analysis: fx.FixtureAnalysis, step_ids: Sequence[str]
) -> dict[str, bytes]:
    """The conftests with the shared helpers the rewritten modules call (a helper they are
    built on too) added at their end, with the imports their code needs."""
    shared: dict[tuple[str, ...], SharedHelper] = analysis.cache.get(_SHARED, {})
    if "5.2" not in step_ids or not shared:
        return {}
    texts: dict[str, str] = {}

    def called(helper: SharedHelper) -> bool:
        pattern = re.compile(rf"\b{re.escape(helper.name)}\b")
        for rel in helper.modules:
            if rel not in texts:
                texts[rel] = project.read_text(rel) if project.exists(rel) else ""
            if pattern.search(texts[rel]):
                return True
        return False

    used = {key for key, helper in shared.items() if called(helper)}
    for key in list(used):
        base = shared[key].base
        while base is not None and base in shared:
            used.add(base)
            base = shared[base].base
    by_home: dict[str, list[SharedHelper]] = {}
    for key in sorted(used, key=lambda k: (len(k), k)):
        if not shared[key].written:
            by_home.setdefault(shared[key].home, []).append(shared[key])
    out: dict[str, bytes] = {}
    for home, helpers in by_home.items():
        tree = project.parse(home)
        blank = cst.EmptyLine(indent=False)
        added = [
            cst.parse_statement(h.code).with_changes(leading_lines=[blank, blank])
            for h in helpers
        ]
        tree = tree.with_changes(body=[*tree.body, *added])
        bindings = fx.top_level_bindings(tree)
        wanted = {("pytest", None, None)} | {i for h in helpers for i in h.imports}
        missing = [
            imports.Wanted(module, obj, asname)
            for module, obj, asname in sorted(wanted, key=str)
            if (asname or obj or module.split(".")[0]) not in bindings
        ]
        if missing:
            done = imports.add_imports(
                tree, missing, first_party(project.root, project.module_name(home))
            )
            if done is None:
                context = CodemodContext(
                    filename=project.path_str(home),
                    full_module_name=project.module_name(home),
                )
                for w in missing:
                    AddImportsVisitor.add_needed_import(context, w.module, w.obj, w.asname)
                done = AddImportsVisitor(context).transform_module(tree)
            tree = done
        out[home] = tree.bytes
    return out


def analyze_phase(project: Project) -> fx.FixtureAnalysis:
    """:func:`analyze`, and the helpers test modules share (:func:`shared_helpers`)."""
    analysis = analyze(project)
    analysis.cache[_SHARED] = shared_helpers(project, analysis)
    return analysis


# ------------------------------------------------------------------------------- the phase

PHASE = PhaseSpec(
    5,
    "Refactor Individual Test Files",
    "Update all test files to use the new session context, manager factory, and refactored "
    "data factories.",
    (
        StepSpec(
            "5.1",
            "Choose a Test Module",
            note=(
                "The tool takes every test module at once: the modules whose text mentions a "
                "fixture phase 4 removed (or a factory fixture) are the candidates; "
                "`--only PATH` restricts a run to chosen modules, to go module by module."
            ),
        ),
        StepSpec(
            "5.2",
            "Refactor Test Functions",
            (MarkedFixturesAsParameters, RefactorTestFunctions),
            generates=True,
        ),
        StepSpec(
            "5.3",
            "Verify Module Tests",
            note=(
                "The phase-5 gate runs the target's suite after the rewrite and compares it "
                "with the baseline: any test that passed before and fails now is a failure of "
                "the phase, with its module named; the tests that failed before and pass now "
                "are listed as fixed. What the codemod would not rewrite is reported with "
                "file:line for the manual part of this step."
            ),
        ),
        StepSpec(
            "5.4",
            "Repeat for All Test Modules",
            note="Done in the same run: step 5.2 applies to every candidate module of step 5.1.",
        ),
    ),
    files=files,
    analyze=analyze_phase,
    generate=generate,
    verification=(
        "The number of passing tests should increase as each module is refactored. The original "
        "problematic test (`test_add_event_with_active_scene`) should pass once `test_event.py` "
        "is correctly refactored. Eventually, `uv run pytest -v --log-cli-level=DEBUG` should "
        "show all tests passing."
    ),
)
