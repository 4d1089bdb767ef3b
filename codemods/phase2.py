"""Phase 2 of docs/plan.md: adapt the base manager (``sologm/core/base_manager.py``).

* 2.1 ``session`` is required in ``BaseManager.__init__`` and in every subclass ``__init__``
  that forwards it to ``super().__init__`` (the subclasses are found by analysing the class
  hierarchy, see :mod:`refactor_tool.model.managers`): ``Optional[Session] = None`` -> ``Session``.
  Where ``session`` follows parameters that have defaults, it becomes keyword-only (a bare
  ``*`` is inserted before it) instead of moving to the front: a caller that passed those
  parameters positionally then fails loudly instead of binding a manager to ``session``.
  A construction without ``session`` whose target the same block gives its session
  later (``x = M(...)`` ... ``x._session = s``, the attribute the base manager's
  ``__init__`` stores it in) becomes ``x = M(..., session=s)`` and the assignment goes, when
  ``s`` is a (dotted) name nothing in between rebinds and nothing in between uses ``x``.
  Other call sites that no longer fit the signature (no ``session``, or positional
  arguments past it) are reported with file and line.
* 2.2 ``BaseManager._get_session`` is removed; other callers of it are reported.
* 2.3 ``_execute_db_operation`` keeps only the ``try``/``except``/``raise`` around
  ``operation(self._session, ...)``. The ``commit()`` becomes ``self._session.flush()``
  (pending rows stay visible to the next query and constraint errors still surface inside
  the operation, where they are logged and re-raised), and the operation and its flush run
  in ``with self._session.begin_nested():``, a SAVEPOINT released on success and rolled back
  on error, so a failed operation leaves the session usable, as the removed rollback did,
  without ending the transaction ``SessionContext`` owns. The rollback, the close and the
  ``should_close`` bookkeeping go; log messages about committing are reworded.
* 2.4 ``_lazy_init_manager`` passes ``kwargs["session"] = self._session`` to the manager it
  creates (added, or normalised from ``setdefault``, when missing).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import libcst as cst
import libcst.matchers as m
from libcst.codemod import SkipFile
from libcst.codemod.visitors import AddImportsVisitor
from libcst.helpers import get_full_name_for_node
from libcst.matchers import matches

from codemods.base import PhaseSpec, RefactorCodemod, StepSpec, find_project_root
from codemods import rewrite
from codemods.rewrite import drop_unused_imports
from refactor_tool.model.config import Config
from refactor_tool.model.fixtures import (
    holds_no_session_object,
    is_fixture,
    DEFAULT_NAMING,
    TestNaming,
    is_test_function,
    pytest_naming,
    recipe_statements,
    returned_expression,
    scan,
)
from refactor_tool.model.managers import (
    ManagerClass,
    builds_own_class,
    ManagerGraph,
    analyze_managers,
    context_openers,
    import_map,
    is_test_path,
    own_init,
    relpath_for,
    resolve_local,
    unwrap_optional,
)
from refactor_tool.model.project import Project, first_party
from refactor_tool.model.syntax import Transformer, code, findall, identifiers

# ------------------------------------------------------------------------------- analysis


@dataclass
class BaseManagerAnalysis:
    config: Config
    root: Path
    graph: ManagerGraph
    session_attr: str  # where BaseManager.__init__ stores the session (``_session``)
    #: step id -> the files that step can change or report on (text prefilters, no parsing)
    step_files: dict[str, frozenset[str]]
    #: whether some module of the target defines the session fixture (a fixture may be
    #: made to request it)
    session_fixture_defined: bool = False
    #: qualified names whose call opens a session context: ``SessionContext`` and the
    #: session module's functions returning one (``get_db_context``)
    context_openers: frozenset[str] = frozenset()
    #: how the target's pytest names its tests
    naming: TestNaming = DEFAULT_NAMING
    #: (old, new): the literal pieces of the execute method's log messages that step 2.3
    #: rewords (``committed `` -> ``flushed ``), for the tests that read them in ``caplog``
    reworded_log: tuple[tuple[str, str], ...] = ()
    #: whether the base manager's execute method commits (step 2.3 has work to do)
    execute_commits: bool = False
    #: test modules whose text mentions ``caplog`` (when step 2.3 rewords a log message)
    log_readers: frozenset[str] = frozenset()
    #: test modules whose text quotes ``"commit"`` or ``"rollback"`` (a spy on either)
    transaction_spies: frozenset[str] = frozenset()


def analyze(project: Project) -> BaseManagerAnalysis:
    graph = analyze_managers(project)
    session_attr = graph.session_attr or "_session"
    defined = bool(
        project.grep(project.python_files(), f"def {project.config.session_fixture}(")
    )
    commits = _execute_method(graph, project.config) is not None
    reworded = _reworded_log(graph, project.config) if commits else ()
    step_files = _step_files(project, graph)
    readers: frozenset[str] = frozenset()
    spies: frozenset[str] = frozenset()
    if commits:
        # tests that read the execute method's log, or spy on a session's commit
        tests = [rel for rel in project.python_files() if is_test_path(rel)]
        if reworded:
            readers = frozenset(project.grep(tests, "caplog"))
        spies = frozenset(
            project.grep(
                tests, *(f"{q}{name}{q}" for name in ("commit", "rollback") for q in "'\"")
            )
        )
        step_files["2.3"] = step_files["2.3"] | readers | spies
    return BaseManagerAnalysis(
        project.config,
        project.root,
        graph,
        session_attr,
        step_files,
        defined,
        context_openers(project),
        pytest_naming(project),
        reworded,
        commits,
        readers,
        spies,
    )


#: a placeholder of a log message: a %-style field or a ``{...}`` of an f-string or format
_PLACEHOLDER = re.compile(
    r"%%|%(?:\([^)]*\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[a-zA-Z]|\{[^{}]*\}"
)


def _execute_method(graph: ManagerGraph, config: Config) -> cst.FunctionDef | None:
    """The base manager's execute method when it commits (step 2.3 has work to do)."""
    node = graph.base.node
    if node is None:
        return None
    execute = next(
        (
            s
            for s in node.body.body
            if isinstance(s, cst.FunctionDef) and s.name.value == config.execute_method
        ),
        None,
    )
    if execute is None or not findall(
        execute.body, m.Call(func=m.Attribute(attr=m.Name("commit")))
    ):
        return None
    return execute


def _reworded_log(graph: ManagerGraph, config: Config) -> tuple[tuple[str, str], ...]:
    """The literal pieces (between placeholders) of the log messages of the base manager's
    execute method that step 2.3 rewords, with their new text; none when the method does
    not commit (the step leaves it as it is)."""
    execute = _execute_method(graph, config)
    if execute is None:
        return ()
    found: dict[str, str] = {}
    for call in findall(execute.body, LOG_CALL):
        call = cst.ensure_type(call, cst.Call)
        if not call.args:
            continue
        texts = [
            n.raw_value
            for n in findall(call.args[0].value, m.SimpleString())
            if isinstance(n, cst.SimpleString)
        ] + [
            n.value
            for n in findall(call.args[0].value, m.FormattedStringText())
            if isinstance(n, cst.FormattedStringText)
        ]
        for text in texts:
            for piece in _PLACEHOLDER.split(text):
                if piece.strip() and reword(piece) != piece:
                    found.setdefault(piece, reword(piece))
    return tuple(found.items())


def _step_files(project: Project, graph: ManagerGraph) -> dict[str, frozenset[str]]:
    config = project.config
    base = graph.base.rel
    managers = {base, *graph.by_rel}

    def containing(*needles: str) -> set[str]:
        return set(project.grep(sorted(managers), *needles))

    # call sites: only files with a manager call that does not visibly pass ``session=``
    names = sorted({c.name for c in graph.subclasses()})
    # other constructors: ``Manager.build(`` (a classmethod passing its session on)
    methods = {
        stmt.name.value
        for c in graph.classes.values()
        if c.node is not None
        for stmt in c.node.body.body
        if isinstance(stmt, cst.FunctionDef)
        and builds_own_class(stmt, config.session_variable)
    }
    names += sorted(
        f"{c.name}.{method}"
        for c in graph.subclasses()
        for method in methods
        if graph.alternate_constructor(c, method) is not None
    )
    callers: set[str] = set()
    if names:
        for rel in project.grep(project.python_files(), *(f"{n}(" for n in names)):
            if rel not in managers and _suspicious_calls(
                project.read_text(rel), names, config.session_variable
            ):
                callers.add(rel)
    return {
        "2.1": frozenset(managers | callers),
        "2.2": frozenset(
            {base}
            | containing(config.get_session_method)
            | set(project.grep(project.python_files(), f".{config.get_session_method}("))
        ),
        "2.3": frozenset(
            {base}
            | containing(".commit(", ".rollback(", f"def {config.execute_method}")
        ),
        "2.4": frozenset({base}),
    }


def _suspicious_calls(text: str, names: list[str], session: str) -> bool:
    """Whether some ``Name(...)`` call in the text lacks a top-level ``session=`` (or ``**``).

    A text-level prefilter: a file without such a call needs no parsing for the call-site
    report of step 2.1. Brackets are counted, strings are not understood: at worst a file
    is parsed for nothing, or a call hidden in a string-laden argument list goes unreported.
    """
    keyword = re.compile(rf"(?:\b{re.escape(session)}\s*=(?!=)|\*\*)")
    for start in _call_starts(text, names):
        depth, i, top = 1, start, []
        while i < len(text) and depth:
            ch = text[i]
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
            elif depth == 1:
                top.append(ch)
            i += 1
        if not keyword.search("".join(top)):
            return True
    return False


