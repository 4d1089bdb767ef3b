"""``refactor-tool check``: the end state of the refactoring as static invariants.

:func:`run_checks` reads the target (through :class:`~refactor_tool.model.project.Project`, so the
files are parsed at most once and only after a cheap text prefilter) and returns one
:class:`CheckResult` per invariant of the design, each failure with the file, the line and
what to do about it:

1. no ``scoped_session`` / ``get_session`` / ``close_session`` anywhere in the code (imports,
   definitions, uses, ``__all__`` re-exports); comments and docstrings do not count;
2. ``DatabaseManager.session`` is a ``sessionmaker``; ``SessionContext.__enter__`` makes a new
   session by calling it, ``__exit__`` commits or rolls back and closes it in ``finally``;
3. ``BaseManager.__init__`` requires ``session``; no ``_get_session`` anywhere;
   ``_execute_db_operation`` neither commits nor rolls back; ``_lazy_init_manager`` hands the
   parent's session to the managers it creates;
4. the factory module has ``create_all_managers(session) -> SimpleNamespace`` that creates
   every manager class found in the code (subclasses of ``BaseManager``, transitively), each
   with the session, each dependency created before it is passed, all of them returned (a
   ``SimpleNamespace`` subclass of the module may build some on first access);
5. no ``db_session`` fixture and no manager fixtures in any conftest, every ``create_test_*``
   fixture's inner function takes ``session`` first, no ``merge()`` in a conftest;
6. every test that touches the database (requests ``session_context``, a factory fixture or
   another fixture built on the database, or builds managers) opens
   ``with session_context as session:``, passes that session to the factories, gets its
   managers from ``create_all_managers(session)`` (or builds them with the session) and
   requests no fixture the refactoring removed.

Every name comes from :class:`~refactor_tool.model.config.Config`; the manager classes and the
fixtures come from analysis of the code, never from a list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Iterable, Iterator, NamedTuple, Optional, Sequence

import libcst as cst
import libcst.matchers as m
from libcst.matchers import matches
from libcst.metadata import MetadataWrapper, PositionProvider

from .model.config import Config
from .model.fixtures import (
    REMOVED_KINDS,
    is_fixture,
    is_test_module,
    pytest_naming,
    registered_name,
    test_modules,
)
from .model.managers import stored_attribute
from .model.project import InputError, Project, location
from .model.state import state_of
from .model.syntax import Visitor, code, findall


class Failure(NamedTuple):
    path: str
    line: Optional[int]
    message: str

    def __str__(self) -> str:
        return f"{location(self.path, self.line)}: {self.message}"


@dataclass
class CheckResult:
    number: int
    title: str
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.number,
            "number": self.number,
            "title": self.title,
            "ok": self.ok,
            "failures": [f._asdict() for f in self.failures],
        }


def titles(config: Config) -> dict[int, str]:
    """The invariants' short texts (with the target's names)."""
    apis = ", ".join(config.removed_session_apis)
    return {
        1: f"no {apis} anywhere (code, imports, re-exports)",
        2: (
            f"{config.database_manager_class}.session is a sessionmaker; "
            f"{config.session_context_class} makes, commits or rolls back, and closes its session"
        ),
        3: (
            f"{config.base_manager_class} requires a session and never commits; "
            f"no {config.get_session_method}; lazy managers share the session"
        ),
        4: (
            f"{config.factory_function}(session) -> SimpleNamespace builds every manager "
            "in dependency order"
        ),
        5: (
            f"no {config.session_fixture} or manager fixtures; {config.factory_fixture_prefix}* "
            "take session first; no merge"
        ),
        6: (
            f"every test that touches the database uses {config.session_context_fixture} "
            f"and {config.factory_function}"
        ),
    }


# ------------------------------------------------------------------------------- helpers

_FIXTURE_FUNC = m.Name("fixture") | m.Attribute(attr=m.Name("fixture"))
_FIXTURE = m.Decorator(decorator=_FIXTURE_FUNC | m.Call(func=_FIXTURE_FUNC))
_SELF = m.Name("self")


def _method_call(name: str) -> m.Call:
    return m.Call(func=m.Attribute(attr=m.Name(name)))


class _Source:
    """The parsed files of one check run, with line numbers computed on demand."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._positions: dict[str, Any] = {}

    def parse(self, rel: str) -> cst.Module:
        return self.project.parse(rel)

    def line(self, rel: str, node: cst.CSTNode) -> Optional[int]:
        positions = self._positions.get(rel)
        if positions is None:
            wrapper = MetadataWrapper(self.parse(rel), unsafe_skip_copy=True)
            positions = wrapper.resolve(PositionProvider)
            self._positions[rel] = positions
        pos = positions.get(node)
        return pos.start.line if pos is not None else None

    def fail(self, rel: str, node: Optional[cst.CSTNode], message: str) -> Failure:
        return Failure(rel, self.line(rel, node) if node is not None else None, message)


