"""Phase 1 of docs/plan.md: core session management (``sologm/database/session.py``).

* 1.1 ``DatabaseManager.session`` becomes the ``sessionmaker`` itself: its annotation says
  ``sessionmaker`` and ``self.session = scoped_session(factory)`` stores ``factory``; the
  ``get_session`` / ``close_session`` methods are removed. On a SQLite engine the
  ``DatabaseManager`` also makes SQLAlchemy, not the sqlite3 driver, begin each transaction
  (an engine ``begin`` event): phase 2 runs every manager operation in a SAVEPOINT, and the
  driver's legacy transaction control would commit a released savepoint on its own instead
  of leaving it to the session's transaction.
* 1.2 ``SessionContext.__enter__`` makes a new session with ``self._db.session()``;
  ``__exit__`` no longer calls ``close_session()`` and closes the session in a ``finally``
  after the commit/rollback.
* 1.3 The standalone ``get_session()`` function is removed, and so is every import and
  re-export (``__all__``) of a removed name across the target. A ``X.close_session()``
  statement that closes no session of its own block is dropped (a ``sessionmaker`` keeps
  no registry of sessions to clear). What cannot be rewritten
  mechanically (a call of a removed function or method, ``scoped_session`` used elsewhere,
  a function-local import) is reported with its file and line.

The removed names come from ``Config.removed_session_apis``; the class names from
``Config.database_manager_class`` / ``Config.session_context_class``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import libcst as cst
import libcst.matchers as m
from libcst.codemod import SkipFile
from libcst.codemod.visitors import AddImportsVisitor
from libcst.helpers import (
    get_absolute_module_from_package_for_import,
    get_full_name_for_node,
)
from libcst.matchers import matches

from codemods.base import PhaseSpec, RefactorCodemod, StepSpec
from codemods.phase2 import BaseManagerAnalysis, GiveSessionWhereFetched
from codemods.phase2 import analyze as analyze_managers_of
from codemods.rewrite import drop_unused_imports, without_aliases
from refactor_tool.model.config import Config
from refactor_tool.model.fixtures import (
    DEFAULT_NAMING,
    TestNaming,
    is_fixture,
    is_test_function,
    pytest_naming,
    yields,
)
from refactor_tool.model.managers import (
    import_map,
    package_of,
    relpath_for,
    session_context_openers,
)
from refactor_tool.model.project import InputError, Project
from refactor_tool.model.syntax import (
    Transformer,
    Visitor,
    code,
    findall,
    identifiers,
    names_used,
)

SCOPED = "scoped_session"
SESSIONMAKER = "sessionmaker"


# ------------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class SessionApiAnalysis:
    config: Config
    root: Path
    session_module: str  # relpath of the session module
    session_module_name: str
    #: modules a removed name may be imported from: the session module and its packages
    sources: frozenset[str]
    #: removed function/method names (``get_session``, ``close_session``)
    removed: frozenset[str]
    #: the DatabaseManager attribute that holds the session registry (``session``)
    session_attr: str
    #: the module ``scoped_session`` / ``sessionmaker`` are imported from
    orm_module: str
    #: module-level functions of the session module that only return a new session context
    #: (``def get_db_context(): return SessionContext()``)
    context_openers: frozenset[str] = frozenset()
    #: removed method names some other class of the project defines as well: a call of one
    #: on an unknown object may be that class's, and is not rewritten
    methods_elsewhere: frozenset[str] = frozenset()
    #: the managers' analysis (phase 2's), for the managers built without a session that
    #: fetched the thread's; None without a base manager module
    managers: BaseManagerAnalysis | None = None
    #: how the target's pytest names its tests
    naming: TestNaming = DEFAULT_NAMING


def _registry_attr(tree: cst.Module, class_name: str, getter: str) -> str:
    """The attribute of the DatabaseManager that holds the sessions' factory."""
    cls = next(
        (
            n
            for n in tree.body
            if isinstance(n, cst.ClassDef) and n.name.value == class_name
        ),
        None,
    )
    if cls is None:
        return "session"
    for stmt in cls.body.body:
        # ``session: scoped_session`` (or already ``sessionmaker``)
        if matches(
            stmt,
            m.SimpleStatementLine(
                body=[
                    m.AnnAssign(
                        target=m.Name(),
                        annotation=m.Annotation(
                            m.MatchIfTrue(
                                lambda a: bool(
                                    _mentions(a, SCOPED) or _mentions(a, SESSIONMAKER)
                                )
                            )
                        ),
                    )
                ]
            ),
        ):
            return stmt.body[0].target.value  # type: ignore[attr-defined]
    # ``self.X = scoped_session(...)`` or ``def get_session(self): return self.X()``
    for node in findall(
        cls,
        m.Assign(
            targets=[m.AssignTarget(m.Attribute(value=m.Name("self")))],
            value=m.Call(func=m.Name(SCOPED) | m.Attribute(attr=m.Name(SCOPED))),
        ),
    ):
        return node.targets[0].target.attr.value  # type: ignore[attr-defined]
    for fn in cls.body.body:
        if isinstance(fn, cst.FunctionDef) and fn.name.value == getter:
            for ret in findall(
                fn,
                m.Return(m.Call(func=m.Attribute(value=m.Name("self"), attr=m.Name()))),
            ):
                return ret.value.func.attr.value  # type: ignore[attr-defined]
    return "session"


def _mentions(node: cst.CSTNode, name: str) -> bool:
    return bool(findall(node, m.Name(name))) or any(
        name in (s.evaluated_value or "")  # type: ignore[operator]
        for s in findall(node, m.SimpleString())
        if isinstance(s, cst.SimpleString) and isinstance(s.evaluated_value, str)
    )