def _call_starts(text: str, names: list[str]) -> list[int]:
    """Where the arguments of each ``Name(`` call start, in text order: the same places as
    ``\\b(?:names)\\(`` finds, looked for name by name (a pattern that starts with an
    alternation is tried at every position of the text; a literal is searched for)."""
    starts: set[int] = set()
    for name in names:
        needle = name + "("
        at = text.find(needle)
        while at >= 0:
            if at == 0 or not (text[at - 1].isalnum() or text[at - 1] == "_"):
                starts.add(at + len(needle))
            at = text.find(needle, at + 1)
    return sorted(starts)


def files(project: Project, analysis: BaseManagerAnalysis) -> list[str]:
    """The base module, the modules defining managers, and files that call a manager class
    without visibly passing ``session`` (the union of the steps' files)."""
    return sorted(set().union(*analysis.step_files.values()))


# ------------------------------------------------------------------------------- shared


class _ManagerCodemod(RefactorCodemod):
    """Knows which classes of the current file are managers, and where it is in them."""

    ANALYZE = analyze

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        analysis: BaseManagerAnalysis = self.analysis
        self.rel = relpath_for(self.context.filename, analysis.root)
        self.managers = analysis.graph.in_file(self.rel)
        self._classes: list[ManagerClass | None] = []
        self._functions: list[str] = []
        wanted = analysis.step_files.get(self.STEP)
        if wanted is not None and self.rel is not None and self.rel not in wanted:
            raise SkipFile("nothing for this step here")
        self.prepare(tree)
        return super().transform_module_impl(tree)

    def prepare(self, tree: cst.Module) -> None:
        """Per-file setup (may raise SkipFile)."""

    @property
    def graph(self) -> ManagerGraph:
        return self.analysis.graph

    @property
    def session_name(self) -> str:
        return self.config.session_variable

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.append(self.managers.get(node.name.value))

    def leave_ClassDef(
        self, original_node: cst.ClassDef, updated_node: cst.ClassDef
    ) -> cst.ClassDef:
        self._classes.pop()
        return updated_node

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._functions.append(node.name.value)

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef | cst.RemovalSentinel:
        self._functions.pop()
        manager = self._classes[-1] if self._classes else None
        if manager is not None and not self._functions:
            return self.leave_method(manager, original_node, updated_node)
        return updated_node

    def leave_method(
        self,
        manager: ManagerClass,
        original_node: cst.FunctionDef,
        updated_node: cst.FunctionDef,
    ) -> cst.FunctionDef | cst.RemovalSentinel:
        return updated_node

    @property
    def current_manager(self) -> ManagerClass | None:
        return self._classes[-1] if self._classes else None

    def self_attr(self, name: str) -> cst.Attribute:
        return cst.Attribute(value=cst.Name("self"), attr=cst.Name(name))


def _session_arg_matcher(name: str) -> m.OneOf[m.Arg]:
    return m.Arg(value=m.Name(name), keyword=m.Name(name)) | m.Arg(
        value=m.Name(name), keyword=None
    )


def _forwards(name: str) -> m.Call:
    """``super().__init__(..., session=session, ...)`` (or ``Base.__init__(self, session)``)."""
    return m.Call(
        func=m.Attribute(
            value=m.Call(func=m.Name("super")) | m.Name() | m.Attribute(),
            attr=m.Name("__init__"),
        ),
        args=[m.ZeroOrMore(), _session_arg_matcher(name), m.ZeroOrMore()],
    )


# ------------------------------------------------------------------------------- step 2.1

SESSION_DOC = "Database session the manager works in (required); its owner commits."


def _rewrite_docstring_entry(
    fn: cst.FunctionDef, param: str, text: str
) -> cst.FunctionDef:
    """Rewrite the ``Args:`` entry of ``param`` when it still calls it optional."""
    body = fn.body
    if not (isinstance(body, cst.IndentedBlock) and body.body):
        return fn
    first = body.body[0]
    if not matches(first, m.SimpleStatementLine(body=[m.Expr(m.SimpleString())])):
        return fn
    string = cst.ensure_type(
        cst.ensure_type(first, cst.SimpleStatementLine).body[0], cst.Expr
    ).value
    string = cst.ensure_type(string, cst.SimpleString)
    lines = string.value.split("\n")
    entry = re.compile(rf"^(\s*){re.escape(param)}(\s*\([^)]*\))?:\s")
    for i, line in enumerate(lines):
        match = entry.match(line)
        if not match:
            continue
        indent = len(match.group(1))
        end = i + 1
        while (
            end < len(lines)
            and lines[end].strip()
            and len(lines[end]) - len(lines[end].lstrip()) > indent
        ):
            end += 1
        described = " ".join(part.strip() for part in lines[i:end])
        if not re.search(r"optional|omitted|none\b|default", described, re.IGNORECASE):
            return fn
        closing = ""
        if end == len(lines) and line.rstrip().endswith(string.quote):
            closing = string.quote  # one-line docstring entry ending the string
        new = [*lines[:i], f"{match.group(1)}{param}: {text}{closing}", *lines[end:]]
        new_string = string.with_changes(value="\n".join(new))
        new_first = first.with_changes(body=[cst.Expr(new_string)])  # type: ignore[call-arg]
        return fn.with_changes(body=body.with_changes(body=[new_first, *body.body[1:]]))
    return fn


def _fixture_constructions(tree: cst.Module) -> set[int]:
    """The ids of the calls the module's fixtures (module-level or in a class) return."""
    out: set[int] = set()
    blocks = [tree.body]
    blocks += [
        c.body.body
        for c in tree.body
        if isinstance(c, cst.ClassDef) and isinstance(c.body, cst.IndentedBlock)
    ]
    for block in blocks:
        for stmt in block:
            if isinstance(stmt, cst.FunctionDef) and is_fixture(stmt):
                value = returned_expression(recipe_statements(stmt))
                if isinstance(value, cst.Call):
                    out.add(id(value))
    return out