def _code(node: cst.CSTNode) -> str:
    return code(node).strip()


def _top_class(module: cst.Module, name: str) -> Optional[cst.ClassDef]:
    for stmt in module.body:
        if isinstance(stmt, cst.ClassDef) and stmt.name.value == name:
            return stmt
    return None


#: ``setattr(self, name, <something built>)``: what a lazy initializer does
_LAZY_SETATTR = m.Call(
    func=m.Name("setattr"),
    args=[m.Arg(value=m.Name("self")), m.Arg(), m.Arg(value=m.Call())],
)


def _methods(cls: cst.ClassDef) -> list[cst.FunctionDef]:
    if not isinstance(cls.body, cst.IndentedBlock):
        return []
    return [stmt for stmt in cls.body.body if isinstance(stmt, cst.FunctionDef)]


def _method(cls: cst.ClassDef, name: str) -> Optional[cst.FunctionDef]:
    if not isinstance(cls.body, cst.IndentedBlock):
        return None
    found = None
    for stmt in cls.body.body:
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value == name:
            found = stmt  # the last definition wins, as in Python
    return found


def _params(fn: cst.FunctionDef) -> list[cst.Param]:
    p = fn.params
    return [*p.posonly_params, *p.params, *p.kwonly_params]


def _param_names(fn: cst.FunctionDef) -> list[str]:
    return [p.name.value for p in _params(fn)]


def _is_conftest(rel: str) -> bool:
    return PurePosixPath(rel).name == "conftest.py"


def _fixture_name(fn: cst.FunctionDef) -> Optional[str]:
    """The name a fixture is requested by; None for a function that is not a fixture."""
    return registered_name(fn) if is_fixture(fn) else None