def analyze(project: Project) -> SessionApiAnalysis:
    config = project.config
    rel = config.session_module
    if not project.exists(rel):
        raise InputError(
            rel,
            None,
            "session module not found; set session_module in [tool.refactor-tool]",
        )
    module_name = project.module_name(rel)
    parts = module_name.split(".")
    sources = frozenset(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    removed = frozenset(n for n in config.removed_session_apis if n != SCOPED)
    getter = (
        "get_session"
        if "get_session" in removed
        else next(iter(sorted(removed)), "get_session")
    )
    tree = project.parse(rel)
    if not findall(tree, m.ClassDef(name=m.Name(config.database_manager_class))):
        raise InputError(
            rel,
            None,
            f"no class {config.database_manager_class} here; phase 1 rewrites the session "
            "registry of that class (set session_module or database_manager_class in "
            "[tool.refactor-tool] if yours lives elsewhere or has another name)",
        )
    orm_module = "sqlalchemy.orm"
    for node in findall(tree, m.ImportFrom(module=m.DoNotCare())):
        assert isinstance(node, cst.ImportFrom)
        if isinstance(node.names, cst.ImportStar) or node.module is None:
            continue
        if any(
            get_full_name_for_node(a.name) in (SCOPED, SESSIONMAKER) for a in node.names
        ):
            orm_module = get_full_name_for_node(node.module) or orm_module
            break
    return SessionApiAnalysis(
        config=config,
        root=project.root,
        session_module=rel,
        session_module_name=module_name,
        sources=sources,
        removed=removed,
        session_attr=_registry_attr(tree, config.database_manager_class, getter),
        orm_module=orm_module,
        context_openers=session_context_openers(tree, config.session_context_class),
        methods_elsewhere=_methods_elsewhere(project, rel, config.database_manager_class, removed),
        managers=(
            analyze_managers_of(project) if project.exists(config.base_manager_module) else None
        ),
        naming=pytest_naming(project),
    )


def _methods_elsewhere(
    project: Project, session_rel: str, owner: str, names: frozenset[str]
) -> frozenset[str]:
    """Those of ``names`` that a class other than ``owner`` defines as a method."""
    found: set[str] = set()
    for rel in project.grep(project.python_files(), *(f"def {n}(" for n in names)):
        for cls in findall(project.parse(rel), m.ClassDef()):
            assert isinstance(cls, cst.ClassDef)
            if rel == session_rel and cls.name.value == owner:
                continue
            found |= {
                n.name.value
                for n in cls.body.body
                if isinstance(n, cst.FunctionDef) and n.name.value in names
            }
    return frozenset(found)


def files(project: Project, analysis: SessionApiAnalysis) -> list[str]:
    """The session module, plus every file whose text mentions a removed name."""
    needles = sorted(set(analysis.config.removed_session_apis) | {SCOPED})
    found = set(project.grep(project.python_files(), *needles))
    if project.exists(analysis.session_module):
        found.add(analysis.session_module)
    if analysis.managers is not None:  # managers built without a session (step 1.3)
        found |= analysis.managers.step_files["2.1"]
    return sorted(found)


# ------------------------------------------------------------------------------- shared


class _SessionModuleCodemod(RefactorCodemod):
    """A step that only rewrites the session module; every other file is skipped."""

    ANALYZE = analyze

    def in_session_module(self) -> bool:
        analysis: SessionApiAnalysis = self.analysis
        rel = relpath_for(self.context.filename, analysis.root)
        if rel is not None:
            return rel == analysis.session_module
        return self.context.full_module_name == analysis.session_module_name

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        if not self.in_session_module():
            raise SkipFile("not the session module")
        self._classes: list[str] = []
        self._functions: list[str] = []
        return super().transform_module_impl(tree)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.append(node.name.value)

    def leave_ClassDef(
        self, original_node: cst.ClassDef, updated_node: cst.ClassDef
    ) -> cst.ClassDef:
        self._classes.pop()
        return updated_node

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._functions.append(node.name.value)

    def in_class(self, name: str) -> bool:
        """Directly inside class ``name`` or one of its methods (not a nested class)."""
        return bool(self._classes) and self._classes[-1] == name


def _single_positional(call: cst.Call) -> bool:
    return (
        len(call.args) == 1 and call.args[0].keyword is None and not call.args[0].star
    )


#: ``name.close()`` on a line of its own
_CLOSE_LINE = m.SimpleStatementLine(
    body=[m.Expr(m.Call(func=m.Attribute(value=m.Name(), attr=m.Name("close")), args=[]))]
)


def _method_call(names: str | Sequence[str]) -> m.Call:
    return _method_call_of(tuple([names] if isinstance(names, str) else names))


# one matcher object per shape: matchers checked again and again are compiled once
@functools.lru_cache(maxsize=64)
def _method_call_of(names: tuple[str, ...]) -> m.Call:
    return m.Call(func=m.Attribute(attr=m.OneOf(*[m.Name(n) for n in names])))


@functools.lru_cache(maxsize=64)
def _attribute_method_call(attribute: str, method: str) -> m.Call:
    """``<anything>.<attribute>.<method>(...)``."""
    return m.Call(
        func=m.Attribute(value=m.Attribute(attr=m.Name(attribute)), attr=m.Name(method))
    )


# ------------------------------------------------------------------------------- step 1.1


class UseSessionmaker(_SessionModuleCodemod):
    """``DatabaseManager.session`` becomes the sessionmaker; its session methods go."""

    STEP = "1.1"
    DESCRIPTION = (
        "DatabaseManager stores the sessionmaker itself in `session` (annotation and "
        "assignment), without scoped_session; its get_session/close_session methods are removed."
    )

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        self._changed_scoped = False
        self._used_attribute_form = False
        self._blocked = False
        self._drop: set[str] = set()  # names whose imports may have become unused
        self._rewritten_uses: set[int] = set()  # calls turned into a ``with`` block
        self._openers: list[str] = []  # imported functions that open a session context
        self._blocks: dict[
            int, set[int]
        ] = {}  # block -> indexes of rewritable ``X = ...``
        return super().transform_module_impl(tree)

    def _manager(self) -> bool:
        return self.in_class(self.config.database_manager_class) and not self._blocked

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        super().visit_ClassDef(node)
        if node.name.value != self.config.database_manager_class:
            return
        # a registry built with extra arguments (scopefunc=...) is not rewritten at all:
        # changing only the annotation or the methods would leave the class half-converted
        odd = [
            call
            for call in findall(
                node, m.Call(func=m.Name(SCOPED) | m.Attribute(attr=m.Name(SCOPED)))
            )
            if not _single_positional(cst.ensure_type(call, cst.Call))
        ]
        for call in odd:
            self.report(
                call,
                f"`{SCOPED}(...)` with extra arguments (e.g. scopefunc); the registry and the "
                f"session methods of {node.name.value} left unchanged: store the sessionmaker "
                f"itself in `self.{self.analysis.session_attr}` and remove the session methods "
                "by hand",
            )
        self._blocked = bool(odd)

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef | cst.RemovalSentinel:
        self._functions.pop()
        if (
            self._manager()
            and not self._functions
            and original_node.name.value in self.analysis.removed
        ):
            self._drop |= identifiers(original_node)
            return cst.RemoveFromParent()
        return updated_node

    def leave_AnnAssign(
        self, original_node: cst.AnnAssign, updated_node: cst.AnnAssign
    ) -> cst.AnnAssign:
        if not self._manager():
            return updated_node
        target = get_full_name_for_node(original_node.target)
        attr = self.analysis.session_attr
        if target not in (attr, f"self.{attr}"):
            return updated_node
        if not findall(original_node.annotation, m.Name(SCOPED)):
            return updated_node
        self._changed_scoped = True
        if findall(original_node.annotation, m.Attribute(attr=m.Name(SCOPED))):
            self._used_attribute_form = True
        return updated_node.with_changes(
            annotation=m.replace(
                updated_node.annotation, m.Name(SCOPED), cst.Name(SESSIONMAKER)
            )
        )

    def leave_Call(
        self, original_node: cst.Call, updated_node: cst.Call
    ) -> cst.BaseExpression:
        if not (self._manager() and self._functions):
            return updated_node
        if not matches(
            original_node,
            m.Call(func=m.Name(SCOPED) | m.Attribute(attr=m.Name(SCOPED))),
        ):
            return updated_node
        self._changed_scoped = True
        if isinstance(original_node.func, cst.Attribute):
            self._used_attribute_form = True
        inner = updated_node.args[0].value
        # keep any parentheses written around the call
        return (
            inner.with_changes(lpar=updated_node.lpar, rpar=updated_node.rpar)
            if updated_node.lpar
            else inner
        )

    def leave_SimpleStatementLine(
        self,
        original_node: cst.SimpleStatementLine,
        updated_node: cst.SimpleStatementLine,
    ) -> cst.SimpleStatementLine:
        # a comment right above the rewritten assignment that explains the removed
        # thread-local registry is no longer true: it goes with the scoped_session
        if not (self._manager() and self._functions) or not findall(
            original_node,
            m.Call(func=m.Name(SCOPED) | m.Attribute(attr=m.Name(SCOPED))),
        ):
            return updated_node
        lines = list(updated_node.leading_lines)
        block_start = len(lines)
        while block_start > 0 and lines[block_start - 1].comment is not None:
            block_start -= 1
        block = lines[block_start:]
        stale = (*self.analysis.removed, SCOPED, "thread-local", "thread local")
        if any(word in line.comment.value for line in block for word in stale):  # type: ignore[union-attr]
            return updated_node.with_changes(leading_lines=lines[:block_start])
        return updated_node

    def leave_Module(
        self, original_node: cst.Module, updated_node: cst.Module
    ) -> cst.Module:
        if self._changed_scoped:
            orm = self.analysis.orm_module
            if not self._used_attribute_form:
                imports = import_map(
                    updated_node,
                    self.context.full_module_name or "",
                    self.analysis.session_module,
                )
                if SESSIONMAKER not in imports and names_used(
                    updated_node, [SESSIONMAKER]
                ):  # (a registry over a factory of the app's own needs no import)
                    self.add_needed_import(orm, SESSIONMAKER)
            self._drop.add(SCOPED)
        return drop_unused_imports(
            self, updated_node, self.analysis.session_module, self._drop
        )


#: the module-level function the engine's ``begin`` event runs on SQLite
BEGIN_HOOK = "_begin_sqlite_transaction"
#: its definition: the first line, then the body's lines (indented as the module indents)
_BEGIN_HOOK_SOURCE = (
    "def {hook}(connection: Connection) -> None:",
    (
        '"""Begin a transaction of a SQLite connection with an explicit ``BEGIN``.',
        "",
        "The sqlite3 driver begins transactions itself, and only before INSERT, UPDATE or",
        "DELETE: a SAVEPOINT issued first would start a transaction of its own, committed when",
        "the savepoint is released, whatever the session does afterwards. So the driver's own",
        "transaction handling is switched off and SQLAlchemy's transactions start with BEGIN",
        '(SQLAlchemy\'s SQLite dialect docs, "Transactions with SQLite and the sqlite3 driver").',
        "It is switched off here rather than on connect: the engine may hold a connection",
        "made before the listener was added (a StaticPool's).",
        '"""',
        "connection.connection.driver_connection.isolation_level = None",
        'connection.exec_driver_sql("BEGIN")',
    ),
)
_BEGIN_LISTENER = m.Call(
    func=m.Name("listen")
    | m.Name("listens_for")
    | m.Attribute(attr=m.Name("listen") | m.Name("listens_for")),
    args=[
        m.ZeroOrMore(),
        m.Arg(
            m.MatchIfTrue(
                lambda v: (
                    isinstance(v, cst.SimpleString) and v.evaluated_value == "begin"
                )
            )
        ),
        m.ZeroOrMore(),
    ],
)
_SESSIONMAKER_CALL = m.Call(
    func=m.Name(SESSIONMAKER) | m.Attribute(attr=m.Name(SESSIONMAKER))
)


def _sessionmaker_bind(
    cls: cst.ClassDef,
) -> tuple[int, cst.BaseExpression] | None:
    """(index of the method in the class body, the engine expression) of the first
    ``sessionmaker(bind=<engine>)`` (or ``sessionmaker(<engine>)``) in a method of ``cls``."""
    for index, stmt in enumerate(cls.body.body):
        if not isinstance(stmt, cst.FunctionDef):
            continue
        for call in findall(stmt, _SESSIONMAKER_CALL):
            for i, arg in enumerate(cst.ensure_type(call, cst.Call).args):
                keyword = arg.keyword.value if arg.keyword is not None else None
                if not arg.star and (keyword == "bind" or (keyword is None and i == 0)):
                    return index, arg.value
    return None


class BeginSqliteTransactions(_SessionModuleCodemod):
    """On SQLite, SQLAlchemy begins the transactions (so that SAVEPOINTs join them)."""

    STEP = "1.1"
    DESCRIPTION = (
        "DatabaseManager: on a SQLite engine, an engine `begin` event makes SQLAlchemy, not the "
        "sqlite3 driver, begin every transaction, so that the savepoints phase 2 opens join the "
        "session's transaction (unless the module already listens for `begin`)."
    )

    def leave_Module(
        self, original_node: cst.Module, updated_node: cst.Module
    ) -> cst.Module:
        name = self.config.database_manager_class
        index = next(
            (
                i
                for i, stmt in enumerate(updated_node.body)
                if isinstance(stmt, cst.ClassDef) and stmt.name.value == name
            ),
            None,
        )
        if index is None or findall(updated_node, _BEGIN_LISTENER):
            return updated_node
        cls = cst.ensure_type(updated_node.body[index], cst.ClassDef)
        found = _sessionmaker_bind(cls)
        if found is None or not isinstance(found[1], (cst.Name, cst.Attribute)):
            self.report(
                original_node.body[index],
                f"{name} builds no `{SESSIONMAKER}(bind=<engine>)` naming its engine; on SQLite, "
                'savepoints need SQLAlchemy to begin the transactions (an engine "begin" '
                "event); add it by hand",
            )
            return updated_node
        imports = import_map(
            updated_node,
            self.context.full_module_name or "",
            self.analysis.session_module,
        )
        engine_from = imports.get("Engine", "")
        sqlalchemy = (
            "sqlalchemy" if engine_from == "sqlalchemy.Engine" else "sqlalchemy.engine"
        )
        wanted = {
            "event": ("sqlalchemy", "event"),
            "Connection": (sqlalchemy, "Connection"),
        }
        defined = {
            s.name.value
            for s in updated_node.body
            if isinstance(s, (cst.FunctionDef, cst.ClassDef))
        }
        clashes = sorted(
            local
            for local, (_, obj) in wanted.items()
            if local in defined
            or (
                local in imports
                and not (
                    imports[local].startswith("sqlalchemy.")
                    and imports[local].endswith("." + obj)
                )
            )
        )
        if BEGIN_HOOK in defined or clashes:
            self.report(
                original_node.body[index],
                f"`{', '.join(clashes or [BEGIN_HOOK])}` is already another name here; on SQLite, "
                'savepoints need SQLAlchemy to begin the transactions (an engine "begin" event); '
                "add it by hand",
            )
            return updated_node
        method_index, bind = found
        method = cst.ensure_type(cls.body.body[method_index], cst.FunctionDef)
        nl, indent = updated_node.default_newline, updated_node.default_indent
        engine = code(bind, updated_node)
        listen = cst.parse_statement(
            f'if {engine}.dialect.name == "sqlite":{nl}'
            f'{indent}event.listen({engine}, "begin", {BEGIN_HOOK}){nl}',
            config=updated_node.config_for_parsing,
        ).with_changes(leading_lines=[cst.EmptyLine(indent=False)])
        statements = list(cst.ensure_type(method.body, cst.IndentedBlock).body)
        at = len(statements)
        while at and matches(
            statements[at - 1], m.SimpleStatementLine(body=[m.Return()])
        ):
            at -= 1
        statements.insert(at, listen)
        method = method.with_changes(body=method.body.with_changes(body=statements))
        members = list(cls.body.body)
        members[method_index] = method
        cls = cls.with_changes(body=cls.body.with_changes(body=members))
        first, lines = _BEGIN_HOOK_SOURCE
        source = [first.format(hook=BEGIN_HOOK)]
        source += [indent + line if line else line for line in lines]
        hook = cst.parse_statement(
            nl.join(source) + nl,
            config=updated_node.config_for_parsing,
        ).with_changes(leading_lines=[cst.EmptyLine(indent=False)] * 2)
        body = list(updated_node.body)
        body[index : index + 1] = [hook, cls]
        for local, (module, obj) in wanted.items():
            if local not in imports:
                self.add_needed_import(module, obj)
        return updated_node.with_changes(body=body)


# ------------------------------------------------------------------------------- step 1.2


class SessionContextLifecycle(_SessionModuleCodemod):
    """``SessionContext`` makes its own session and closes it in ``finally``."""

    STEP = "1.2"
    DESCRIPTION = (
        "SessionContext.__enter__ creates a session with the sessionmaker; __exit__ commits or "
        "rolls back, then closes the session in a finally block, without close_session()."
    )

    def _context(self) -> bool:
        return self.in_class(self.config.session_context_class)

    def leave_Call(
        self, original_node: cst.Call, updated_node: cst.Call
    ) -> cst.BaseExpression:
        # __enter__: ``self._db.get_session()`` -> ``self._db.session()``
        if not (
            self._context() and self._functions and self._functions[0] == "__enter__"
        ):
            return updated_node
        getters = [n for n in self.analysis.removed if n.startswith("get")]
        if getters and matches(
            original_node,
            m.Call(
                func=m.Attribute(attr=m.OneOf(*[m.Name(n) for n in getters])), args=[]
            ),
        ):
            func = cst.ensure_type(updated_node.func, cst.Attribute)
            return updated_node.with_changes(
                func=func.with_changes(attr=cst.Name(self.analysis.session_attr))
            )
        return updated_node

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        self._functions.pop()
        if not (
            self._context()
            and not self._functions
            and original_node.name.value == "__exit__"
        ):
            return updated_node
        body = cst.ensure_type(updated_node.body, cst.IndentedBlock)
        closers = [n for n in self.analysis.removed if not n.startswith("get")]
        # 1. ``self._db.close_session()`` in a finally that closes nothing else closes the
        # session the try commits or rolls back; elsewhere it goes
        if closers:
            dropped = m.Expr(_method_call(closers))
            body = _close_session_closes_own(body, dropped)
            receiver = _committed_session(body)
            if receiver is not None and not findall(body, _CLOSE):
                # elsewhere, where nothing closes the session, it becomes its close too
                body = _replace_first_statement(
                    body,
                    dropped,
                    cst.Expr(cst.Call(func=cst.Attribute(value=receiver, attr=cst.Name("close")))),
                )
            body = _drop_statements(body, dropped)
        # 2. move ``self.session.close()`` into a finally after the commit/rollback
        new_body, status = _close_in_finally(body)
        if status == "no-close":
            self.report(
                original_node,
                "SessionContext.__exit__ never closes its session; add "
                "`finally: self.session.close()` after the commit/rollback; rewrite by hand",
            )
        elif status == "no-commit":
            self.report(
                original_node,
                "SessionContext.__exit__ closes the session but no commit/rollback precedes it "
                "in the same block; put the close in a `finally` by hand",
            )
        return updated_node.with_changes(body=new_body)


def _drop_statements(
    block: cst.IndentedBlock, matcher: m.BaseMatcherNode
) -> cst.IndentedBlock:
    """Remove, at any depth, simple statement lines whose only statement matches."""

    class Dropper(Transformer):
        def leave_SimpleStatementLine(
            self,
            original_node: cst.SimpleStatementLine,
            updated_node: cst.SimpleStatementLine,
        ) -> cst.SimpleStatementLine | cst.RemovalSentinel:
            if len(original_node.body) == 1 and matches(original_node.body[0], matcher):
                return cst.RemoveFromParent()
            return updated_node

    return cst.ensure_type(block.visit(Dropper()), cst.IndentedBlock)


def _close_session_closes_own(
    block: cst.IndentedBlock, closer: m.BaseMatcherNode
) -> cst.IndentedBlock:
    """In a ``try`` whose body commits or rolls back ``X`` and whose ``finally`` calls a
    removed closer (``self._db.close_session()``) but never ``close()``, the first such
    call becomes ``X.close()``: the session the block ends is the one to close."""

    class Closer(Transformer):
        def leave_Try(self, original_node: cst.Try, updated_node: cst.Try) -> cst.Try:
            final = updated_node.finalbody
            if final is None or findall(final, _CLOSE):
                return updated_node
            ends = findall(updated_node.body, _COMMIT_OR_ROLLBACK)
            receivers = {
                code(cst.ensure_type(cst.ensure_type(c, cst.Call).func, cst.Attribute).value)
                for c in ends
            }
            if len(receivers) != 1:
                return updated_node
            receiver = cst.ensure_type(
                cst.ensure_type(ends[0], cst.Call).func, cst.Attribute
            ).value
            statements = list(cst.ensure_type(final.body, cst.IndentedBlock).body)
            for i, stmt in enumerate(statements):
                if matches(stmt, m.SimpleStatementLine(body=[closer])):
                    line = cst.ensure_type(stmt, cst.SimpleStatementLine)
                    statements[i] = line.with_changes(
                        body=[
                            cst.Expr(
                                cst.Call(
                                    func=cst.Attribute(value=receiver, attr=cst.Name("close"))
                                )
                            )
                        ]
                    )
                    body = final.body.with_changes(body=statements)
                    return updated_node.with_changes(finalbody=final.with_changes(body=body))
            return updated_node

    return cst.ensure_type(block.visit(Closer()), cst.IndentedBlock)


_CLOSE = m.SimpleStatementLine(
    body=[m.Expr(m.Call(func=m.Attribute(attr=m.Name("close")), args=[]))]
)
_COMMIT_OR_ROLLBACK = m.Call(
    func=m.Attribute(attr=m.Name("commit") | m.Name("rollback"))
)


def _committed_session(block: cst.IndentedBlock) -> cst.BaseExpression | None:
    """The one expression ``block`` calls ``commit()`` / ``rollback()`` on (``self.session``),
    None where there is none or more than one."""
    receivers: dict[str, cst.BaseExpression] = {}
    for call in findall(block, _COMMIT_OR_ROLLBACK):
        value = cst.ensure_type(cst.ensure_type(call, cst.Call).func, cst.Attribute).value
        receivers.setdefault(code(value), value)
    if len(receivers) != 1:
        return None
    return next(iter(receivers.values()))


def _replace_first_statement(
    block: cst.IndentedBlock, matcher: m.BaseMatcherNode, replacement: cst.BaseSmallStatement
) -> cst.IndentedBlock:
    """Replace, at any depth, the first simple statement line whose only statement matches
    with ``replacement`` (its comments and blank lines kept)."""

    class Replacer(Transformer):
        done = False

        def leave_SimpleStatementLine(
            self,
            original_node: cst.SimpleStatementLine,
            updated_node: cst.SimpleStatementLine,
        ) -> cst.SimpleStatementLine:
            if (
                not self.done
                and len(original_node.body) == 1
                and matches(original_node.body[0], matcher)
            ):
                self.done = True
                return updated_node.with_changes(body=[replacement])
            return updated_node

    return cst.ensure_type(block.visit(Replacer()), cst.IndentedBlock)



def _close_in_finally(block: cst.IndentedBlock) -> tuple[cst.IndentedBlock, str]:
    """Wrap the commit/rollback statements before ``X.close()`` in ``try: ... finally:``.

    Returns the new block and a status: "done" (already in a finally, or rewritten),
    "no-close" (no close at all), "no-commit" (a close without commit/rollback before it).
    """
    for node in findall(block, m.Try()):
        final = cst.ensure_type(node, cst.Try).finalbody
        if final is not None and findall(final, _CLOSE):
            return block, "done"
    return _wrap(block)


def _wrap(block: cst.IndentedBlock) -> tuple[cst.IndentedBlock, str]:
    statements = list(block.body)
    for i, stmt in enumerate(statements):
        if matches(stmt, _CLOSE):
            start = next(
                (j for j in range(i) if findall(statements[j], _COMMIT_OR_ROLLBACK)),
                None,
            )
            if start is None:
                return block, "no-commit"
            end = i
            while end < len(statements) and matches(statements[end], _CLOSE):
                end += 1
            moved = statements[start:i]
            first = moved[0]
            leading = getattr(first, "leading_lines", ())
            moved[0] = first.with_changes(leading_lines=())
            closes = [
                s.with_changes(
                    leading_lines=[
                        ln for ln in s.leading_lines if ln.comment is not None
                    ]
                )
                for s in statements[i:end]
            ]
            wrapped = cst.Try(
                body=cst.IndentedBlock(body=moved),
                finalbody=cst.Finally(body=cst.IndentedBlock(body=closes)),
                leading_lines=leading,
            )
            return block.with_changes(
                body=[*statements[:start], wrapped, *statements[end:]]
            ), "done"
    # not at this level: look into compound statements (``if self.session:`` ...)
    for i, stmt in enumerate(statements):
        if isinstance(stmt, (cst.If, cst.With)) and isinstance(
            stmt.body, cst.IndentedBlock
        ):
            inner, status = _wrap(stmt.body)
            if status != "no-close":
                statements[i] = stmt.with_changes(body=inner)
                return block.with_changes(body=statements), status
    return block, "no-close"


# ------------------------------------------------------------------------------- step 1.3


class _ModuleLevel(Visitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False

    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)  # ``x.name`` uses ``x``, not ``name``
        return False

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)