class RequireSession(_ManagerCodemod):
    """``session`` becomes a required parameter of every manager constructor."""

    STEP = "2.1"
    DESCRIPTION = (
        "Make `session` required in BaseManager.__init__ and in every subclass __init__ that "
        "forwards it (keyword-only after defaulted parameters); x = M() ... x._session = s becomes "
        "x = M(session=s); report other call sites that no longer fit."
    )

    def prepare(self, tree: cst.Module) -> None:
        module_name = self.context.full_module_name or ""
        self._imports = import_map(tree, module_name, self.rel or "")
        self._local = {n.name.value for n in tree.body if isinstance(n, cst.ClassDef)}
        self._module_name = module_name
        self._unwrapped = False
        #: planned folds per block (keyed by the original block's statements) and the
        #: construction calls they give a session (not reported)
        self._folds: dict[int, list[tuple[int, int]]] = {}
        self._folded: set[int] = set()
        #: the constructions manager fixtures return: phases 4 and 5 rebuild those with
        #: the test's session (or phase 4 reports the fixture it keeps), so not reported here
        self._rebuilt_later = _fixture_constructions(tree)
        #: the functions the walk is in, innermost last
        self._owners: list[cst.FunctionDef] = []
        #: constructions that pass no session, inside a fixture or test that requests the
        #: session fixture: id of the call -> that parameter's name
        self._given: dict[int, str] = {}
        #: calls whose positional arguments from the session's position on become keywords
        self._by_keyword: dict[int, list[str]] = {}
        #: fixtures (ids) that request the session fixture from now on, for those
        self._asking: set[int] = set()
        #: the ``with`` statements the walk is in that open a session context: (the
        #: statement, the number of functions it is in, the name it binds or None)
        self._contexts: list[tuple[cst.With, int, str | None]] = []
        #: ``with`` statements (ids) that bind the context's session from now on -> name
        self._binding: dict[int, str] = {}
        #: how many functions the walk was in at each class it is in
        self._class_depths: list[int] = []
        #: functions (ids) whose body runs in a new session context from now on -> the
        #: name that context's session is bound to
        self._opening: dict[int, str] = {}

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        super().visit_FunctionDef(node)
        self._owners.append(node)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        super().visit_ClassDef(node)
        self._class_depths.append(len(self._owners))

    def leave_ClassDef(
        self, original_node: cst.ClassDef, updated_node: cst.ClassDef
    ) -> cst.ClassDef:
        self._class_depths.pop()
        return super().leave_ClassDef(original_node, updated_node)

    def visit_With(self, node: cst.With) -> None:
        for item in node.items:
            call = item.item
            if not isinstance(call, cst.Call):
                continue
            dotted = get_full_name_for_node(call.func)
            origin = (
                resolve_local(dotted, self._imports, self._module_name, self._local)
                if dotted
                else None
            )
            if origin in self.analysis.context_openers:
                bound = (
                    item.asname.name.value
                    if item.asname is not None and isinstance(item.asname.name, cst.Name)
                    else None
                )
                if item.asname is None or bound is not None:
                    self._contexts.append((node, len(self._owners), bound))
                return

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> cst.With:
        if self._contexts and self._contexts[-1][0] is original_node:
            self._contexts.pop()
        name = self._binding.get(id(original_node))
        if name is None:
            return updated_node
        items = list(updated_node.items)
        for i, (old, new) in enumerate(zip(original_node.items, items)):
            if old.asname is None and isinstance(old.item, cst.Call):
                dotted = get_full_name_for_node(old.item.func)
                origin = (
                    resolve_local(dotted, self._imports, self._module_name, self._local)
                    if dotted
                    else None
                )
                if origin in self.analysis.context_openers:
                    items[i] = new.with_changes(
                        asname=cst.AsName(
                            name=cst.Name(name),
                            whitespace_before_as=cst.SimpleWhitespace(" "),
                            whitespace_after_as=cst.SimpleWhitespace(" "),
                        )
                    )
                    break
        return updated_node.with_changes(items=items)

    def _own_session(self) -> str | None:
        """In a method of a manager class, the session that manager was given
        (``self._session``): the one a manager it builds without a session fetched for
        itself from the thread, as its owner did."""
        if self.current_manager is None or not self._class_depths:
            return None
        depth = self._class_depths[-1]
        if len(self._owners) <= depth:
            return None
        method = self._owners[depth]
        if any(
            matches(d, m.Decorator(m.Name("staticmethod") | m.Name("classmethod")))
            for d in method.decorators
        ):
            return None
        first = method.params.posonly_params[:1] or method.params.params[:1]
        if not first:
            return None
        if method.name.value == "__init__":
            # the base may not have stored it yet: the constructor's own parameter
            params = method.params
            names = {
                p.name.value
                for p in (*params.posonly_params, *params.params, *params.kwonly_params)
            }
            return self.session_name if self.session_name in names else None
        me = first[0].name.value
        if any(me in {p.name.value for p in fn.params.params} for fn in self._owners[depth + 1 :]):
            return None
        return f"{me}.{self.analysis.session_attr}"

    def _context_session(self) -> str | None:
        """Inside ``with SessionContext() as s:`` (or an opener of one) in the same
        function: ``s``, the session the manager fetched from the thread (the context's);
        a block that binds no name binds one from now on, where the function does not
        use it otherwise."""
        if not self._contexts:
            return None
        node, depth, bound = self._contexts[-1]
        if depth != len(self._owners):
            return None
        if bound is not None:
            return bound
        name = self._binding.get(id(node))
        if name is not None:
            return name
        name = self.session_name
        if not self._owners or name in identifiers(self._owners[-1]):
            return None
        self._binding[id(node)] = name
        return name

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef | cst.RemovalSentinel:
        self._owners.pop()
        opened = self._opening.get(id(original_node))
        if opened is not None:
            updated_node = _in_session_context(updated_node, *opened)
        if id(original_node) in self._asking:
            asking = rewrite.with_fixture_request(updated_node, self.config.session_fixture)
            updated_node = asking if asking is not None else updated_node
        return super().leave_FunctionDef(original_node, updated_node)

    def _opened_session(self) -> str | None:
        """In a plain function of the application (no test, fixture or method), outside
        any session context: the manager fetched the thread's session, which phase 1 takes
        away, so the function's body runs in ``with SessionContext() as session:`` from now
        on and the manager gets that session; the context commits what the manager's
        operations committed one by one. A function nested in another (a web view in an
        app factory) counts too, unless an enclosing one opens a context already or is a
        test or fixture. Not for a function that returns a value other than a literal or
        what another library builds (an exit status, ``jsonify(...)``: see
        :func:`refactor_tool.model.fixtures.holds_no_session_object`; anything else may be
        an object that would leave the session that closes), a generator or a coroutine,
        nor where the function already uses the name."""
        if not self._owners or self._contexts or self._class_depths:
            return None
        if self.rel is None or is_test_path(self.rel):
            return None
        if self.rel == self.config.session_module:
            return None
        fn = self._owners[-1]
        opened = self._opening.get(id(fn))
        if opened is not None:
            return opened[1]
        own = first_party(find_project_root(self.context.filename), self._module_name)
        if (
            any(id(outer) in self._opening for outer in self._owners[:-1])
            or any(
                is_fixture(f) or is_test_function(f, self.analysis.naming)
                for f in self._owners
            )
            or fn.asynchronous is not None
            or findall(fn.body, m.Yield())
            or any(
                (value := cst.ensure_type(r, cst.Return).value) is not None
                and not holds_no_session_object(value, self._imports, own)
                for r in findall(fn.body, m.Return())
            )
        ):
            return None
        name = self.session_name
        if name in identifiers(fn):
            return None
        opener = self._context_class_name()
        if opener is None:
            return None
        self._opening[id(fn)] = (opener, name)
        return name

    def _context_class_name(self) -> str | None:
        """The name to open a session context with in this module: the session context
        class's import, else an opener of one the module imports (``get_db_context``),
        else the class, imported from the session module from now on; None when the
        module binds that name to something else."""
        config = self.config
        qualified = f"{config.session_module_name}.{config.session_context_class}"
        if qualified not in self.analysis.context_openers:
            return None
        for local, origin in self._imports.items():
            if origin == qualified:
                return local
        # an opener the module imports already (``get_db_context``, re-exported or not)
        for local, origin in sorted(self._imports.items()):
            if origin in self.analysis.context_openers:
                return local
        name = config.session_context_class
        if name in self._imports or name in self._local:
            return None
        AddImportsVisitor.add_needed_import(
            self.context, config.session_module_name, name
        )
        return name

    def _session_fixture_in_scope(self) -> str | None:
        """The session fixture, where the innermost function with a parameter of its name
        is a fixture or a test (pytest hands it the session the managers used to fetch)."""
        wanted = self.config.session_fixture
        for fn in reversed(self._owners):
            params = fn.params
            names = {
                p.name.value
                for p in (*params.posonly_params, *params.params, *params.kwonly_params)
            }
            if wanted in names:
                return (
                    wanted
                    if is_fixture(fn) or is_test_function(fn, self.analysis.naming)
                    else None
                )
        return None

    # -- the constructors
    def leave_method(
        self,
        manager: ManagerClass,
        original_node: cst.FunctionDef,
        updated_node: cst.FunctionDef,
    ) -> cst.FunctionDef:
        alternate = original_node.name.value != "__init__" and builds_own_class(
            original_node, self.session_name
        )
        if original_node.name.value != "__init__" and not alternate:
            return updated_node
        name = self.session_name
        params = updated_node.params
        groups = {
            "posonly": list(params.posonly_params),
            "params": list(params.params),
            "kwonly": list(params.kwonly_params),
        }
        where = next(
            (
                (g, i)
                for g, items in groups.items()
                for i, p in enumerate(items)
                if p.name.value == name
            ),
            None,
        )
        if where is None:
            return updated_node
        group, index = where
        param = groups[group][index]
        annotation = param.annotation
        inner = (
            unwrap_optional(annotation.annotation) if annotation is not None else None
        )
        if param.default is None and inner is None:
            return updated_node  # already required
        if alternate and any(
            p.default is not None for p in groups["params"][:index]
        ):
            return updated_node  # its callers pass it positionally: left as it is
        if (
            not alternate
            and not manager.is_base
            and not findall(original_node.body, _forwards(name))
        ):
            self.report(
                original_node,
                f"{manager.name}.__init__ takes `{name}` but does not pass it to super().__init__; "
                "left optional; rewrite by hand",
            )
            return updated_node
        if param.default is not None and not matches(param.default, m.Name("None")):
            self.report(
                original_node,
                f"{manager.name}.__init__: `{name}` defaults to {code(param.default)}, not None; "
                "left as it is; rewrite by hand",
            )
            return updated_node
        new_param = param.with_changes(default=None, equal=cst.MaybeSentinel.DEFAULT)
        if inner is not None and annotation is not None:
            new_param = new_param.with_changes(
                annotation=annotation.with_changes(annotation=inner)
            )
            self._unwrapped = True
        before = groups["posonly"] + (
            groups["params"][:index] if group == "params" else []
        )
        if group == "kwonly" or not any(p.default is not None for p in before):
            groups[group][index] = new_param
            new_params = params.with_changes(
                posonly_params=groups["posonly"],
                params=groups["params"],
                kwonly_params=groups["kwonly"],
            )
        elif isinstance(params.star_arg, cst.Param):
            self.report(
                original_node,
                f"{manager.name}.__init__: `{name}` follows parameters with defaults and `*{params.star_arg.name.value}`; "
                f"cannot make it required without reordering; rewrite by hand",
            )
            return updated_node
        else:
            # positional parameters with defaults come first: session and what follows it
            # become keyword-only (``..., *, session: Session, ...``)
            if (
                group == "posonly"
            ):  # pragma: no cover - session positional-only after defaults
                self.report(
                    original_node,
                    f"{manager.name}.__init__: positional-only `{name}`; rewrite by hand",
                )
                return updated_node
            previous = groups["params"][index - 1] if index else groups["posonly"][-1]
            star = cst.ParamStar(
                comma=previous.comma
                if previous.comma is not cst.MaybeSentinel.DEFAULT
                else cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            )
            after = groups["params"][index + 1 :]
            new_params = params.with_changes(
                params=groups["params"][:index],
                star_arg=star,
                kwonly_params=[new_param, *after, *groups["kwonly"]],
            )
        result = updated_node.with_changes(params=new_params)
        return _rewrite_docstring_entry(result, name, SESSION_DOC)

    def leave_Module(
        self, original_node: cst.Module, updated_node: cst.Module
    ) -> cst.Module:
        body = self._apply_folds(original_node.body, updated_node.body)
        if body is not None:
            updated_node = updated_node.with_changes(body=body)
        if self._unwrapped:
            return drop_unused_imports(
                self, updated_node, self.rel or "", {"Optional", "Union"}
            )
        return updated_node

    # -- call sites
    def _called_manager(self, func: cst.BaseExpression) -> ManagerClass | None:
        dotted = get_full_name_for_node(func)
        if dotted is None:
            return None
        origin = resolve_local(dotted, self._imports, self._module_name, self._local)
        if origin is None:
            return None
        cls = self.graph.classes.get(origin)
        if cls is None:
            # re-exported through a package: ``from pkg import GameManager``
            module, _, name = origin.rpartition(".")
            candidates = [
                c
                for c in self.graph.classes.values()
                if c.name == name and c.module.startswith(module + ".")
            ]
            cls = candidates[0] if len(candidates) == 1 else None
        return cls

    def _misfit(self, node: cst.Call) -> tuple[ManagerClass, str, int] | None:
        """How a manager construction no longer fits its constructor: (the class,
        ``"missing"`` when it passes no ``session`` or ``"positional"`` when it passes
        positional arguments past a now keyword-only ``session``, their number); None when
        it fits or is no manager construction."""
        cls = self._called_manager(node.func)
        params: list[Any] | None = None
        if cls is None and isinstance(node.func, cst.Attribute):
            # ``Manager.build(...)``: a classmethod that builds the manager and passes its
            # session on is a construction as well
            owner = self._called_manager(node.func.value)
            if owner is not None and not owner.is_base:
                params = self.graph.alternate_constructor(owner, node.func.attr.value)
                cls = owner if params is not None else None
        if cls is None or cls.is_base:
            return None
        if params is None:
            params = self.graph.init_params(cls)
        name = self.session_name
        if any(a.star for a in node.args) or any(p.kind == "starstar" for p in params):
            return None
        if any(a.keyword is not None and a.keyword.value == name for a in node.args):
            return None
        positional = [p for p in params if p.kind in ("posonly", "positional")]
        session_index = next(
            (i for i, p in enumerate(positional) if p.name == name), None
        )
        moved = session_index is not None and any(
            p.has_default for p in positional[:session_index]
        )
        n_positional = sum(1 for a in node.args if a.keyword is None)
        if session_index is None and not any(p.name == name for p in params):
            return None  # this constructor takes no session at all
        if moved and n_positional > session_index:  # type: ignore[operator]
            return cls, "positional", n_positional
        if session_index is None or n_positional <= session_index or moved:
            return cls, "missing", n_positional
        return None

    def visit_Call(self, node: cst.Call) -> None:
        if id(node) in self._folded:
            return
        misfit = self._misfit(node)
        if misfit is None:
            return
        cls, kind, n_positional = misfit
        if kind == "missing" and self._stores_session(cls):
            # in a fixture or test that requests the session fixture: that is the session
            # the manager fetched for itself (the thread's), so it is passed instead
            given = (
                self._session_fixture_in_scope()
                or self._context_session()
                or self._own_session()
                or self._opened_session()
            )
            if given is not None:
                self._given[id(node)] = given
                return
            owner = self._owners[-1] if self._owners else None
            if (
                owner is not None
                and id(node) in self._rebuilt_later
                and self.analysis.session_fixture_defined
                and rewrite.with_fixture_request(owner, self.config.session_fixture)
                is not None
            ):
                # a fixture returning it: it requests the session fixture from now on
                self._given[id(node)] = self.config.session_fixture
                self._asking.add(id(owner))
                return
        name = self.session_name
        if kind == "positional":
            names = self._keywords_for(cls, node)
            if names is not None:
                # the arguments from the session's position on are passed by their names
                self._by_keyword[id(node)] = names
                return
        if id(node) in self._rebuilt_later:
            return
        test = self._test_name()
        prefix = f"{test}: " if test else ""
        if kind == "positional":
            self.report(
                node,
                f"{prefix}`{cls.name}(...)` passes {n_positional} positional arguments; `{name}` and the "
                f"parameters after it are keyword-only now: pass `{name}=...` and the rest by "
                "keyword; rewrite by hand",
            )
        else:
            self.report(
                node,
                f"{prefix}`{cls.name}(...)` passes no `{name}`; it is required now (TypeError): pass "
                f"`{name}=...` from the caller's SessionContext; rewrite by hand",
            )

    def _test_name(self) -> str | None:
        """The name of the test function the current code is in (its outermost function),
        None outside one: a note about code of a test starts with it."""
        outer = self._owners[0] if self._owners else None
        if outer is not None and is_test_function(outer, self.analysis.naming):
            return outer.name.value
        return None

    def _keywords_for(self, cls: ManagerClass, node: cst.Call) -> list[str] | None:
        """The parameter names of the positional arguments of ``node`` from the session's
        position on, which are keyword-only now (``M(dep, s)`` -> ``M(dep, session=s)``);
        None when the constructor has no parameter for one of them, or when one is also
        given by keyword (the call did not run before either), or when the session passed is
        ``None``."""
        params = self.graph.init_params(cls)
        positional = [p.name for p in params if p.kind in ("posonly", "positional")]
        if self.session_name not in positional:
            return None
        start = positional.index(self.session_name)
        values = [a for a in node.args if a.keyword is None]
        if len(values) > len(positional):
            return None
        names = positional[start : len(values)]
        given = {a.keyword.value for a in node.args if a.keyword is not None}
        if given & set(names) or matches(values[start].value, m.Name("None")):
            return None  # ``M(dep, None)``: no session, as before; reported
        return names

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        names = self._by_keyword.get(id(original_node))
        if names is not None:
            args = list(updated_node.args)
            first = sum(1 for a in args if a.keyword is None) - len(names)
            equal = cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""),
                whitespace_after=cst.SimpleWhitespace(""),
            )
            for offset, name in enumerate(names):
                args[first + offset] = args[first + offset].with_changes(
                    keyword=cst.Name(name), equal=equal
                )
            return updated_node.with_changes(args=args)
        given = self._given.get(id(original_node))
        if given is None:
            return updated_node
        return _call_with_keyword(
            updated_node, self.session_name, cst.parse_expression(given)
        )

    # -- ``x = Manager()`` ... ``x._session = s``: the session moves into the construction
    def visit_Module(self, node: cst.Module) -> None:
        self._plan_folds(node.body)

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._plan_folds(node.body)

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        body = self._apply_folds(original_node.body, updated_node.body)
        return updated_node if body is None else updated_node.with_changes(body=body)

    def _plan_folds(self, body: Sequence[cst.BaseStatement]) -> None:
        """Finds in a block each construction that passes no session and whose target is
        given one later in the block (``x._session = s``, the attribute the base manager
        stores its session in), where ``s`` can be passed to the constructor instead: it is a
        name or a dotted name, nothing between the two statements (or the construction
        itself) binds its names, and nothing between them uses the target."""
        attr = self.graph.session_attr
        if attr is None:
            return
        folds: list[tuple[int, int]] = []
        taken: set[int] = set()
        for i, stmt in enumerate(body):
            construction = _single_assignment(stmt)
            if construction is None or i in taken:
                continue
            target, value = construction
            if not isinstance(value, cst.Call) or _dotted_root(target) is None:
                continue
            misfit = self._misfit(value)
            if misfit is None or misfit[1] != "missing":
                continue
            if not self._stores_session(misfit[0]):
                continue
            j = self._session_assignment(body, i, target, attr)
            if j is None:
                continue
            folds.append((i, j))
            taken.add(j)
            self._folded.add(id(value))
        if folds:
            self._folds[id(body)] = folds

    def _session_assignment(
        self,
        body: Sequence[cst.BaseStatement],
        i: int,
        target: cst.BaseExpression,
        attr: str,
    ) -> int | None:
        """The index of ``<target>.<attr> = <expr>`` after ``body[i]`` that can be folded
        into the construction ``body[i]``, if any."""
        root = _dotted_root(target)
        for j in range(i + 1, len(body)):
            between = scan(body[i + 1 : j])
            if root in between.used or root in between.bound:
                return None  # the target is used (or the object it hangs on) before
            assignment = _single_assignment(body[j])
            if assignment is None:
                continue
            assigned, expr = assignment
            if not (
                isinstance(assigned, cst.Attribute)
                and assigned.attr.value == attr
                and assigned.value.deep_equals(target)
            ):
                continue
            reads = _dotted_root(expr)
            if reads is None:
                return None  # not a (dotted) name: evaluating it earlier may differ
            if reads in scan(body[i:j]).bound:
                return None  # bound by the construction or after it
            if isinstance(expr, cst.Attribute) and reads in between.used:
                return None  # something between may change what the attribute holds
            return j
        return None

    def _stores_session(self, cls: ManagerClass) -> bool:
        """Whether constructing ``cls`` with ``session=s`` stores ``s`` where the base
        manager does: every ``__init__`` on the way to the base forwards it."""
        seen: set[str] = set()
        while not cls.is_base:
            if cls.qualified in seen:
                return False
            seen.add(cls.qualified)
            init = own_init(cls.node) if cls.node is not None else None
            if init is not None and not findall(
                init.body, _forwards(self.session_name)
            ):
                return False
            bases = [
                self.graph.classes[b] for b in cls.bases if b in self.graph.classes
            ]
            if not bases:
                return False
            cls = bases[0]
        return True

    def _apply_folds(
        self,
        original: Sequence[cst.BaseStatement],
        updated: Sequence[cst.BaseStatement],
    ) -> list[cst.BaseStatement] | None:
        folds = self._folds.pop(id(original), None)
        if not folds or len(original) != len(updated):
            return None
        body = list(updated)
        dropped: set[int] = set()
        for i, j in folds:
            assignment = cst.ensure_type(body[j], cst.SimpleStatementLine)
            expr = _single_assignment(assignment)[1]  # type: ignore[index]
            body[i] = _with_session(
                cst.ensure_type(body[i], cst.SimpleStatementLine),
                self.session_name,
                expr,
                assignment,
            )
            dropped.add(j)
            if j + 1 < len(body):
                # blank lines that set the assignment apart now set apart what follows it
                body[j + 1] = body[j + 1].with_changes(
                    leading_lines=[
                        *_blank_lines(
                            assignment.leading_lines, body[j + 1].leading_lines
                        ),
                        *body[j + 1].leading_lines,
                    ]
                )
        return [stmt for k, stmt in enumerate(body) if k not in dropped]