class _OwnLevel(Visitor):
    """Collects nodes of a function's own body, not those of nested functions or classes."""

    def __init__(self, matcher: m.BaseMatcherNode) -> None:
        self.matcher = matcher
        self.found: list[cst.CSTNode] = []
        self.depth = 0

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            self.depth += 1
            if self.depth > 1:
                return False
        elif matches(node, self.matcher):
            self.found.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if isinstance(original_node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            self.depth -= 1


def _own(fn: cst.FunctionDef, matcher: m.BaseMatcherNode) -> list[cst.CSTNode]:
    visitor = _OwnLevel(matcher)
    fn.visit(visitor)
    return visitor.found


def _functions(module: cst.Module) -> Iterator[tuple[Optional[cst.ClassDef], cst.FunctionDef]]:
    """Top-level functions and the methods of top-level classes."""
    for stmt in module.body:
        if isinstance(stmt, cst.FunctionDef):
            yield None, stmt
        elif isinstance(stmt, cst.ClassDef) and isinstance(stmt.body, cst.IndentedBlock):
            for inner in stmt.body.body:
                if isinstance(inner, cst.FunctionDef):
                    yield stmt, inner


class _Collect(Visitor):
    """One pass over a tree, keeping the nodes of the wanted types (much cheaper than one
    ``m.findall`` per question)."""

    def __init__(self, types: Sequence[type]) -> None:
        self.found: dict[type, list[Any]] = {t: [] for t in types}

    def on_visit(self, node: cst.CSTNode) -> bool:
        bucket = self.found.get(type(node))
        if bucket is not None:
            bucket.append(node)
        return True


def _collect(node: cst.CSTNode, *types: type) -> dict[type, list[Any]]:
    visitor = _Collect(types)
    node.visit(visitor)
    return visitor.found


def _dotted_names(expr: cst.BaseExpression) -> list[cst.Name]:
    """The Name nodes of a dotted name (``a.b.c``)."""
    names = []
    while isinstance(expr, cst.Attribute):
        names.append(expr.attr)
        expr = expr.value
    if isinstance(expr, cst.Name):
        names.append(expr)
    return names


def _call_name(call: cst.Call) -> Optional[str]:
    """``GameManager(...)`` / ``core.game.GameManager(...)`` -> ``GameManager``."""
    func = call.func
    if isinstance(func, cst.Name):
        return func.value
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return None


# ------------------------------------------------------------------------------- 1


def check_removed_apis(src: _Source) -> list[Failure]:
    config = src.project.config
    names = set(config.removed_session_apis)
    if not names:
        return []
    failures: list[Failure] = []
    for rel in src.project.grep(src.project.python_files(), *sorted(names)):
        module = src.parse(rel)
        nodes = _collect(
            module, cst.Import, cst.ImportFrom, cst.FunctionDef, cst.ClassDef, cst.Assign, cst.AugAssign, cst.AnnAssign, cst.Name
        )
        covered: set[int] = set()
        for node in nodes[cst.Import] + nodes[cst.ImportFrom]:
            aliases = node.names
            if isinstance(node, cst.ImportFrom) and node.module is not None:
                covered.update(id(n) for n in _dotted_names(node.module))
                hit = [n.value for n in _dotted_names(node.module) if n.value in names]
                if hit:
                    failures.append(src.fail(rel, node, f"imports from `{hit[0]}`; remove the import ({_advice(hit[0])})"))
            if isinstance(aliases, cst.ImportStar):
                continue
            for alias in aliases:
                parts = _dotted_names(alias.name)
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    parts.append(alias.asname.name)
                covered.update(id(n) for n in parts)
                hit = [n.value for n in parts if n.value in names]
                if hit:
                    failures.append(src.fail(rel, alias, f"imports `{hit[0]}`; remove the import ({_advice(hit[0])})"))
        for node in nodes[cst.FunctionDef] + nodes[cst.ClassDef]:
            covered.add(id(node.name))
            if node.name.value in names:
                failures.append(src.fail(rel, node, f"defines `{node.name.value}`; delete it ({_advice(node.name.value)})"))
        for node in nodes[cst.Assign] + nodes[cst.AugAssign] + nodes[cst.AnnAssign]:
            targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
            if node.value is None or not any(matches(t, m.Name("__all__")) for t in targets):
                continue
            for string in findall(node.value, m.SimpleString()):
                value = cst.ensure_type(string, cst.SimpleString).evaluated_value
                if value in names:
                    failures.append(src.fail(rel, string, f"re-exports `{value}` in __all__; remove the entry"))
        for node in nodes[cst.Name]:
            if node.value in names and id(node) not in covered:
                failures.append(src.fail(rel, node, f"uses `{node.value}`; {_advice(node.value)}"))
    return failures


def _advice(name: str) -> str:
    if name == "scoped_session":
        return "store the sessionmaker itself and let SessionContext create each session"
    return "sessions come from `with SessionContext() as session:` / the session_context fixture"


# ------------------------------------------------------------------------------- 2


def check_session_module(src: _Source) -> list[Failure]:
    config = src.project.config
    rel = config.session_module
    if not src.project.exists(rel):
        return [Failure(rel, None, "session module not found; set session_module in [tool.refactor-tool]")]
    module = src.parse(rel)
    failures: list[Failure] = []

    manager = _top_class(module, config.database_manager_class)
    if manager is None:
        failures.append(Failure(rel, None, f"no class {config.database_manager_class}; set database_manager_class"))
    else:
        failures.extend(_check_sessionmaker_attr(src, rel, manager))

    context = _top_class(module, config.session_context_class)
    if context is None:
        failures.append(Failure(rel, None, f"no class {config.session_context_class}; set session_context_class"))
        return failures
    enter = _method(context, "__enter__")
    if enter is None:
        failures.append(src.fail(rel, context, f"{config.session_context_class} has no __enter__"))
    elif not findall(enter, m.Call(func=m.Attribute(attr=m.Name("session")), args=[])):
        failures.append(
            src.fail(
                rel,
                enter,
                "__enter__ does not create a new session from the sessionmaker; "
                "call `self._db.session()` there",
            )
        )
    exit_ = _method(context, "__exit__")
    if exit_ is None:
        failures.append(src.fail(rel, context, f"{config.session_context_class} has no __exit__"))
        return failures
    closing = [
        t
        for t in findall(exit_, m.Try())
        if cst.ensure_type(t, cst.Try).finalbody is not None
        and findall(cst.ensure_type(t, cst.Try).finalbody, _method_call("close"))  # type: ignore[arg-type]
    ]
    if not closing:
        failures.append(
            src.fail(rel, exit_, "__exit__ does not close the session in a `finally` block; wrap commit/rollback in try/finally")
        )
    for verb in ("commit", "rollback"):
        calls = findall(exit_, _method_call(verb))
        if not calls:
            failures.append(src.fail(rel, exit_, f"__exit__ never calls {verb}(); it must commit on success and roll back on error"))
            continue
        if closing:
            inside = {id(c) for t in closing for part in _try_parts(cst.ensure_type(t, cst.Try)) for c in findall(part, _method_call(verb))}
            for call in calls:
                if id(call) not in inside:
                    failures.append(src.fail(rel, call, f"{verb}() runs outside the try whose finally closes the session"))
    return failures


def _try_parts(node: cst.Try) -> list[cst.CSTNode]:
    parts: list[cst.CSTNode] = [node.body, *node.handlers]
    if node.orelse is not None:
        parts.append(node.orelse)
    return parts


def _is_sessionmaker_call(expr: Optional[cst.BaseExpression]) -> bool:
    return matches(expr, m.Call(func=m.Name("sessionmaker") | m.Attribute(attr=m.Name("sessionmaker"))))


def _check_sessionmaker_attr(src: _Source, rel: str, cls: cst.ClassDef) -> list[Failure]:
    name = src.project.config.database_manager_class
    failures: list[Failure] = []
    evidence = False
    if isinstance(cls.body, cst.IndentedBlock):
        for stmt in cls.body.body:
            if matches(stmt, m.SimpleStatementLine(body=[m.AnnAssign(target=m.Name("session"))])):
                ann = cst.ensure_type(stmt.body[0], cst.AnnAssign)  # type: ignore[attr-defined]
                text = _code(ann.annotation.annotation)
                if "sessionmaker" in text and "scoped_session" not in text:
                    evidence = True
                else:
                    failures.append(src.fail(rel, ann, f"{name}.session is annotated `{text}`; annotate it `sessionmaker`"))
    self_session = m.Attribute(value=_SELF, attr=m.Name("session"))
    for fn in findall(cls, m.FunctionDef()):
        fn = cst.ensure_type(fn, cst.FunctionDef)
        local_makers = {
            cst.ensure_type(t.target, cst.Name).value
            for a in findall(fn, m.Assign(value=m.MatchIfTrue(_is_sessionmaker_call)))
            for t in cst.ensure_type(a, cst.Assign).targets
            if isinstance(t.target, cst.Name)
        }
        for node in findall(fn, m.Assign(targets=[m.AssignTarget(target=self_session)]) | m.AnnAssign(target=self_session)):
            value = node.value  # type: ignore[attr-defined]
            if value is None:
                continue
            if _is_sessionmaker_call(value) or (isinstance(value, cst.Name) and value.value in local_makers):
                evidence = True
            else:
                failures.append(
                    src.fail(rel, node, f"{name}.session is set to `{_code(value)}`; store the sessionmaker itself")
                )
    if not evidence and not failures:
        failures.append(src.fail(rel, cls, f"{name} never sets `self.session` to a sessionmaker"))
    return failures


# ------------------------------------------------------------------------------- 3


def check_base_manager(src: _Source) -> list[Failure]:
    config = src.project.config
    rel = config.base_manager_module
    failures: list[Failure] = []
    failures.extend(_uses_of(src, config.get_session_method, "delete it; managers use the session they were given"))
    if not src.project.exists(rel):
        return [Failure(rel, None, "base manager module not found; set base_manager_module"), *failures]
    module = src.parse(rel)
    cls = _top_class(module, config.base_manager_class)
    if cls is None:
        return [Failure(rel, None, f"no class {config.base_manager_class}; set base_manager_class"), *failures]
    session = config.session_variable
    session_attr = "_session"

    init = _method(cls, "__init__")
    if init is None:
        failures.append(src.fail(rel, cls, f"{config.base_manager_class} has no __init__ taking `{session}`"))
    else:
        param = next((p for p in _params(init) if p.name.value == session), None)
        if param is None:
            failures.append(src.fail(rel, init, f"__init__ has no `{session}` parameter; add `{session}: Session`"))
        else:
            if param.default is not None:
                failures.append(
                    src.fail(rel, param, f"`{session}` has a default ({_code(param.default)}); make it required: `{session}: Session`")
                )
            if param.annotation is not None and _is_optional(param.annotation.annotation):
                failures.append(
                    src.fail(rel, param, f"`{session}` is annotated `{_code(param.annotation.annotation)}`; annotate it `Session`")
                )
        session_attr = stored_attribute(init, session) or session_attr

    execute = _method(cls, config.execute_method)
    if execute is None:
        failures.append(src.fail(rel, cls, f"no method {config.execute_method}; set execute_method if it has another name"))
    else:
        for verb in ("commit", "rollback"):
            for call in findall(execute, _method_call(verb)):
                failures.append(
                    src.fail(rel, call, f"{config.execute_method} calls {verb}(); remove it, SessionContext owns the transaction")
                )

    lazy = _method(cls, config.lazy_init_method)
    if lazy is None:
        # no lazy initializer: nothing is created lazily through the base manager, unless a
        # method under another name does what one does (sets an attribute of its own to
        # something it builds)
        for other in _methods(cls):
            if findall(other, _LAZY_SETATTR):
                failures.append(
                    src.fail(
                        rel,
                        other,
                        f"no method {config.lazy_init_method}, but {other.name.value} creates "
                        "managers lazily; set lazy_init_method to its name",
                    )
                )
    else:
        own_session = m.Attribute(value=_SELF, attr=m.Name(session_attr))
        kwargs = m.Subscript(
            slice=[m.SubscriptElement(slice=m.Index(value=m.SimpleString(m.MatchIfTrue(lambda s: s.strip("'\"") == session))))]
        )
        passes = findall(lazy, m.Assign(targets=[m.AssignTarget(target=kwargs)], value=own_session)) or findall(
            lazy, m.Call(args=[m.ZeroOrMore(), m.Arg(keyword=m.Name(session), value=own_session), m.ZeroOrMore()])
        )
        if not passes:
            failures.append(
                src.fail(
                    rel,
                    lazy,
                    f'{config.lazy_init_method} does not pass the parent\'s session; add `kwargs["{session}"] = self.{session_attr}`',
                )
            )
    return failures


def _is_optional(annotation: cst.BaseExpression) -> bool:
    text = _code(annotation).replace(" ", "")
    return text.startswith(("Optional[", "typing.Optional[")) or "|None" in text or "None|" in text


def _uses_of(src: _Source, name: str, advice: str) -> list[Failure]:
    failures: list[Failure] = []
    if not name:
        return failures
    for rel in src.project.grep(src.project.python_files(), name):
        nodes = _collect(src.parse(rel), cst.Name, cst.SimpleString)
        for node in nodes[cst.Name]:
            if node.value == name:
                failures.append(src.fail(rel, node, f"`{name}` is still here; {advice}"))
        for node in nodes[cst.SimpleString]:
            if name in node.value and node.evaluated_value == name:
                failures.append(src.fail(rel, node, f"`{name}` is still named here; {advice}"))
    return failures


# ------------------------------------------------------------------------------- managers


def _manager_graph(project: Project) -> tuple[Any, Optional[Failure]]:
    try:
        from refactor_tool.model.managers import analyze_managers
    except ImportError as exc:  # pragma: no cover - the analysis ships with the tool
        return None, Failure(project.config.base_manager_module, None, f"manager analysis unavailable: {exc}")
    try:
        return analyze_managers(project), None
    except InputError as exc:
        return None, Failure(exc.path, exc.line, exc.message)


# ------------------------------------------------------------------------------- 4


_SIMPLE_NAMESPACE = m.Name("SimpleNamespace") | m.Attribute(attr=m.Name("SimpleNamespace"))


def check_factory(src: _Source, graph: Any, graph_error: Optional[Failure]) -> list[Failure]:
    config = src.project.config
    rel = config.factory_module
    fn_name = config.factory_function
    session = config.session_variable
    if not src.project.exists(rel):
        return [Failure(rel, None, f"factory module not found; create it with {fn_name}(session) -> SimpleNamespace")]
    module = src.parse(rel)
    fn = next((s for s in module.body if isinstance(s, cst.FunctionDef) and s.name.value == fn_name), None)
    if fn is None:
        return [Failure(rel, None, f"no function {fn_name}; define {fn_name}({session}: Session) -> SimpleNamespace")]
    failures: list[Failure] = []
    params = _params(fn)
    if not params or params[0].name.value != session:
        failures.append(src.fail(rel, fn, f"{fn_name} must take `{session}` as its first parameter"))
    returns = fn.returns.annotation if fn.returns is not None else None
    if not matches(returns, m.Name("SimpleNamespace") | m.Attribute(attr=m.Name("SimpleNamespace"))):
        failures.append(src.fail(rel, fn, f"{fn_name} must be annotated `-> SimpleNamespace`"))
    if graph_error is not None:
        failures.append(graph_error)
        return failures
    managers = graph.factory_managers()
    by_name = {c.name: c for c in managers}
    if not managers:
        failures.append(Failure(rel, None, f"no subclass of {config.base_manager_class} found in the code"))

    bound: dict[str, Optional[str]] = {p.name.value: None for p in params}  # variable -> class
    created: dict[str, cst.Call] = {}
    body = fn.body.body if isinstance(fn.body, cst.IndentedBlock) else ()
    assigned = {
        cst.ensure_type(t, cst.Name).value
        for a in findall(fn, m.AssignTarget(target=m.Name()) | m.AnnAssign(target=m.Name()))
        for t in [a.target]  # type: ignore[attr-defined]
    }
    # a SimpleNamespace subclass of the module may build some managers on first access
    namespaces = [
        s
        for s in module.body
        if isinstance(s, cst.ClassDef)
        and any(matches(b.value, _SIMPLE_NAMESPACE) for b in s.bases)
    ]
    namespace_names = {c.name.value for c in namespaces}
    lazy_stmts = [stmt for cls_def in namespaces for stmt in cls_def.body.body]
    for stmt in [*body, *lazy_stmts]:
        for call in findall(stmt, m.Call()):
            call = cst.ensure_type(call, cst.Call)
            cls_name = _call_name(call)
            if cls_name not in by_name:
                continue
            created.setdefault(cls_name, call)
            cls = by_name[cls_name]
            if not any(
                matches(arg, m.Arg(keyword=m.Name(session)) | m.Arg(keyword=None, value=m.Name(session)))
                for arg in call.args
            ):
                failures.append(src.fail(rel, call, f"`{cls_name}(...)` is not given the session; pass `{session}={session}`"))
            failures.extend(_check_dependencies(src, rel, graph, cls, call, bound, assigned))
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, (cst.Assign, cst.AnnAssign)):
                    targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
                    value = small.value
                    made = _call_name(value) if isinstance(value, cst.Call) else None
                    for target in targets:
                        if isinstance(target, cst.Name):
                            bound[target.value] = made if made in by_name else None
    for cls in managers:
        if cls.name not in created:
            failures.append(
                src.fail(rel, fn, f"{fn_name} does not create `{cls.name}` (defined in {cls.rel}); add it")
            )
    # everything created is handed back in the namespace
    returned = [
        r
        for r in findall(fn, m.Return())
        if matches(
            cst.ensure_type(r, cst.Return).value,
            m.Call(func=_SIMPLE_NAMESPACE | m.Name(m.MatchIfTrue(lambda n: n in namespace_names))),
        )
    ]
    if not returned:
        failures.append(src.fail(rel, fn, f"{fn_name} does not return a SimpleNamespace(...) of the managers"))
    else:
        call = cst.ensure_type(cst.ensure_type(returned[-1], cst.Return).value, cst.Call)
        handed = {cst.ensure_type(a.value, cst.Name).value for a in call.args if isinstance(a.value, cst.Name)}
        handed_classes = {_call_name(a.value) for a in call.args if isinstance(a.value, cst.Call)}
        for var, cls_name in bound.items():
            if cls_name is not None and var not in handed and cls_name not in handed_classes:
                failures.append(src.fail(rel, returned[-1], f"manager `{var}` is created but not returned in the namespace"))
    return failures