def _module_level_names(tree: cst.Module) -> set[str]:
    """The names the module reads outside its functions (class bodies included)."""
    visitor = _ModuleLevel()
    tree.visit(visitor)
    return visitor.names


def _is_docstring(stmt: cst.BaseStatement) -> bool:
    return matches(
        stmt,
        m.SimpleStatementLine(
            body=[m.Expr(value=m.SimpleString() | m.ConcatenatedString())]
        ),
    )


class RemoveSessionApis(RefactorCodemod):
    """The standalone ``get_session()`` goes, with every import and re-export of a removed name."""

    STEP = "1.3"
    DESCRIPTION = (
        "Remove the standalone get_session() function and every import or __all__ entry of a "
        "removed session API across the project; report call sites that remain."
    )
    ANALYZE = analyze

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        analysis: SessionApiAnalysis = self.analysis
        rel = relpath_for(self.context.filename, analysis.root)
        self._is_session_module = (
            rel == analysis.session_module
            if rel is not None
            else self.context.full_module_name == analysis.session_module_name
        )
        self._module_name = self.context.full_module_name or ""
        self._rel = rel or ""
        self._depth = 0  # function/class nesting
        self._dropped: set[str] = (
            set()
        )  # names whose import or definition went away here
        self._kept_local: list[cst.ImportFrom] = []
        self._imports_sources = self._is_session_module
        self._method_calls: list[cst.Call] = []
        #: the calls among those made in a test function (id) -> the test's name
        self._in_test: dict[int, str] = {}
        self._scoped_uses: list[cst.CSTNode] = []
        self._name_uses: list[cst.Name] = []
        self._not_uses: set[int] = set()
        self._inside_removed = (
            0  # inside a function this step removes: nothing to report
        )
        self._drop: set[str] = set()  # names whose imports may have become unused
        self._rewritten_uses: set[int] = set()  # calls turned into a ``with`` block
        self._openers: list[str] = []  # imported functions that open a session context
        self._blocks: dict[
            int, set[int]
        ] = {}  # block -> indexes of rewritable ``X = ...``
        #: the functions the walk is in (outermost first)
        self._functions: list[cst.FunctionDef] = []
        self._classes: list[cst.ClassDef] = []
        #: a use of a removed name (id of its ``Name``) -> the outermost function it is in
        self._use_owner: dict[int, int] = {}
        #: removed names used outside any function: their imports stay (reported)
        self._module_uses = _module_level_names(tree)
        #: removed names whose module-level import went -> that import for one function
        self._local_imports: dict[str, cst.ImportFrom] = {}
        #: uses whose function imports the removed name itself now
        self._relocated: set[int] = set()
        #: per function (id): the receiver of a rewritten ``V = X.get_session()`` -> ``V``
        self._opened: dict[int, dict[str, str]] = {}
        #: functions (ids) whose whole body was such a closer
        self._emptied: set[int] = set()
        #: calls of removed methods rewritten by :meth:`_session_methods` (not reported)
        self._fixed: set[int] = set()
        return super().transform_module_impl(tree)

    # -- scope depth
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if (
            self._is_session_module
            and self._depth == 0
            and node.name.value in self.analysis.removed
        ):
            self._inside_removed += 1
        self._depth += 1
        self._functions.append(node)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._depth += 1
        self._classes.append(node)

    def leave_ClassDef(
        self, original_node: cst.ClassDef, updated_node: cst.ClassDef
    ) -> cst.ClassDef:
        self._depth -= 1
        self._classes.pop()
        return updated_node

    def _in_removed_helper(self) -> bool:
        """Whether the walk is inside the base manager's session helper, which phase 2
        deletes with everything in it."""
        config = self.config
        return (
            self._rel == config.base_manager_module
            and len(self._functions) == 1
            and self._functions[0].name.value == config.get_session_method
            and len(self._classes) == 1
            and self._classes[0].name.value == config.base_manager_class
        )

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef | cst.RemovalSentinel:
        self._depth -= 1
        self._functions.pop()
        if (
            self._is_session_module
            and self._depth == 0
            and original_node.name.value in self.analysis.removed
        ):
            self._inside_removed -= 1
            self._dropped.add(original_node.name.value)
            self._drop |= identifiers(original_node)
            return cst.RemoveFromParent()
        if not self._functions:
            return self._import_locally(original_node, updated_node)
        if self._registered_only(original_node):
            self._drop |= identifiers(original_node)
            return cst.RemoveFromParent()
        return updated_node

    def _registered_only(self, fn: cst.FunctionDef) -> bool:
        """A function nested in another whose whole body was a closer this step drops, that
        its decorators register (a web app's ``@app.teardown_appcontext`` hook) and that its
        enclosing function never names: nothing is left for it to do, and nothing else can
        reach it, so it goes with its registration."""
        if id(fn) not in self._emptied or not fn.decorators:
            return False
        name = fn.name.value
        outer = self._functions[-1]
        return len(findall(outer, m.Name(name))) == len(findall(fn, m.Name(name)))

    def _import_locally(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        """A function that still uses a removed name whose module-level import went
        imports it itself: the module keeps importing (only the function fails, when it
        runs) and no name is left undefined. Each such use is reported."""
        uses = [
            n
            for n in self._name_uses
            if self._use_owner.get(id(n)) == id(original_node)
            and n.value in self._local_imports
            and id(n) not in self._rewritten_uses
        ]
        if not uses:
            return updated_node
        names = list(dict.fromkeys(n.value for n in uses))
        self._relocated.update(id(n) for n in uses)
        lines = [cst.SimpleStatementLine(body=[self._local_imports[n]]) for n in names]
        body = cst.ensure_type(updated_node.body, cst.IndentedBlock)
        stmts = list(body.body)
        at = 1 if stmts and _is_docstring(stmts[0]) else 0
        if at == 0 and stmts:  # the function's first line keeps its comments above it
            lines[0] = lines[0].with_changes(leading_lines=stmts[0].leading_lines)
            stmts[0] = stmts[0].with_changes(leading_lines=())
        stmts[at:at] = lines
        return updated_node.with_changes(body=body.with_changes(body=stmts))

    # -- imports
    def _source(self, node: cst.ImportFrom) -> str | None:
        return get_absolute_module_from_package_for_import(
            package_of(self._module_name, self._rel) or None, node
        )

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.ImportFrom | cst.RemovalSentinel:
        if isinstance(original_node.names, cst.ImportStar):
            return updated_node
        source = self._source(original_node)
        if source not in self.analysis.sources:
            return updated_node
        self._imports_sources = True
        if not self._depth:
            self._openers += [
                a.evaluated_alias or a.evaluated_name
                for a in original_node.names
                if get_full_name_for_node(a.name) in self.analysis.context_openers
            ]
        removed = self.analysis.removed
        hit = [
            a for a in original_node.names if get_full_name_for_node(a.name) in removed
        ]
        if not hit:
            return updated_node
        if self._depth:
            # function-local import: left for its owner (phase 2 deletes the base manager's
            # session helper with its imports; anywhere else it is reported)
            if not self._in_removed_helper():
                self._kept_local.append(original_node)
            return updated_node
        # a name still used outside any function keeps its import (the use is reported)
        hit = [a for a in hit if (a.evaluated_alias or a.evaluated_name) not in self._module_uses]
        if not hit:
            return updated_node
        for alias in hit:
            local = alias.evaluated_alias or alias.evaluated_name
            self._dropped.add(local)
            self._local_imports[local] = cst.ImportFrom(
                module=original_node.module,
                relative=original_node.relative,
                names=[alias.with_changes(comma=cst.MaybeSentinel.DEFAULT)],
            )
        doomed = {id(a) for a in hit}
        return without_aliases(
            updated_node,
            lambda a: any(
                id(o) in doomed and o.deep_equals(a) for o in original_node.names
            ),
        )

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            if get_full_name_for_node(alias.name) in self.analysis.sources:
                self._imports_sources = True

    # -- __all__
    def leave_Assign(
        self, original_node: cst.Assign, updated_node: cst.Assign
    ) -> cst.Assign:
        if self._depth or not matches(
            original_node, m.Assign(targets=[m.AssignTarget(m.Name("__all__"))])
        ):
            return updated_node
        return updated_node.with_changes(
            value=self._drop_all_entries(updated_node.value)
        )

    def leave_AugAssign(
        self, original_node: cst.AugAssign, updated_node: cst.AugAssign
    ) -> cst.AugAssign:
        if self._depth or not matches(
            original_node, m.AugAssign(target=m.Name("__all__"))
        ):
            return updated_node
        return updated_node.with_changes(
            value=self._drop_all_entries(updated_node.value)
        )

    def _drop_all_entries(self, value: cst.BaseExpression) -> cst.BaseExpression:
        if not isinstance(value, (cst.List, cst.Tuple)):
            return value
        drop = (
            self._dropped
            if not self._is_session_module
            else self._dropped | set(self.analysis.removed)
        )
        keep = [
            e
            for e in value.elements
            if not (
                isinstance(e.value, cst.SimpleString)
                and e.value.evaluated_value in drop
            )
        ]
        if len(keep) == len(value.elements):
            return value
        if keep and value.elements and keep[-1] is not value.elements[-1]:
            keep[-1] = keep[-1].with_changes(comma=value.elements[-1].comma)
        return value.with_changes(elements=keep)

    # -- ``X = get_session()`` / ``try: ... finally: close_session()`` -> ``with``
    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        if not self._depth or self._inside_removed:
            return
        found = {
            i
            for i in range(len(node.body) - 1)
            if self._session_block(node.body[i], node.body[i + 1]) is not None
        }
        if found:
            self._blocks[id(node)] = found

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        found = self._blocks.pop(id(original_node), None)
        if not found or len(updated_node.body) != len(original_node.body):
            return self._session_methods(original_node, updated_node)
        body = list(updated_node.body)
        out: list[cst.BaseStatement] = []
        i = 0
        while i < len(body):
            if i in found:
                # the uses the rewrite removes are not reported
                self._session_block(
                    original_node.body[i], original_node.body[i + 1], True
                )
                rewritten = self._session_block(body[i], body[i + 1])
                if rewritten is not None:
                    out.append(rewritten)
                    i += 2
                    continue
            out.append(body[i])
            i += 1
        return self._session_methods(original_node, updated_node.with_changes(body=out))

    def _session_method(
        self, stmt: cst.BaseStatement
    ) -> tuple[str, str, cst.Call, cst.Name | None] | None:
        """``V = X.get_session()`` ("open", code of X, the call, V) or
        ``X.close_session()`` ("close", code of X, the call, None): calls without arguments
        of a removed method that no other class of the project defines."""
        if not (
            self._functions
            and not self._inside_removed
            and isinstance(stmt, cst.SimpleStatementLine)
            and len(stmt.body) == 1
        ):
            return None
        small = stmt.body[0]
        target = None
        if isinstance(small, cst.Assign):
            if len(small.targets) != 1 or not isinstance(small.targets[0].target, cst.Name):
                return None
            target = small.targets[0].target
        elif not isinstance(small, cst.Expr):
            return None
        call = small.value
        if not (
            isinstance(call, cst.Call)
            and not call.args
            and isinstance(call.func, cst.Attribute)
        ):
            return None
        method = call.func.attr.value
        analysis = self.analysis
        if method not in analysis.removed or method in analysis.methods_elsewhere:
            return None
        opens = method.startswith("get")  # as step 1.2 tells a getter from a closer
        if opens != (target is not None):
            return None
        return ("open" if opens else "close", code(call.func.value), call, target)

    def _session_methods(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        """Inside a function, ``V = X.get_session()`` becomes ``V = X.<sessionmaker>()``
        (a new session where the thread's was), and a later ``X.close_session()`` of the
        same block closes that session, ``V.close()``, or goes where the block already
        closes it before. An ``X.close_session()`` that closes no session opened in its
        block (a teardown of its own) is dropped: it removed the thread's session from the
        ``scoped_session`` registry, and a ``sessionmaker`` keeps none; every session is
        closed by the code that opened it (``SessionContext`` in its ``finally``)."""
        if not self._functions:
            return updated_node
        updated_node = self._fixture_returning_a_session(original_node, updated_node)
        opened = self._opened.setdefault(id(self._functions[-1]), {})
        seen = set(opened)
        for stmt in original_node.body:  # the calls the rewrite below takes care of
            found = self._session_method(stmt)
            if found is None:
                continue
            kind, receiver, call, _ = found
            if kind == "open":
                seen.add(receiver)
            if receiver in seen or kind == "close":
                self._fixed.add(id(call))
        out: list[cst.BaseStatement] = []
        closed: set[str] = set()
        changed = False
        for stmt in updated_node.body:
            found = self._session_method(stmt)
            if found is None:
                if matches(stmt, _CLOSE_LINE):
                    closed.add(stmt.body[0].value.func.value.value)  # type: ignore[attr-defined]
                out.append(stmt)
                continue
            kind, receiver, call, target = found
            if kind == "open" and target is not None:
                opened[receiver] = target.value
                func = cst.ensure_type(call.func, cst.Attribute)
                new_call = call.with_changes(
                    func=func.with_changes(attr=cst.Name(self.analysis.session_attr))
                )
                small = cst.ensure_type(stmt, cst.SimpleStatementLine).body[0]
                out.append(stmt.with_changes(body=[small.with_changes(value=new_call)]))
                changed = True
            elif receiver in opened:
                variable = opened[receiver]
                changed = True
                if variable in closed:
                    continue
                closer = cst.parse_statement(f"{variable}.close()\n")
                out.append(closer.with_changes(leading_lines=stmt.leading_lines))
                closed.add(variable)
            else:  # a closer with no session of its own: nothing is left to close
                changed = True
        if not changed:
            return updated_node
        if not out:
            if self._functions[-1].body is original_node:
                self._emptied.add(id(self._functions[-1]))
            out = [cst.SimpleStatementLine(body=[cst.Pass()])]
        return updated_node.with_changes(body=out)

    def _fixture_returning_a_session(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        """A fixture whose last statement returns something built on ``X.get_session()``
        (``return CourseManager(db.get_session())``) had the thread's session for as long as
        what it returned lived: it opens a session of its own for its lifetime instead,
        ``session = X.<sessionmaker>()``, yields what it returned built on it, and closes it
        at teardown."""
        fn = self._functions[-1]
        if fn.body is not original_node or not is_fixture(fn) or yields(fn):
            return updated_node
        if not original_node.body or len(updated_node.body) != len(original_node.body):
            return updated_node
        last = original_node.body[-1]
        if not (
            isinstance(last, cst.SimpleStatementLine)
            and len(last.body) == 1
            and isinstance(last.body[0], cst.Return)
            and last.body[0].value is not None
        ):
            return updated_node
        analysis = self.analysis
        method_calls = findall(last.body[0].value, _method_call(sorted(analysis.removed)))
        if len(method_calls) != 1:
            return updated_node
        call = method_calls[0]
        method = call.func.attr.value
        if (
            call.args
            or not method.startswith("get")  # a getter, as step 1.2 tells one from a closer
            or method in analysis.methods_elsewhere
            or findall(call.func.value, m.Call())
        ):
            return updated_node
        variable = self.config.session_variable
        if variable in identifiers(fn):
            return updated_node
        updated_last = cst.ensure_type(updated_node.body[-1], cst.SimpleStatementLine)
        returned = cst.ensure_type(updated_last.body[0], cst.Return).value
        updated_calls = findall(returned, _method_call(sorted(analysis.removed)))
        if len(updated_calls) != 1:
            return updated_node
        self._fixed.add(id(call))
        receiver = code(call.func.value)
        value = returned.deep_replace(updated_calls[0], cst.Name(variable))
        opening = cst.parse_statement(
            f"{variable} = {receiver}.{analysis.session_attr}()\n"
        ).with_changes(leading_lines=updated_last.leading_lines)
        giving = cst.SimpleStatementLine(
            body=[cst.Expr(cst.Yield(value=value))], trailing_whitespace=updated_last.trailing_whitespace
        )
        closing = cst.parse_statement(f"{variable}.close()\n")
        return updated_node.with_changes(body=[*updated_node.body[:-1], opening, giving, closing])

    def _removed_call(self, node: cst.BaseExpression) -> cst.Name | None:
        """``get_session()``: a call, without arguments, of a removed name imported here."""
        if (
            isinstance(node, cst.Call)
            and not node.args
            and isinstance(node.func, cst.Name)
            and node.func.value in self._dropped
            and not self._is_session_module
        ):
            return node.func
        return None

    def _session_block(
        self, first: cst.BaseStatement, second: cst.BaseStatement, mark: bool = False
    ) -> cst.With | None:
        """``X = opener()`` followed by a ``try`` whose ``finally`` calls a closer: the
        session's lifetime is that ``try``, which becomes ``with SessionContext() as X:``
        (the context commits on success and rolls back on error, as the plan's callers do)."""
        if not (
            isinstance(first, cst.SimpleStatementLine)
            and len(first.body) == 1
            and isinstance(first.body[0], cst.Assign)
            and len(first.body[0].targets) == 1
            and isinstance(first.body[0].targets[0].target, cst.Name)
            and isinstance(second, cst.Try)
            and second.finalbody is not None
        ):
            return None
        opener = self._removed_call(first.body[0].value)
        if opener is None:
            return None
        closers = []
        rest = []
        target_name = first.body[0].targets[0].target.value  # type: ignore[attr-defined]
        #: ``X.close()`` of the session itself ends its lifetime as well
        own_close = m.SimpleStatementLine(
            body=[
                m.Expr(
                    m.Call(
                        func=m.Attribute(value=m.Name(target_name), attr=m.Name("close")),
                        args=[],
                    )
                )
            ]
        )
        closed_itself = False
        for stmt in second.finalbody.body.body:
            if (
                isinstance(stmt, cst.SimpleStatementLine)
                and len(stmt.body) == 1
                and isinstance(stmt.body[0], cst.Expr)
                and self._removed_call(stmt.body[0].value) is not None
            ):
                closers.append(stmt.body[0].value.func)  # type: ignore[union-attr]
            elif not closed_itself and matches(stmt, own_close):
                closed_itself = True
            else:
                rest.append(stmt)
        if len(closers) > 1 or (not closers and not closed_itself):
            return None
        if mark:
            self._rewritten_uses.update(id(n) for n in (opener, *closers))
            return None
        target = first.body[0].targets[0].target
        inner = second.body
        if rest or second.handlers or second.orelse is not None:
            # the ``try`` stays inside the ``with``, without the closing call
            finalbody = (
                second.finalbody.with_changes(
                    body=second.finalbody.body.with_changes(body=rest)
                )
                if rest
                else None
            )
            inner = cst.IndentedBlock(body=[second.with_changes(finalbody=finalbody)])
        opener_name = (
            self._openers[0] if self._openers else self.config.session_context_class
        )
        if not self._openers:
            AddImportsVisitor.add_needed_import(
                self.context, self.analysis.session_module_name, opener_name
            )
        return cst.With(
            items=[
                cst.WithItem(
                    item=cst.Call(func=cst.Name(opener_name)),
                    asname=cst.AsName(name=target),
                )
            ],
            body=inner,
            leading_lines=first.leading_lines,
        )

    # -- leftovers, reported
    def visit_Call(self, node: cst.Call) -> None:
        if self._inside_removed:
            return
        if matches(node, _method_call(sorted(self.analysis.removed))) or matches(
            node, _attribute_method_call(self.analysis.session_attr, "remove")
        ):
            self._method_calls.append(node)
            outer = self._functions[0] if self._functions else None
            if outer is not None and is_test_function(outer, self.analysis.naming):
                self._in_test[id(node)] = outer.name.value

    def visit_Name(self, node: cst.Name) -> None:
        if id(node) in self._not_uses or self._inside_removed:
            return
        if node.value in self.analysis.removed or node.value in self._local_imports:
            self._name_uses.append(node)
            if self._functions:
                outer = self._functions[0]
                self._use_owner[id(node)] = id(outer)
                if is_test_function(outer, self.analysis.naming):
                    self._in_test[id(node)] = outer.name.value
        elif node.value == SCOPED:
            self._scoped_uses.append(node)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._not_uses.add(
            id(node.attr)
        )  # ``x.get_session`` is not the name get_session

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self._not_uses.add(id(node.keyword))

    def visit_ImportAlias(self, node: cst.ImportAlias) -> bool:
        return False  # names in imports are not uses

    def leave_Module(
        self, original_node: cst.Module, updated_node: cst.Module
    ) -> cst.Module:
        config = self.config
        for node in self._kept_local:
            self.report(
                node,
                "function-local import of a removed session API left in place (it fails when "
                "the function runs); the function must receive a session instead; rewrite by hand",
            )
        calls_of_dropped = [
            n
            for n in self._name_uses
            if n.value in self._dropped and id(n) not in self._rewritten_uses
        ]
        for node in calls_of_dropped:
            where = (
                "its function imports it itself now, so the module still imports, and "
                "fails when it runs"
                if id(node) in self._relocated
                else "its import is gone"
            )
            test = self._in_test.get(id(node))
            opener = (
                f"{min(self.analysis.context_openers)}()"
                if self.analysis.context_openers
                else f"{config.session_context_class}()"
            )
            self.report(
                node,
                (f"{test}: " if test else "")
                + f"`{node.value}` was removed from {self.analysis.session_module_name} ({where}); "
                f"open the session with `with {opener} as session:` or receive it "
                "as a parameter; rewrite by hand",
            )
        for node in self._method_calls:
            if id(node) in self._fixed:
                continue
            method = cst.ensure_type(node.func, cst.Attribute).attr.value
            # without an import of the session module, a call is the DatabaseManager's
            # when no other class of the project has a method of that name (a fixture's
            # ``database_manager.get_session()``)
            if self._imports_sources or (
                method in self.analysis.removed
                and method not in self.analysis.methods_elsewhere
            ):
                name = code(node.func)
                test = self._in_test.get(id(node))
                self.report(
                    node,
                    (f"{test}: " if test else "")
                    + f"`{name}()` calls a removed session API; sessions now come from "
                    f"`{config.session_context_class}` (`with ... as session:`); rewrite by hand",
                )
        for node in self._scoped_uses:
            self.report(
                node,
                f"`{SCOPED}` is still used here; sessions come from "
                f"`{self.config.database_manager_class}.{self.analysis.session_attr}` "
                "(a sessionmaker) now; rewrite by hand",
            )
        return drop_unused_imports(self, updated_node, self._rel, self._drop)


# ------------------------------------------------------------------------------- the phase

PHASE = PhaseSpec(
    1,
    "Core Session Management Refactoring",
    "Modify the central `DatabaseManager` and `SessionContext` to use `sessionmaker` directly "
    "and handle the session lifecycle correctly.",
    (
        StepSpec(
            "1.1",
            "Modify `DatabaseManager`",
            (UseSessionmaker, BeginSqliteTransactions),
        ),
        StepSpec("1.2", "Modify `SessionContext`", (SessionContextLifecycle,)),
        StepSpec(
            "1.3",
            "Remove Standalone `get_session()`",
            (RemoveSessionApis, GiveSessionWhereFetched),
        ),
    ),
    files=files,
    analyze=analyze,
    verification=(
        "Run basic application commands that initialize the database (e.g., `sologm game list` "
        "on an empty DB). It should initialize without errors. "
        "Run `uv run pytest -v --log-cli-level=DEBUG`. Many tests will likely fail, especially "
        "those using the removed `get_session` or relying on the old `db_session` fixture "
        "behavior. Check that failures relate to session handling or manager instantiation."
    ),
)