def _in_session_context(
    fn: cst.FunctionDef, opener: str, name: str
) -> cst.FunctionDef:
    """``fn`` with its body (its docstring apart) in ``with <opener>() as <name>:``."""
    body = cst.ensure_type(fn.body, cst.IndentedBlock)
    statements = list(body.body)
    head = statements[:1] if statements and _is_docstring_line(statements[0]) else []
    rest = statements[len(head) :]
    if not rest:
        return fn
    first = rest[0]
    block = cst.With(
        items=[
            cst.WithItem(
                item=cst.Call(func=cst.Name(opener)),
                asname=cst.AsName(name=cst.Name(name)),
            )
        ],
        body=cst.IndentedBlock(
            body=[first.with_changes(leading_lines=[]), *rest[1:]]
        ),
        leading_lines=first.leading_lines,
    )
    return fn.with_changes(body=body.with_changes(body=[*head, block]))


def _is_docstring_line(stmt: cst.BaseStatement) -> bool:
    return matches(
        stmt,
        m.SimpleStatementLine(
            body=[m.Expr(m.SimpleString() | m.ConcatenatedString())]
        ),
    )


def _single_assignment(
    stmt: cst.CSTNode,
) -> tuple[cst.BaseExpression, cst.BaseExpression] | None:
    """(target, value) of a line that is one assignment to one target (annotated or not)."""
    if not (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1):
        return None
    small = stmt.body[0]
    if isinstance(small, cst.Assign) and len(small.targets) == 1:
        return small.targets[0].target, small.value
    if isinstance(small, cst.AnnAssign) and small.value is not None:
        return small.target, small.value
    return None