def _check_dependencies(
    src: _Source,
    rel: str,
    graph: Any,
    cls: Any,
    call: cst.Call,
    bound: dict[str, Optional[str]],
    assigned: set[str],
) -> list[Failure]:
    failures: list[Failure] = []
    params = [p for p in graph.init_params(cls) if p.kind not in ("star", "starstar")]
    positional = [p for p in params if p.kind in ("posonly", "positional")]
    passed: dict[str, cst.Arg] = {}
    index = 0
    for arg in call.args:
        if arg.keyword is not None:
            passed[arg.keyword.value] = arg
        elif arg.star == "":
            if index < len(positional):
                passed[positional[index].name] = arg
            index += 1
        for name in findall(arg.value, m.Name()):
            value = cst.ensure_type(name, cst.Name).value
            if value not in bound and value in assigned:
                failures.append(src.fail(rel, arg, f"`{value}` is used before it is created; create it first"))
    for param in params:
        if param.dependency is None:
            if not param.has_default and param.name != src.project.config.session_variable and param.name not in passed:
                failures.append(src.fail(rel, call, f"`{cls.name}` requires `{param.name}`; pass it"))
            continue
        dep = graph.classes.get(param.dependency)
        arg = passed.get(param.name)
        if arg is None:
            if not param.has_default:
                failures.append(src.fail(rel, call, f"`{cls.name}` requires `{param.name}`; create the {dep.name if dep else 'manager'} first and pass it"))
            continue
        if isinstance(arg.value, cst.Name) and dep is not None:
            made = bound.get(arg.value.value)
            if arg.value.value in bound and made is not None and made != dep.name:
                failures.append(
                    src.fail(rel, arg, f"`{param.name}` gets `{arg.value.value}`, a {made}; pass the {dep.name}")
                )
    return failures