def _dotted_root(expr: cst.BaseExpression) -> str | None:
    """``a`` of a name ``a`` or a dotted name ``a.b.c``; None for anything else."""
    while isinstance(expr, cst.Attribute):
        expr = expr.value
    return expr.value if isinstance(expr, cst.Name) else None


def _blank_lines(
    lines: Sequence[cst.EmptyLine], already: Sequence[cst.EmptyLine]
) -> list[cst.EmptyLine]:
    """The blank lines (no comment) of ``lines`` when ``already`` has none."""
    if any(line.comment is None for line in already):
        return []
    return [line for line in lines if line.comment is None][:1]


def _with_session(
    construction: cst.SimpleStatementLine,
    name: str,
    expr: cst.BaseExpression,
    dropped: cst.SimpleStatementLine,
) -> cst.SimpleStatementLine:
    """``construction`` with ``name=expr`` as the last argument of its call, and the
    comments of the ``dropped`` statement: the lines above it go above the construction, its
    trailing comment to the construction's line (or above it, when that has its own)."""
    small = construction.body[0]
    assert isinstance(small, (cst.Assign, cst.AnnAssign))
    call = _call_with_keyword(cst.ensure_type(small.value, cst.Call), name, expr)
    leading = [
        *construction.leading_lines,
        *(line for line in dropped.leading_lines if line.comment is not None),
    ]
    trailing = construction.trailing_whitespace
    comment = dropped.trailing_whitespace.comment
    if comment is not None:
        if trailing.comment is None:
            trailing = trailing.with_changes(
                whitespace=dropped.trailing_whitespace.whitespace, comment=comment
            )
        else:
            leading.append(cst.EmptyLine(comment=comment))
    return construction.with_changes(
        body=[small.with_changes(value=call)],
        leading_lines=leading,
        trailing_whitespace=trailing,
    )


def _call_with_keyword(call: cst.Call, name: str, expr: cst.BaseExpression) -> cst.Call:
    """``call`` with ``name=expr`` as its last argument (in the layout of the others)."""
    keyword = cst.Arg(
        value=expr,
        keyword=cst.Name(name),
        equal=cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""),
            whitespace_after=cst.SimpleWhitespace(""),
        ),
    )
    args = list(call.args)
    if args:
        last = args[-1]
        if isinstance(last.comma, cst.Comma):  # a trailing comma: one argument a line
            previous = args[-2].comma if len(args) > 1 else None
            comma = (
                previous
                if isinstance(previous, cst.Comma)
                else cst.Comma(whitespace_after=call.whitespace_before_args)
            )
            args[-1] = last.with_changes(comma=comma)
            keyword = keyword.with_changes(comma=last.comma)
        else:
            args[-1] = last.with_changes(
                comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            )
    return call.with_changes(args=[*args, keyword])


# ------------------------------------------------------------------------------- step 2.2


class GiveSessionWhereFetched(RequireSession):
    """Phase 1 takes the thread's session away (``get_session()``, which a manager built
    without a session fell back to): a manager built without one inside a session context,
    or in a method of another manager, is given the session it fetched there (see
    ``RequireSession._context_session`` and ``_own_session``), so the application still
    runs between phases 1 and 2. It changes no constructor and reports nothing: phase 2
    does the rest."""

    STEP = "1.3"
    DESCRIPTION = (
        "A manager built without a session inside `with SessionContext()` (or a function "
        "returning one) or in a method of another manager gets that session, the one it "
        "fetched from the thread."
    )

    @property
    def analysis(self) -> Any:
        # run in phase 1, whose analysis carries the managers' (None without a base
        # manager module)
        outer = RefactorCodemod.analysis.fget(self)  # type: ignore[attr-defined]
        return outer if isinstance(outer, BaseManagerAnalysis) else outer.managers

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        if self.analysis is None:
            raise SkipFile("no base manager module")
        return super().transform_module_impl(tree)

    def report(self, node: cst.CSTNode, message: str) -> None:
        """Phase 2 reports what it leaves (this step only passes sessions)."""

    def leave_method(
        self,
        manager: ManagerClass,
        original_node: cst.FunctionDef,
        updated_node: cst.FunctionDef,
    ) -> cst.FunctionDef:
        return updated_node

    def _plan_folds(self, body: Sequence[cst.BaseStatement]) -> None:
        return None

    def visit_Call(self, node: cst.Call) -> None:
        misfit = self._misfit(node)
        if misfit is None:
            return
        cls, kind, _ = misfit
        if kind != "missing" or not self._stores_session(cls):
            return
        given = (
            self._context_session() or self._own_session() or self._opened_session()
        )
        if given is not None:
            self._given[id(node)] = given


class RemoveGetSession(_ManagerCodemod):
    """``BaseManager._get_session`` is removed."""

    STEP = "2.2"
    DESCRIPTION = (
        "Remove BaseManager._get_session; a method that unpacked it uses self._session and "
        "the constant False for the flag; report any other caller."
    )

    def leave_method(
        self,
        manager: ManagerClass,
        original_node: cst.FunctionDef,
        updated_node: cst.FunctionDef,
    ) -> cst.FunctionDef | cst.RemovalSentinel:
        method = self.config.get_session_method
        name = original_node.name.value
        if manager.is_base and name == method:
            self._drop |= identifiers(original_node)
            return cst.RemoveFromParent()
        if manager.is_base and name == self.config.execute_method:
            return updated_node  # the operation runner: step 2.3
        getter_call = m.Call(
            func=m.Attribute(value=m.Name("self"), attr=m.Name(method))
        )
        calls = findall(original_node.body, getter_call)
        if not calls:
            return updated_node
        # ``session, should_close = self._get_session()`` (or ``session = ...``): the
        # session is ``self._session`` now, and the flag the constant the helper returned
        # for an injected session (False: the session is not this method's to close)
        unpacked = [
            cst.ensure_type(a, cst.Assign)
            for a in findall(original_node.body, m.Assign(value=getter_call))
        ]
        targets = [_getter_targets(a) for a in unpacked]
        rewritable = {id(a.value) for a, t in zip(unpacked, targets) if t is not None}
        for call in calls:
            if id(call) not in rewritable:
                self.report(
                    call,
                    f"`self.{method}()` was removed with the method; use "
                    f"`self.{self.analysis.session_attr}` (always set now); rewrite by hand",
                )
        if (
            len(rewritable) != len(calls)
            or len({t for t in targets if t is not None}) != 1
        ):
            return updated_node
        session_var, flag_var = next(t for t in targets if t is not None)
        body = updated_node.body.visit(
            _SimplifyBody(
                session_var, flag_var, self.analysis.session_attr, method, whole=False
            )
        )
        return updated_node.with_changes(body=body)

    def prepare(self, tree: cst.Module) -> None:
        self._drop: set[str] = set()
        self._outer: list[cst.FunctionDef] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        super().visit_FunctionDef(node)
        self._outer.append(node)

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef | cst.RemovalSentinel:
        self._outer.pop()
        return super().leave_FunctionDef(original_node, updated_node)

    def visit_Call(self, node: cst.Call) -> None:
        """A call of the removed method on something else than a manager's own ``self``
        (a test asking a manager for its session) is reported: nothing stands for it."""
        method = self.config.get_session_method
        if not matches(node.func, m.Attribute(attr=m.Name(method))):
            return
        receiver = cst.ensure_type(node.func, cst.Attribute).value
        if self.current_manager is not None and matches(receiver, m.Name("self")):
            return  # the manager's own methods: leave_method
        outer = self._outer[0] if self._outer else None
        test = (
            outer.name.value
            if outer is not None and is_test_function(outer, self.analysis.naming)
            else None
        )
        self.report(
            node,
            (f"{test}: " if test else "")
            + f"`{code(node.func)}()` calls `{method}`, removed from "
            f"{self.config.base_manager_class}; the manager's session is "
            f"`{code(receiver)}.{self.analysis.session_attr}` now, always given; rewrite by hand",
        )

    def leave_Module(
        self, original_node: cst.Module, updated_node: cst.Module
    ) -> cst.Module:
        return drop_unused_imports(self, updated_node, self.rel or "", self._drop)


# ------------------------------------------------------------------------------- step 2.3

_LOG_LEVELS = (
    "debug",
    "info",
    "warning",
    "warn",
    "error",
    "exception",
    "critical",
    "log",
)
LOG_CALL = m.Call(func=m.Attribute(attr=m.OneOf(*[m.Name(n) for n in _LOG_LEVELS])))
#: what log messages say about committing; what they say about rolling back stays true (the
#: operation's savepoint is rolled back)
_REWORD = (
    (re.compile(r"\bCommitting\b"), "Flushing"),
    (re.compile(r"\bcommitting\b"), "flushing"),
    (re.compile(r"\bCommitted\b"), "Flushed"),
    (re.compile(r"\bcommitted\b"), "flushed"),
    (re.compile(r"\bCommit\b"), "Flush"),
    (re.compile(r"\bcommit\b"), "flush"),
)


def reword(text: str) -> str:
    for pattern, replacement in _REWORD:
        text = pattern.sub(replacement, text)
    return text


class _RewordStrings(Transformer):
    def leave_SimpleString(
        self, original_node: cst.SimpleString, updated_node: cst.SimpleString
    ) -> cst.SimpleString:
        return updated_node.with_changes(value=reword(updated_node.value))

    def leave_FormattedStringText(
        self,
        original_node: cst.FormattedStringText,
        updated_node: cst.FormattedStringText,
    ) -> cst.FormattedStringText:
        return updated_node.with_changes(value=reword(updated_node.value))

    def visit_FormattedStringExpression(
        self, node: cst.FormattedStringExpression
    ) -> bool:
        return False


#: the label of a field in a message: ``, should_close=`` or ``flag: ``; after a comma, a
#: semicolon or an opening parenthesis every word up to the colon (``, owned here: ``)
_FLAG_LABEL = re.compile(
    r"(?:[,;]\s*|(?<=\()\s*)\w+(?:[ \t]+\w+)*\s*[=:]\s*$|[,;]?\s*\w+\s*[=:]\s*$"
)


#: a %-style field of a message (``%s``, ``%(name)r``, ``%5.2f``) or ``%%``
_PERCENT_FIELD = re.compile(r"%%|%(?:\([^)]*\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[a-zA-Z]")


def _getter_targets(assign: cst.Assign) -> tuple[str | None, str | None] | None:
    """(session variable, flag variable) of ``session, flag = self._get_session()`` or
    ``session = ...``; None for any other target."""
    if len(assign.targets) != 1:
        return None
    target = assign.targets[0].target
    if isinstance(target, cst.Name):
        return target.value, None
    if (
        isinstance(target, cst.Tuple)
        and len(target.elements) == 2
        and all(isinstance(e.value, cst.Name) for e in target.elements)
    ):
        first, second = (
            cst.ensure_type(e.value, cst.Name).value for e in target.elements
        )
        return first, (None if second == "_" else second)
    return None