# ------------------------------------------------------------------------------- fixtures


@dataclass
class _FixtureInfo:
    rel: str
    node: cst.FunctionDef
    name: str
    params: list[str]


def _fixtures(src: _Source, rels: Iterable[str]) -> list[_FixtureInfo]:
    found: list[_FixtureInfo] = []
    for rel in rels:
        module = src.parse(rel)
        for _, fn in _functions(module):
            name = _fixture_name(fn)
            if name is not None:
                found.append(_FixtureInfo(rel, fn, name, _param_names(fn)))
    return found


def _manager_fixture_class(fixture: _FixtureInfo, manager_names: set[str]) -> Optional[str]:
    fn = fixture.node
    if fn.returns is not None:
        for node in findall(fn.returns, m.Name()):
            if cst.ensure_type(node, cst.Name).value in manager_names:
                return cst.ensure_type(node, cst.Name).value
    made: dict[str, str] = {}
    for assign in _own(fn, m.Assign(value=m.Call())):
        assign = cst.ensure_type(assign, cst.Assign)
        cls = _call_name(cst.ensure_type(assign.value, cst.Call))
        if cls in manager_names:
            for target in assign.targets:
                if isinstance(target.target, cst.Name):
                    made[target.target.value] = cls  # type: ignore[assignment]
    for node in _own(fn, m.Return() | m.Yield()):
        value = node.value  # type: ignore[attr-defined]
        if isinstance(value, cst.Call) and _call_name(value) in manager_names:
            return _call_name(value)
        if isinstance(value, cst.Name) and value.value in made:
            return made[value.value]
    return None


def check_fixtures(src: _Source, graph: Any, conftests: list[str], fixtures: list[_FixtureInfo]) -> list[Failure]:
    config = src.project.config
    failures: list[Failure] = []
    manager_names = {c.name for c in graph.classes.values()} if graph is not None else set()
    session = config.session_variable
    for fixture in fixtures:
        if fixture.rel not in conftests:
            continue
        rel, fn = fixture.rel, fixture.node
        if fixture.name == config.session_fixture:
            failures.append(
                src.fail(rel, fn, f"fixture `{fixture.name}` still exists; delete it (tests use `with {config.session_context_fixture} as {session}:`)")
            )
            continue
        if config.session_fixture in fixture.params:
            failures.append(
                src.fail(rel, fn, f"fixture `{fixture.name}` requests `{config.session_fixture}`; take the session as an argument instead")
            )
        cls = _manager_fixture_class(fixture, manager_names)
        if cls is not None:
            failures.append(
                src.fail(rel, fn, f"fixture `{fixture.name}` provides a {cls}; delete it (tests use `{config.factory_function}({session})`)")
            )
            continue
        if fixture.name.startswith(config.factory_fixture_prefix):
            failures.extend(_check_factory_fixture(src, fixture, session))
    for rel in src.project.grep(conftests, ".merge("):
        calls = _collect(src.parse(rel), cst.Call)[cst.Call]
        for call in (c for c in calls if matches(c, _method_call("merge"))):
            failures.append(src.fail(rel, call, "calls merge(); the manager already returns objects bound to the session, drop it"))
    return failures