class _SimplifyBody(Transformer):
    """The rewrite of a method that fetched its session from the removed helper: the
    unpacking goes, the session variable becomes ``self._session``, the flag the constant
    ``False`` (the helper's answer for an injected session), ``if <flag>:`` blocks without
    ``else`` go. With ``whole`` (``_execute_db_operation``, see
    :class:`SimplifyExecuteDbOperation`) commit becomes flush, rollback and close go and log
    messages are reworded."""

    def __init__(
        self,
        session_var: str | None,
        flag_var: str | None,
        session_attr: str,
        getter: str,
        whole: bool = True,
    ) -> None:
        super().__init__()
        self.whole = whole
        self.session_var = session_var
        self.flag_var = flag_var
        self.session_attr = session_attr
        self.getter = getter
        self.not_names: set[int] = set()
        self.depth = 0
        sessions = [m.Attribute(value=m.Name("self"), attr=m.Name(session_attr))]
        if session_var:
            sessions.append(m.Name(session_var))
        self.session = m.OneOf(*sessions)

    def _method(self, *names: str) -> m.SimpleStatementLine:
        return m.SimpleStatementLine(
            body=[
                m.Expr(
                    m.Call(
                        func=m.Attribute(
                            value=self.session,
                            attr=m.OneOf(*[m.Name(n) for n in names]),
                        )
                    )
                )
            ]
        )

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> bool:
        getter_call = m.Call(
            func=m.Attribute(value=m.Name("self"), attr=m.Name(self.getter))
        )
        return not matches(
            node, m.SimpleStatementLine(body=[m.Assign(value=getter_call)])
        )

    # nested functions and lambdas keep their own names
    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self.not_names.add(id(node.attr))

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self.not_names.add(id(node.keyword))

    def leave_Name(
        self, original_node: cst.Name, updated_node: cst.Name
    ) -> cst.BaseExpression:
        if id(original_node) in self.not_names:
            return updated_node
        if self.session_var and original_node.value == self.session_var:
            return cst.Attribute(
                value=cst.Name("self"), attr=cst.Name(self.session_attr)
            )
        if self.flag_var and original_node.value == self.flag_var:
            return cst.Name("False")
        return updated_node

    def leave_FormattedString(
        self, original_node: cst.FormattedString, updated_node: cst.FormattedString
    ) -> cst.FormattedString:
        """A message that showed the flag (``..., should_close={should_close})``) drops
        that field and its label: it would only ever say False now."""
        if not self.flag_var:
            return updated_node
        parts = list(updated_node.parts)
        for i in reversed(range(len(parts))):
            original = original_node.parts[i]
            if not (
                isinstance(original, cst.FormattedStringExpression)
                and matches(original.expression, m.Name(self.flag_var))
                and original.format_spec is None
                and i > 0
                and isinstance(parts[i - 1], cst.FormattedStringText)
            ):
                continue
            before = cst.ensure_type(parts[i - 1], cst.FormattedStringText)
            label = _FLAG_LABEL.search(before.value)
            if label is None:
                continue
            text = before.value[: label.start()]
            after = parts[i + 1] if i + 1 < len(parts) else None
            if (
                text.rstrip().endswith("(")
                and isinstance(after, cst.FormattedStringText)
                and after.value.startswith(")")
            ):  # ``(flag=...)`` alone in its parentheses: they go too
                text = text.rstrip()[:-1].rstrip()
                parts[i + 1] = after.with_changes(value=after.value[1:])
            parts[i - 1] = before.with_changes(value=text)
            del parts[i]
        parts = [
            p
            for p in parts
            if not (isinstance(p, cst.FormattedStringText) and not p.value)
        ]
        return updated_node.with_changes(parts=parts)

    def _on_flag(self, node: cst.BaseExpression) -> bool:
        """``a if <flag> else b`` (or ``if not <flag>``): decided by the flag alone."""
        flag = m.Name(self.flag_var) if self.flag_var else None
        return flag is not None and matches(
            node, m.IfExp(test=flag | m.UnaryOperation(operator=m.Not(), expression=flag))
        )

    def leave_IfExp(
        self, original_node: cst.IfExp, updated_node: cst.IfExp
    ) -> cst.BaseExpression:
        """``a if <flag> else b``: the flag is the constant False now, so ``b`` (``a`` for
        ``not <flag>``), in the parentheses the whole had."""
        if not self._on_flag(original_node):
            return updated_node
        negated = isinstance(original_node.test, cst.UnaryOperation)
        chosen = updated_node.body if negated else updated_node.orelse
        if updated_node.lpar and not chosen.lpar:
            chosen = chosen.with_changes(lpar=updated_node.lpar, rpar=updated_node.rpar)
        return chosen

    def _fold_constant_fields(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        """A %-style message whose ``%s`` argument was decided by the flag alone and is a
        plain string now (``log.debug("%s ok%s", name, " (own)" if flag else "")``) takes
        that text into the message in place of the field, and the argument goes."""
        if len(original_node.args) < 2:
            return updated_node
        first = updated_node.args[0]
        if first.keyword is not None or not isinstance(first.value, cst.SimpleString):
            return updated_node
        string = first.value
        rest = updated_node.args[1:]
        if any(a.keyword is not None or a.star for a in rest):
            return updated_node
        body = string.value[len(string.prefix) + len(string.quote) : -len(string.quote)]
        if "r" in string.prefix.lower() or "b" in string.prefix.lower():
            return updated_node
        fields = [f for f in _PERCENT_FIELD.finditer(body) if f.group(0) != "%%"]
        if len(fields) != len(rest):
            return updated_node
        folded: list[int] = []
        for i, arg in enumerate(rest):
            value = arg.value
            if not (
                self._on_flag(original_node.args[1 + i].value)
                and isinstance(value, cst.SimpleString)
                and fields[i].group(0) == "%s"
            ):
                continue
            text = value.evaluated_value
            if not isinstance(text, str) or any(c in text for c in "%\\\"'\n{}"):
                continue
            folded.append(i)
        if not folded:
            return updated_node
        for i in reversed(folded):
            field = fields[i]
            text = cst.ensure_type(rest[i].value, cst.SimpleString).evaluated_value
            body = body[: field.start()] + str(text) + body[field.end() :]
        value = f"{string.prefix}{string.quote}{body}{string.quote}"
        args = [first.with_changes(value=string.with_changes(value=value))] + [
            a for i, a in enumerate(rest) if i not in folded
        ]
        args[-1] = args[-1].with_changes(comma=updated_node.args[-1].comma)
        return updated_node.with_changes(args=args)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        """A %-style message (``log.debug("... (owned=%s)", name, flag)``) that showed the
        flag drops that field, its label and its argument, as an f-string does."""
        if not self.flag_var or len(original_node.args) < 2:
            return updated_node
        if any(self._on_flag(a.value) for a in original_node.args[1:]):
            return self._fold_constant_fields(original_node, updated_node)
        first = original_node.args[0]
        if first.keyword is not None or not isinstance(first.value, cst.SimpleString):
            return updated_node
        rest = original_node.args[1:]
        if any(a.keyword is not None or a.star for a in rest):
            return updated_node
        flags = [
            i for i, a in enumerate(rest) if matches(a.value, m.Name(self.flag_var))
        ]
        string = first.value
        body = string.value[len(string.prefix) + len(string.quote) : -len(string.quote)]
        if len(flags) != 1 or "r" in string.prefix.lower():
            return updated_node
        fields = [f for f in _PERCENT_FIELD.finditer(body) if f.group(0) != "%%"]
        if len(fields) != len(rest):
            return updated_node
        field = fields[flags[0]]
        text, after = body[: field.start()], body[field.end() :]
        label = _FLAG_LABEL.search(text)
        if label is None:
            return updated_node
        text = text[: label.start()]
        if text.rstrip().endswith("(") and after.startswith(")"):
            text, after = text.rstrip()[:-1].rstrip(), after[1:]
        value = f"{string.prefix}{string.quote}{text}{after}{string.quote}"
        args = list(updated_node.args)
        del args[1 + flags[0]]
        args[0] = args[0].with_changes(value=string.with_changes(value=value))
        args[-1] = args[-1].with_changes(comma=updated_node.args[-1].comma)
        return updated_node.with_changes(args=args)

    def leave_SimpleStatementLine(
        self,
        original_node: cst.SimpleStatementLine,
        updated_node: cst.SimpleStatementLine,
    ) -> cst.BaseStatement | cst.RemovalSentinel:
        getter_call = m.Call(
            func=m.Attribute(value=m.Name("self"), attr=m.Name(self.getter))
        )
        if matches(
            original_node, m.SimpleStatementLine(body=[m.Assign(value=getter_call)])
        ):
            return cst.RemoveFromParent()
        if not self.whole:
            return updated_node
        if matches(original_node, self._method("rollback", "close")):
            return cst.RemoveFromParent()
        if matches(original_node, self._method("commit")):
            expr = cst.ensure_type(updated_node.body[0], cst.Expr)
            call = cst.ensure_type(expr.value, cst.Call)
            func = cst.ensure_type(call.func, cst.Attribute)
            new_call = call.with_changes(func=func.with_changes(attr=cst.Name("flush")))
            return updated_node.with_changes(body=[expr.with_changes(value=new_call)])
        if matches(original_node, m.SimpleStatementLine(body=[m.Expr(LOG_CALL)])):
            return cst.ensure_type(
                updated_node.visit(_RewordStrings()), cst.SimpleStatementLine
            )
        return updated_node

    def leave_If(
        self, original_node: cst.If, updated_node: cst.If
    ) -> cst.BaseStatement | cst.RemovalSentinel:
        # ``if should_close: session.close()``: the session is not ours to close any more
        if (
            self.flag_var
            and matches(original_node.test, m.Name(self.flag_var))
            and original_node.orelse is None
        ):
            return cst.RemoveFromParent()
        return updated_node

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        if original_node.body and not updated_node.body:
            return updated_node.with_changes(
                body=[cst.SimpleStatementLine(body=[cst.Pass()])]
            )
        return updated_node

    def leave_Try(
        self, original_node: cst.Try, updated_node: cst.Try
    ) -> cst.BaseStatement | cst.FlattenSentinel:
        final = updated_node.finalbody
        emptied = (
            final is not None
            and original_node.finalbody is not None
            and _only_pass(final.body)
            and not _only_pass(original_node.finalbody.body)
        )
        if emptied and updated_node.handlers:
            updated_node = updated_node.with_changes(finalbody=None)
        if not updated_node.handlers and (emptied or updated_node.finalbody is None):
            body = cst.ensure_type(updated_node.body, cst.IndentedBlock).body
            first, *rest = body
            return cst.FlattenSentinel(
                [first.with_changes(leading_lines=updated_node.leading_lines), *rest]
            )
        return updated_node


def _only_pass(block: cst.BaseSuite) -> bool:
    return matches(
        block, m.IndentedBlock(body=[m.SimpleStatementLine(body=[m.Pass()])])
    )


class _InSavepoint(Transformer):
    """Wraps the statements of a ``try:`` body from the one that calls
    ``operation(self.<session>, ...)`` to the ``self.<session>.flush()`` after it (if any) in
    ``with self.<session>.begin_nested():``; the innermost such ``try`` of the method, once.

    The savepoint is released when the block ends (SQLAlchemy flushes before releasing) and
    rolled back when it raises, before the ``except`` clauses log and re-raise.
    """

    def __init__(self, session_attr: str) -> None:
        super().__init__()
        self.session_attr = session_attr
        session = m.Attribute(value=m.Name("self"), attr=m.Name(session_attr))
        self.operation = m.Call(args=[m.Arg(session), m.ZeroOrMore()])
        self.flush = m.SimpleStatementLine(
            body=[
                m.Expr(
                    m.Call(
                        func=m.Attribute(value=session, attr=m.Name("flush")), args=[]
                    )
                )
            ]
        )
        self.done = False

    # nested functions and lambdas are not the method's own code
    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def leave_Try(self, original_node: cst.Try, updated_node: cst.Try) -> cst.Try:
        if self.done or not isinstance(updated_node.body, cst.IndentedBlock):
            return updated_node
        statements = list(updated_node.body.body)
        start = next(
            (i for i, s in enumerate(statements) if findall(s, self.operation)), None
        )
        if start is None:
            return updated_node
        end = next(
            (
                i
                for i in range(start, len(statements))
                if matches(statements[i], self.flush)
            ),
            start,
        )
        first = statements[start]
        moved = [first.with_changes(leading_lines=()), *statements[start + 1 : end + 1]]
        begin = cst.Call(
            func=cst.Attribute(
                value=cst.Attribute(
                    value=cst.Name("self"), attr=cst.Name(self.session_attr)
                ),
                attr=cst.Name("begin_nested"),
            )
        )
        block = cst.With(
            items=[cst.WithItem(begin)],
            body=cst.IndentedBlock(body=moved),
            leading_lines=first.leading_lines,
        )
        self.done = True
        return updated_node.with_changes(
            body=updated_node.body.with_changes(
                body=[*statements[:start], block, *statements[end + 1 :]]
            )
        )


#: what a note says of a test that spies on the session's commit or rollback (the gates
#: leave its assertion failures to the person the note is for)
NO_LONGER_CALLED = "which managers no longer call"

#: ``patch.object(x, "commit", ...)``, ``mocker.patch.object(...)``,
#: ``monkeypatch.setattr(x, "rollback", ...)``
_SPY_ON_TRANSACTION = m.Call(
    func=m.Attribute(attr=m.Name("object") | m.Name("setattr")),
    args=[
        m.Arg(keyword=None),
        m.Arg(
            keyword=None,
            value=m.SimpleString(value=m.MatchRegex(r"""^[rbuRBU]?['"](commit|rollback)['"]$""")),
        ),
        m.ZeroOrMore(),
    ],
)


class _ChosenTests(RefactorCodemod):
    """A step-2.3 codemod of test modules: it runs on those the analysis chose by their text
    (the analysis field named by ``CHOSEN``) and skips every other file."""

    STEP = "2.3"
    ANALYZE = analyze
    CHOSEN: ClassVar[str] = ""

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        analysis: BaseManagerAnalysis = self.analysis
        rel = relpath_for(self.context.filename, analysis.root)
        if rel not in getattr(analysis, self.CHOSEN):
            raise SkipFile(f"not one of the analysis's {self.CHOSEN.replace('_', ' ')}")
        self.start()
        return super().transform_module_impl(tree)

    def start(self) -> None:
        """Per-file setup."""


class SpiesOnTheSessionsCommitReported(_ChosenTests):
    """A test that spies on a session's ``commit`` or ``rollback`` checks what the execute
    method did before this step (it commits no more, and rolls back only its savepoint):
    it is reported under its name."""

    CHOSEN = "transaction_spies"
    DESCRIPTION = (
        "Report the tests that spy on a session's commit or rollback, which the execute "
        "method no longer calls."
    )

    def start(self) -> None:
        self._functions: list[cst.FunctionDef] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._functions.append(node)

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        self._functions.pop()
        return updated_node

    def _test(self) -> str | None:
        """The test the current code is in: its outermost function, when that is a test."""
        outer = self._functions[0] if self._functions else None
        if outer is not None and is_test_function(outer, self.analysis.naming):
            return outer.name.value
        return None

    def visit_Call(self, node: cst.Call) -> None:
        test = self._test()
        if test is None or not matches(node, _SPY_ON_TRANSACTION):
            return
        attr = cst.ensure_type(node.args[1].value, cst.SimpleString).evaluated_value
        self.report(
            node,
            f"{test}: spies on the session's `{attr}`, {NO_LONGER_CALLED} "
            f"(`{self.config.execute_method}` flushes in a savepoint; the "
            f"`{self.config.session_context_class}` commits or rolls back); rewrite by hand",
        )


class CaplogReadsTheRewordedLog(_ChosenTests):
    """A test asserting on captured log text (``caplog``) that quotes a piece of a log message
    of the execute method that this step rewords (``committed ``) quotes its new text."""

    CHOSEN = "log_readers"
    DESCRIPTION = (
        "In tests, assertions on caplog that quote a reworded log message of the execute "
        "method quote its new text."
    )

    def start(self) -> None:
        self._asserts = 0

    def visit_Assert(self, node: cst.Assert) -> None:
        if findall(node, m.Name("caplog")):
            self._asserts += 1

    def leave_Assert(self, original_node: cst.Assert, updated_node: cst.Assert) -> cst.Assert:
        if findall(original_node, m.Name("caplog")):
            self._asserts -= 1
        return updated_node

    def _reworded(self, text: str) -> str:
        for old, new in self.analysis.reworded_log:
            text = text.replace(old, new)
        return text

    def leave_SimpleString(
        self, original_node: cst.SimpleString, updated_node: cst.SimpleString
    ) -> cst.SimpleString:
        if not self._asserts:
            return updated_node
        raw = updated_node.raw_value
        new = self._reworded(raw)
        if new == raw:
            return updated_node
        head = updated_node.value[: len(updated_node.value) - len(raw) - len(updated_node.quote)]
        return updated_node.with_changes(value=f"{head}{new}{updated_node.quote}")

    def leave_FormattedStringText(
        self,
        original_node: cst.FormattedStringText,
        updated_node: cst.FormattedStringText,
    ) -> cst.FormattedStringText:
        if not self._asserts:
            return updated_node
        return updated_node.with_changes(value=self._reworded(updated_node.value))


class SimplifyExecuteDbOperation(_ManagerCodemod):
    """``_execute_db_operation`` runs the operation on ``self._session`` in a savepoint and
    never commits."""

    STEP = "2.3"
    DESCRIPTION = (
        "_execute_db_operation keeps only the try/except/raise around operation(self._session, ...), "
        "which runs with its flush in a savepoint (with self._session.begin_nested():): no "
        "_get_session, commit replaced by flush, no rollback or close; log messages reworded."
    )

    def leave_method(
        self,
        manager: ManagerClass,
        original_node: cst.FunctionDef,
        updated_node: cst.FunctionDef,
    ) -> cst.FunctionDef:
        name = original_node.name.value
        if name != self.config.execute_method:
            return updated_node
        if not manager.is_base:
            self.report(
                original_node,
                f"{manager.name} overrides {name}; it must neither commit nor roll back now; rewrite by hand",
            )
            return updated_node
        getter = self.config.get_session_method
        session_var = flag_var = None
        for assign in findall(
            original_node.body,
            m.Assign(
                value=m.Call(
                    func=m.Attribute(value=m.Name("self"), attr=m.Name(getter))
                )
            ),
        ):
            target = cst.ensure_type(assign, cst.Assign).targets[0].target
            if isinstance(target, cst.Tuple) and target.elements:
                session_var = get_full_name_for_node(target.elements[0].value)
                if len(target.elements) > 1:
                    flag_var = get_full_name_for_node(target.elements[1].value)
            else:
                session_var = get_full_name_for_node(target)
        transformer = _SimplifyBody(
            session_var, flag_var, self.analysis.session_attr, getter
        )
        body = updated_node.body.visit(transformer)
        session_attr = self.analysis.session_attr
        session = m.Attribute(value=m.Name("self"), attr=m.Name(session_attr))
        if findall(
            body, m.Call(func=m.Attribute(value=session, attr=m.Name("begin_nested")))
        ):
            return updated_node.with_changes(body=body)  # runs in a savepoint already
        savepoint = _InSavepoint(session_attr)
        body = body.visit(savepoint)
        if not savepoint.done:
            self.report(
                original_node,
                f"{name}: no `try:` around `operation(self.{session_attr}, ...)` found after the "
                "rewrite; check it neither commits nor rolls back, and run the operation in "
                f"`with self.{session_attr}.begin_nested():` so that a failed one leaves the "
                "session usable; rewrite by hand",
            )
        return updated_node.with_changes(body=body)

    def visit_Call(self, node: cst.Call) -> None:
        # a manager that commits or rolls back on its own defeats SessionContext
        manager = self.current_manager
        if manager is None or manager.is_base or not self._functions:
            return
        if matches(
            node,
            m.Call(
                func=m.Attribute(attr=m.Name("commit") | m.Name("rollback")), args=[]
            ),
        ):
            self.report(
                node,
                f"{manager.name}.{self._functions[0]} calls `{code(node.func)}()`; the "
                "SessionContext owns the transaction now (flush if rows must be visible); rewrite by hand",
            )


# ------------------------------------------------------------------------------- step 2.4


class LazyInitSharesSession(_ManagerCodemod):
    """Lazily created managers get the parent's session: ``kwargs["session"] = self._session``."""

    STEP = "2.4"
    DESCRIPTION = (
        '_lazy_init_manager passes kwargs["session"] = self._session to the manager it creates '
        "(added, or normalised from setdefault/other values, when missing)."
    )

    def leave_method(
        self,
        manager: ManagerClass,
        original_node: cst.FunctionDef,
        updated_node: cst.FunctionDef,
    ) -> cst.FunctionDef:
        if (
            not manager.is_base
            or original_node.name.value != self.config.lazy_init_method
        ):
            return updated_node
        star = original_node.params.star_kwarg
        if not isinstance(star, cst.Param):
            self.report(
                original_node,
                f"{original_node.name.value} takes no **kwargs to pass the session through; rewrite by hand",
            )
            return updated_node
        kwargs = star.name.value
        name = self.session_name
        attr = self.analysis.session_attr
        key = m.SimpleString(
            m.MatchIfTrue(lambda v: v[-1:] in "'\"" and v.strip("'\"") == name)
        )
        subscript = m.Subscript(
            value=m.Name(kwargs), slice=[m.SubscriptElement(m.Index(key))]
        )
        wanted = m.Assign(
            targets=[m.AssignTarget(subscript)],
            value=m.Attribute(value=m.Name("self"), attr=m.Name(attr)),
        )
        if findall(original_node.body, wanted):
            return updated_node
        assignment = cst.parse_statement(f'{kwargs}["{name}"] = self.{attr}\n')

        class Fix(Transformer):
            done = False

            def leave_SimpleStatementLine(
                self,
                original: cst.SimpleStatementLine,
                updated: cst.SimpleStatementLine,
            ) -> cst.BaseStatement:
                if self.done:
                    return updated
                other = m.SimpleStatementLine(
                    body=[m.Assign(targets=[m.AssignTarget(subscript)])]
                )
                setdefault = m.SimpleStatementLine(
                    body=[
                        m.Expr(
                            m.Call(
                                func=m.Attribute(
                                    value=m.Name(kwargs), attr=m.Name("setdefault")
                                ),
                                args=[m.Arg(key), m.Arg()],
                            )
                        )
                    ]
                )
                if matches(original, other | setdefault):
                    self.done = True
                    return assignment.with_changes(leading_lines=updated.leading_lines)
                return updated

        fixer = Fix()
        body = updated_node.body.visit(fixer)
        if fixer.done:
            return updated_node.with_changes(body=body)

        class Insert(Transformer):
            done = False

            def leave_IndentedBlock(
                self, original: cst.IndentedBlock, updated: cst.IndentedBlock
            ) -> cst.IndentedBlock:
                if self.done:
                    return updated
                creating = m.Call(
                    args=[
                        m.ZeroOrMore(),
                        m.Arg(value=m.Name(kwargs), star="**"),
                        m.ZeroOrMore(),
                    ]
                )
                statements = list(updated.body)
                for i, stmt in enumerate(original.body):
                    if isinstance(stmt, cst.SimpleStatementLine) and findall(
                        stmt, creating
                    ):
                        self.done = True
                        return updated.with_changes(
                            body=[*statements[:i], assignment, *statements[i:]]
                        )
                return updated

        inserter = Insert()
        body = updated_node.body.visit(inserter)
        if not inserter.done:
            self.report(
                original_node,
                f"{original_node.name.value}: no `Manager(**{kwargs})` call found to pass "
                f"`{name}=self.{attr}` to; rewrite by hand",
            )
            return updated_node
        return updated_node.with_changes(body=body)


# ------------------------------------------------------------------------------- the phase

PHASE = PhaseSpec(
    2,
    "Adapt Base Manager",
    "Modify `BaseManager` to require a session upon initialization and remove its internal "
    "session/transaction handling logic.",
    (
        StepSpec("2.1", "Change `BaseManager.__init__`", (RequireSession,)),
        StepSpec("2.2", "Remove `BaseManager._get_session`", (RemoveGetSession,)),
        StepSpec(
            "2.3",
            "Simplify `BaseManager._execute_db_operation`",
            (
                SimplifyExecuteDbOperation,
                CaplogReadsTheRewordedLog,
                SpiesOnTheSessionsCommitReported,
            ),
        ),
        StepSpec(
            "2.4", "Update `BaseManager._lazy_init_manager`", (LazyInitSharesSession,)
        ),
    ),
    files=files,
    analyze=analyze,
    verification=(
        "Run `uv run pytest -v --log-cli-level=DEBUG`. Expect widespread failures, particularly "
        "`TypeError`s where managers are instantiated without the required `session` argument "
        "(especially in `conftest.py` fixtures). This is expected."
    ),
)

__all__ = ["PHASE", "analyze", "files", "reword"]