def _check_factory_fixture(src: _Source, fixture: _FixtureInfo, session: str) -> list[Failure]:
    fn = fixture.node
    inner = {
        cst.ensure_type(d, cst.FunctionDef).name.value: cst.ensure_type(d, cst.FunctionDef)
        for d in findall(fn.body, m.FunctionDef())
    }
    returned = [
        cst.ensure_type(r, cst.Return).value
        for r in _own(fn, m.Return(value=m.Name()))
    ]
    closures = [inner[r.value] for r in returned if isinstance(r, cst.Name) and r.value in inner]
    if not closures:
        return [src.fail(fixture.rel, fn, f"factory fixture `{fixture.name}` does not return an inner function; rewrite it by hand")]
    failures = []
    for closure in closures:
        names = _param_names(closure)
        if not names or names[0] != session:
            failures.append(
                src.fail(fixture.rel, closure, f"factory fixture `{fixture.name}`: its inner function `{closure.name.value}` must take `{session}` as its first parameter")
            )
    return failures


# ------------------------------------------------------------------------------- 6


def _removed_fixture_names(project: Project, graph: Any) -> set[str]:
    """Fixture names the refactoring removes: the session fixture, manager fixtures (as
    recorded before phase 4, else ``<short>_manager`` of every manager class)."""
    config = project.config
    names = {config.session_fixture}
    record = state_of(project).fixture_graph
    if record is not None:
        names |= record.names(*REMOVED_KINDS)
    if graph is not None:
        names |= {f"{c.short}_manager" for c in graph.factory_managers()}
    return names


def check_tests(src: _Source, graph: Any, fixtures: list[_FixtureInfo]) -> list[Failure]:
    config = src.project.config
    session_context = config.session_context_fixture
    factory = config.factory_function
    prefix = config.factory_fixture_prefix
    manager_classes = {c.name for c in graph.factory_managers()} if graph is not None else set()
    defined = {f.name for f in fixtures}
    removed = _removed_fixture_names(src.project, graph) - defined
    # fixtures built on the database: the session context, the factories, anything on them
    db_fixtures = {session_context, config.session_fixture} | removed
    db_fixtures |= {f.name for f in fixtures if f.name.startswith(prefix)}
    changed = True
    while changed:
        changed = False
        for fixture in fixtures:
            if (
                fixture.name not in db_fixtures
                and db_fixtures.intersection(fixture.params)
                and not _keeps_its_session(fixture, db_fixtures, session_context, prefix)
            ):
                db_fixtures.add(fixture.name)
                changed = True
    needles = sorted(db_fixtures | manager_classes | {factory, prefix})
    rels = test_modules(src.project)
    naming = pytest_naming(src.project)
    failures: list[Failure] = []
    for rel in src.project.grep(rels, *needles):
        module = src.parse(rel)
        local = {f.name for f in fixtures if f.rel == rel}
        for cls, fn in _functions(module):
            if not naming.is_test_name(fn.name.value) or _fixture_name(fn) is not None:
                continue
            if cls is not None and not naming.is_test_class_name(cls.name.value):
                continue
            failures.extend(
                _check_test(src, rel, fn, db_fixtures - local, removed - local, manager_classes, config)
            )
    return failures


def _keeps_its_session(
    fixture: _FixtureInfo, db_fixtures: set[str], session_context: str, prefix: str
) -> bool:
    """Whether ``fixture`` does its database work the end state's way itself: it opens
    ``with <session_context>`` and requests nothing else of the database but factories, so
    a test requesting it touches no session of its own."""
    asked = db_fixtures.intersection(fixture.params)
    if session_context not in asked or any(
        p != session_context and not p.startswith(prefix) for p in asked
    ):
        return False
    return any(
        matches(item.item, m.Name(session_context))
        for with_node in _collect(fixture.node, cst.With)[cst.With]
        for item in with_node.items
    )


def _check_test(
    src: _Source,
    rel: str,
    fn: cst.FunctionDef,
    db_fixtures: set[str],
    removed: set[str],
    manager_classes: set[str],
    config: Config,
) -> list[Failure]:
    session_context = config.session_context_fixture
    params = _param_names(fn)
    name = fn.name.value
    failures: list[Failure] = []
    old = [p for p in params if p in removed]
    for param in old:
        failures.append(
            src.fail(
                rel,
                fn,
                f"test `{name}` requests `{param}`, a fixture the refactoring removed; use "
                f"`with {session_context} as {config.session_variable}:` and `{config.factory_function}({config.session_variable})`",
            )
        )
    nodes = _collect(fn, cst.Call, cst.With)
    manager_calls = [c for c in nodes[cst.Call] if _call_name(c) in manager_classes]
    factory_calls = [c for c in nodes[cst.Call] if _call_name(c) == config.factory_function]
    uses_db = [p for p in params if p in db_fixtures]
    if not uses_db and not manager_calls and not factory_calls:
        return failures  # touches no database
    # the session(s) the test opens with ``with session_context as X``
    sessions: set[str] = set()
    opened = False
    for with_node in nodes[cst.With]:
        for item in with_node.items:
            if matches(item.item, m.Name(session_context)):
                opened = True
                target = item.asname.name if item.asname is not None else None
                if isinstance(target, cst.Name):
                    sessions.add(target.value)
    if session_context not in params or not opened:
        if uses_db and not old:
            failures.append(
                src.fail(
                    rel,
                    fn,
                    f"test `{name}` uses the database ({', '.join(uses_db)}) outside "
                    f"`with {session_context} as {config.session_variable}:`",
                )
            )
        elif not uses_db and session_context not in params and factory_calls:
            failures.append(
                src.fail(rel, fn, f"test `{name}` calls {config.factory_function} without `{session_context}`")
            )
    if sessions:
        prefix = config.factory_fixture_prefix
        for call in nodes[cst.Call]:
            if not (isinstance(call.func, cst.Name) and call.func.value.startswith(prefix)):
                continue
            first = call.args[0] if call.args else None
            if first is None or first.keyword is not None or not matches(first.value, m.OneOf(*(m.Name(s) for s in sessions))):
                failures.append(
                    src.fail(rel, call, f"`{_call_name(call)}(...)` must get the session first: `{_call_name(call)}({sorted(sessions)[0]}, ...)`")
                )
    for call in manager_calls:
        if not any(
            matches(arg, m.Arg(keyword=m.Name(config.session_variable)))
            or (arg.keyword is None and isinstance(arg.value, cst.Name) and arg.value.value in sessions)
            for arg in call.args
        ):
            failures.append(
                src.fail(
                    rel,
                    call,
                    f"`{_call_name(call)}(...)` is built without the test's session; use "
                    f"`{config.managers_variable} = {config.factory_function}({config.session_variable})`",
                )
            )
    return failures


# ------------------------------------------------------------------------------- entry point


def run_checks(project: Project) -> list[CheckResult]:
    """Check invariants 1-6 on ``project``; a file that does not parse raises InputError."""
    src = _Source(project)
    names = titles(project.config)
    graph, graph_error = _manager_graph(project)
    files = project.python_files()
    # fixture modules: the conftests, and any other non-test module defining fixtures (one
    # a conftest loads with ``pytest_plugins`` or star-imports)
    conftests = [r for r in files if _is_conftest(r)]
    fixture_files = sorted(set(project.grep(files, "fixture")) | set(conftests))
    fixtures = _fixtures(src, fixture_files)
    conftests = sorted(
        set(conftests) | {f.rel for f in fixtures if not is_test_module(src.project, f.rel)}
    )
    results = [
        CheckResult(1, names[1], check_removed_apis(src)),
        CheckResult(2, names[2], check_session_module(src)),
        CheckResult(3, names[3], check_base_manager(src)),
        CheckResult(4, names[4], check_factory(src, graph, graph_error)),
        CheckResult(5, names[5], check_fixtures(src, graph, conftests, fixtures)),
        CheckResult(6, names[6], check_tests(src, graph, fixtures)),
    ]
    for result in results:
        result.failures = _sorted_unique(result.failures)
    return results


def _sorted_unique(failures: Sequence[Failure]) -> list[Failure]:
    seen: set[Failure] = set()
    out = []
    for failure in sorted(failures, key=lambda f: (f.path, f.line or 0, f.message)):
        if failure not in seen:
            seen.add(failure)
            out.append(failure)
    return out


__all__ = ["CheckResult", "Failure", "run_checks", "titles"]
