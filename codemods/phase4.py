"""Phase 4 of docs/plan.md: refactor the test infrastructure (the conftest fixtures).

Driven by the fixture graph (:mod:`refactor_tool.model.fixtures`), never by fixture names:

* 4.1 the session fixture (``Config.session_fixture``) is deleted;
* 4.2 every manager fixture (a fixture returning an instance of a manager class found by
  the manager analysis) is deleted;
* 4.3 the fixture that builds the ``DatabaseManager`` is reviewed: calls of the session
  APIs phase 1 removed (``close_session()``, ``session.remove()``) are dropped from it, any
  other use of them is reported; a fixture that already just passes the engine is left alone;
* 4.4 every ``create_test_*`` factory fixture loses its session and manager parameters; its
  inner function takes ``session: Session`` first, builds its managers with
  ``managers = create_all_managers(session)`` and calls them as ``managers.<short>``, drops
  ``merge`` and refreshes through the passed session only, without the relationship
  collections (a collection refreshed right after its parent is created is frozen; the
  collections are found in the model classes); a manager fixture whose construction
  ``create_all_managers`` cannot stand for (it leaves out a manager, or the session) is built
  inside the inner function as the fixture built it, on the passed session
  (:func:`refactor_tool.model.fixtures.manager_rebuild`);
* 4.5 the object fixtures are deleted (docs/plan.md's option 1) once their recipe can be inlined
  by phase 5; a fixture defined twice in one module loses its earlier, dead definition.

Before anything is deleted, the analysis records the fixture graph (kinds, parameters and
each fixture's source, its recipe) in the run state: phase 5 inlines
from that record. Yield fixtures, helper closures over the session and anything else the
rules cannot classify are reported with file:line and left in place.

What is deleted is decided once, by :func:`refactor_tool.model.fixtures.fixture_plan`: a
fixture of 4.1, 4.2 or 4.5 that something staying still requests, directly or through
other fixtures, is kept as it is and reported once with what requests it. What stays is
every fixture the phase does not delete (a factory it reports and leaves, whose manager
fixtures would otherwise be gone; a fixture left in place) and what phase 5 leaves as it
is in the test modules (a test it reports, a fixture a test module defines, a
``usefixtures`` mark): the analysis runs phase 5's codemod over the test modules, writing
nothing, to learn those (:func:`codemods.phase5.left_alone`). An object or other fixture
that stays and calls a factory 4.4 rewrites passes it its session fixture. Each step acts
on a fixture's last definition in a module (the one pytest uses), so a fixture defined
twice gets one note.

Imports go through ``AddImportsVisitor`` (run over the import block only). An import that
only the deleted fixtures used is removed by a name check over what is left
(:func:`refactor_tool.model.fixtures.remove_unused_imports`) rather than by ``RemoveImportsVisitor``,
whose scope analysis costs about three seconds per step on a 500-line conftest.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
from libcst.codemod import SkipFile
from libcst.codemod.visitors import AddImportsVisitor
from libcst.matchers import matches

from codemods import phase5, rewrite
from codemods.base import PhaseSpec, RefactorCodemod, StepSpec
from refactor_tool.model import fixtures as fx
from refactor_tool.model.managers import relpath_for
from refactor_tool.model.project import Project
from refactor_tool.model.state import record_fixture_graph
from refactor_tool.model.syntax import findall

# ------------------------------------------------------------------------------- analysis


def analyze(project: Project) -> fx.FixtureAnalysis:
    """The fixture graph of the current conftests, recorded while they hold old fixtures,
    and what the phase does with each fixture (:func:`refactor_tool.model.fixtures.fixture_plan`):
    a fixture that something staying still requests is kept, whether a fixture that stays
    asks for it or a test phase 5 leaves as it is (:func:`codemods.phase5.left_alone`)."""
    analysis = fx.analyze_current(project)
    record_fixture_graph(project, analysis.graph)
    analysis.plan = fx.fixture_plan(
        analysis.graph, phase5.left_alone(project, analysis)
    )
    analysis.rewritten_modules = tuple(phase5.files(project, analysis))
    return analysis


def _database_manager_fixtures(
    analysis: fx.FixtureAnalysis, rel: str
) -> list[fx.Fixture]:
    name = analysis.config.database_manager_class
    return [
        f for f in analysis.graph.fixtures.get(rel, {}).values() if name in f.source
    ]


def _has_work(analysis: fx.FixtureAnalysis, rel: str) -> bool:
    module = analysis.graph.modules[rel]
    if module.dead:
        return True
    for fixture in analysis.graph.fixtures.get(rel, {}).values():
        if fixture.kind in (fx.SESSION, fx.MANAGER, fx.OBJECT, fx.DB_OTHER):
            return True
        if fixture.kind == fx.FACTORY and not fixture.new_style:
            return True
    removed = analysis.config.removed_session_apis
    return any(
        any(api in f.source for api in removed)
        for f in _database_manager_fixtures(analysis, rel)
    )


def files(project: Project, analysis: fx.FixtureAnalysis) -> list[str]:
    """The fixture modules (conftests and what they star-import) that hold work for phase 4."""
    return [rel for rel in sorted(analysis.graph.modules) if _has_work(analysis, rel)]


# ------------------------------------------------------------------------------- codemods


class _FixtureModuleCodemod(RefactorCodemod):
    """Shared plumbing: the module's relative path, its fixtures, statement removal."""

    ANALYZE = analyze

    def report_fixture(self, fixture: fx.Fixture, message: str) -> None:
        """A note at the fixture's line in the file as it was before the phase."""
        self.report_at(fixture.line, message)

    @property
    def plan(self) -> fx.FixturePlan:
        plan = self.analysis.plan
        return plan if plan is not None else fx.fixture_plan(self.analysis.graph)

    def report_kept(self, fixture: fx.Fixture, label: str, extra: str = "") -> None:
        """The one note about a fixture the phase would delete but keeps."""
        request = self.plan.keeper(fixture)
        self.report_fixture(
            fixture,
            f"{label} fixture {fixture.name!r} is kept: still requested by "
            f"{request}{extra}; delete it by hand once nothing requests it",
        )

    def remove_kind(
        self, original: cst.Module, updated: cst.Module, kind: str, label: str
    ) -> cst.Module:
        """Delete the fixtures of ``kind`` the plan deletes; report those it keeps."""
        _, fixtures = self.fixture_module()
        plan = self.plan
        names = set()
        for fixture in sorted(fixtures.values(), key=lambda f: f.line):
            if fixture.kind != kind:
                continue
            if plan.deletes(fixture):
                names.add(fixture.name)
            elif plan.fate(fixture) == fx.KEEP:
                self.report_kept(fixture, label)
        return self.remove_fixtures(
            updated, original, self.fixture_indices(updated, names)
        )

    @staticmethod
    def effective_definitions(module: cst.Module) -> dict[str, cst.FunctionDef]:
        """Each fixture name's last definition in the module: the one pytest uses (an
        earlier one is dead code, which step 4.5 deletes)."""
        return {
            fx.registered_name(s): s  # type: ignore[arg-type]
            for s in module.body
            if fx.is_fixture(s)
        }

    def fixture_module(self) -> tuple[str, dict[str, fx.Fixture]]:
        analysis: fx.FixtureAnalysis = self.analysis
        rel = relpath_for(self.context.filename, analysis.root)
        if rel is None or rel not in analysis.graph.modules:
            raise SkipFile("not a fixture module")
        return rel, analysis.graph.fixtures.get(rel, {})

    def remove_fixtures(
        self, module: cst.Module, original: cst.Module, doomed: set[int]
    ) -> cst.Module:
        if not doomed:
            return module
        bindings = fx.top_level_bindings(original)
        removed_nodes = [module.body[i] for i in sorted(doomed)]
        imported = {
            n for n in fx.scan(removed_nodes).used if bindings.get(n) is not None
        }
        body, footer = rewrite.remove_statements(module.body, doomed, module.footer)
        result = rewrite.remove_unused_imports(
            module.with_changes(body=body, footer=footer), imported
        )
        if not result.body and not any(line.comment for line in result.footer):
            # nothing is left but the module's leading comments, if any: no blank lines
            result = result.with_changes(footer=[], has_trailing_newline=bool(result.header))
        return result

    @staticmethod
    def fixture_indices(module: cst.Module, names: set[str]) -> set[int]:
        return {
            i
            for i, s in enumerate(module.body)
            if fx.is_fixture(s) and fx.registered_name(s) in names  # type: ignore[arg-type]
        }


class RemoveSessionFixture(_FixtureModuleCodemod):
    """Deletes the session fixture. Where no session context fixture is seen from it (the
    project never had one), one takes its place, since the tests phase 5 rewrites open
    ``with session_context as session:``: it returns a new ``SessionContext``, opened on the
    ``DatabaseManager`` fixture the session fixture took its session from, if any."""

    STEP = "4.1"
    DESCRIPTION = (
        "Delete the session fixture (db_session); tests use session_context instead."
    )

    def visit_Module(self, node: cst.Module) -> bool:
        return False  # everything happens on the module's statement list

    def leave_Module(
        self, original_node: cst.Module, updated_node: cst.Module
    ) -> cst.Module:
        updated_node = self._add_session_context(updated_node)
        return self.remove_kind(original_node, updated_node, fx.SESSION, "session")

    def _add_session_context(self, module: cst.Module) -> cst.Module:
        _, fixtures = self.fixture_module()
        analysis: fx.FixtureAnalysis = self.analysis
        config = self.config
        name = config.session_context_fixture
        session = next(
            (
                f
                for f in fixtures.values()
                if fx.session_context_to_add(
                    analysis.graph, f, name, analysis.rewritten_modules
                )
            ),
            None,
        )
        if session is None:
            return module
        at = next(iter(self.fixture_indices(module, {session.name})), None)
        if at is None:
            return module
        old = cst.ensure_type(module.body[at], cst.FunctionDef)
        manager = fx.database_manager_request(
            analysis.graph, session, config.database_manager_class
        )
        context = config.session_context_class
        argument = manager if manager is not None and analysis.context_takes_manager else ""
        decorator = old.decorators[0].decorator
        if isinstance(decorator, cst.Call):
            decorator = decorator.func
        new = cst.ensure_type(
            cst.parse_statement(
                f"def {name}({manager or ''}):\n"
                f'    """A {context} over the test database: ``with {name} as '
                f'{config.session_variable}:``."""\n'
                f"    return {context}({argument})\n"
            ),
            cst.FunctionDef,
        ).with_changes(
            decorators=[cst.Decorator(decorator=decorator)],
            leading_lines=old.leading_lines,
        )
        AddImportsVisitor.add_needed_import(
            self.context, config.session_module_name, context
        )
        return module.with_changes(
            body=[*module.body[:at], new, *module.body[at:]]
        )


class RemoveManagerFixtures(_FixtureModuleCodemod):
    STEP = "4.2"
    DESCRIPTION = "Delete every manager fixture; tests build managers with create_all_managers(session)."

    def visit_Module(self, node: cst.Module) -> bool:
        return False

    def leave_Module(
        self, original_node: cst.Module, updated_node: cst.Module
    ) -> cst.Module:
        return self.remove_kind(original_node, updated_node, fx.MANAGER, "manager")


class UpdateDatabaseManagerFixture(_FixtureModuleCodemod):
    STEP = "4.3"
    DESCRIPTION = (
        "Keep the fixture that builds the DatabaseManager working on the sessionmaker-based "
        "DatabaseManager: drop calls of the removed close_session()/session.remove()."
    )

    def visit_Module(self, node: cst.Module) -> None:
        rel, _ = self.fixture_module()
        self._targets = {
            f.name: f for f in _database_manager_fixtures(self.analysis, rel)
        }
        self._effective = self.effective_definitions(node)
        self._current: fx.Fixture | None = None

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        if self._current is None and fx.is_fixture(node):
            name = fx.registered_name(node)
            if name in self._targets and self._effective.get(name) is node:
                self._current = self._targets[name]
        return self._current is not None

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        if (
            self._current is not None
            and self._effective.get(self._current.name) is original_node
        ):
            self._current = None
        return updated_node

    def _removed_call(self, node: cst.CSTNode) -> str | None:
        removed = set(self.config.removed_session_apis)
        if (
            matches(node, m.Call(func=m.Attribute(attr=m.Name("close_session"))))
            and "close_session" in removed
        ):
            return "close_session"
        if matches(
            node,
            m.Call(
                func=m.Attribute(
                    value=m.Attribute(attr=m.Name("session")), attr=m.Name("remove")
                )
            ),
        ):
            return "session.remove"
        return None

    def leave_SimpleStatementLine(
        self,
        original_node: cst.SimpleStatementLine,
        updated_node: cst.SimpleStatementLine,
    ) -> cst.SimpleStatementLine | cst.RemovalSentinel:
        fixture = self._current
        if fixture is None:
            return updated_node
        if all(
            isinstance(s, cst.Expr) and self._removed_call(s.value)
            for s in updated_node.body
        ):
            return cst.RemoveFromParent()
        for api in self.config.removed_session_apis:
            if findall(original_node, m.Attribute(attr=m.Name(api)) | m.Name(api)):
                text = fx.code(original_node.with_changes(leading_lines=[])).strip()
                offset = fixture.source[: max(fixture.source.find(text), 0)].count("\n")
                self.report_at(
                    fixture.line + offset,
                    f"fixture {fixture.name!r} uses {api}(), which "
                    "phase 1 removed from the DatabaseManager; rewrite by hand",
                )
                break
        return updated_node


class RefactorFactoryFixtures(_FixtureModuleCodemod):
    STEP = "4.4"
    DESCRIPTION = (
        "Factory fixtures: the inner function takes `session` first, builds its managers with "
        "create_all_managers(session), drops merge, refreshes only through that session."
    )

    def visit_Module(self, node: cst.Module) -> None:
        self._rel, self._fixtures = self.fixture_module()
        self._bindings = fx.top_level_bindings(node)
        self._effective = self.effective_definitions(node)
        self._depth = 0

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self._depth += 1
        return False  # a factory fixture is rewritten as a whole when it is left

    def leave_Module(
        self, original_node: cst.Module, updated_node: cst.Module
    ) -> cst.Module:
        if updated_node is original_node or self.analysis.graph.star_imported(self._rel):
            return updated_node
        # what only the parameters the factories lost used (their annotations)
        return rewrite.drop_imports_made_unused(original_node, updated_node)

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        self._depth -= 1
        if self._depth or not fx.is_fixture(original_node):
            return updated_node
        name = fx.registered_name(original_node)
        fixture = self._fixtures.get(name)
        if fixture is None or self._effective.get(name) is not original_node:
            return updated_node
        fate = self.plan.fate(fixture)
        if fixture.kind == fx.FACTORY and fate == fx.LEAVE:
            self.report_fixture(
                fixture,
                f"factory fixture {fixture.name!r} {fixture.problem}; rewrite by hand",
            )
            return updated_node
        if fate != fx.REWRITE:
            return updated_node
        return self._rewrite(original_node, updated_node, fixture)

    def _rewrite(
        self, original: cst.FunctionDef, fn: cst.FunctionDef, fixture: fx.Fixture
    ) -> cst.FunctionDef:
        config = self.config
        graph = self.analysis.graph
        deps = {p: graph.resolve(p, fixture.rel) for p in fixture.params}
        drop = fx.factory_drops(graph, fixture)
        factories = {
            p for p, d in deps.items() if d is not None and d.kind == fx.FACTORY
        }
        replacements: dict[str, cst.BaseExpression] = {}
        rebuilt: list[cst.BaseStatement] = []
        # factory keyword -> the fixture that supplies it (what the manager fixture injected)
        handed: dict[str, str] = {}
        # the managers rebuilt so far, and the fixtures their constructions read
        built: set[str] = set()
        handed_plain: dict[str, str] = {}
        for p in sorted(drop, key=fixture.params.index):
            dep = deps[p]
            assert dep is not None
            if dep.kind == fx.SESSION:
                replacements[p] = cst.Name(config.session_variable)
            elif dep.kind == fx.MANAGER and fx.hands_factory(dep, self.analysis.managers):
                replacements[p] = rewrite.managers_attr(config, dep.manager_short or p)
                for keyword, source in dep.factory_overrides.items():
                    if handed.setdefault(keyword, source) != source:
                        self.report_fixture(
                            fixture,
                            f"factory fixture {fixture.name!r}: its manager fixtures hand "
                            f"{config.factory_function} both {source!r} and "
                            f"{handed[keyword]!r} as {keyword!r}; rewrite by hand",
                        )
                        return fn
            elif dep.kind == fx.MANAGER and not dep.plain_manager:
                for name, stmt, plain in self._rebuild_manager(p, dep, fixture.rel):
                    if name in built:
                        continue
                    built.add(name)
                    rebuilt.append(stmt)
                    for source in plain:
                        handed_plain.setdefault(source, source)
            else:
                replacements[p] = rewrite.managers_attr(config, dep.manager_short or p)

        # (``yield _create`` as the last line, or before a teardown that only ends the
        # session fixture's work: returned)
        body = fx.recipe_statements(fn, config.session_fixture)
        inner = fx.returned_closure(body)
        if inner is None:
            return fn
        inner_index = body.index(inner)
        # an inner function that binds ``session`` or ``managers`` is the model's problem
        # (step 4.4 leaves the fixture, see ``fixture_plan``): nothing can be captured here
        docstring, inner_body = fx.split_docstring(fx.statements(inner))
        inner_body, rewriter = rewrite.rewrite_names(
            [*rebuilt, *inner_body], replacements, factories, config.session_variable
        )
        if rewriter.conflicts:
            self.report_fixture(
                fixture,
                f"factory fixture {fixture.name!r}: {', '.join(sorted(set(rewriter.conflicts)))} "
                "would be captured by an inner binding; rewrite by hand",
            )
            return fn
        inner_body, cleaner = rewrite.clean_statements(
            inner_body, config.session_variable, self.analysis.attribute_kind
        )
        for node, attr in cleaner.unknown:
            self.report_fixture(
                fixture,
                f"factory fixture {fixture.name!r} refreshes {attr!r}, which may be a "
                "relationship collection (no Mapped[...]/uselist= tells); check it by hand",
            )
        uses_managers = any(
            deps[p] is not None and deps[p].kind == fx.MANAGER
            for p in drop  # type: ignore[union-attr]
        ) and bool(
            findall(
                cst.Module(body=inner_body),
                m.Attribute(value=m.Name(config.managers_variable)),
            )
        )
        if uses_managers:
            arguments = [config.session_variable] + [
                f"{keyword}={source}" for keyword, source in sorted(handed.items())
            ]
            managers_line = cst.parse_statement(
                f"{config.managers_variable} = {config.factory_function}({', '.join(arguments)})\n"
            )
            first = inner_body[0] if inner_body else None
            if first is not None and getattr(first, "leading_lines", None):
                # comments above the first statement stay above it, after the new line
                managers_line = managers_line.with_changes(leading_lines=[])
            inner_body = [managers_line, *inner_body]
            AddImportsVisitor.add_needed_import(
                self.context, config.factory_module_name, config.factory_function
            )

        params = inner.params
        if fx.positional_params(inner)[:1] != [config.session_variable]:
            annotation: cst.BaseExpression | None = cst.Name("Session")
            if "Session" not in self._bindings:
                AddImportsVisitor.add_needed_import(
                    self.context, "sqlalchemy.orm", "Session"
                )
            elif self._bindings["Session"] is None:
                annotation = None  # a module-level ``Session`` that is not the ORM class
            session_param = rewrite.new_param(config.session_variable, annotation)
            params = rewrite.edit_params(params, insert=[session_param], at=0)
        new_inner = inner.with_changes(
            params=params, body=_with_statements(inner.body, docstring + inner_body)
        )
        body[inner_index] = new_inner
        # the fixtures handed to the factory are requested here now, where the manager
        # fixtures that requested them were
        added = [
            s
            for s in dict.fromkeys([*handed.values(), *handed_plain])
            if s not in fixture.params
        ]
        params = rewrite.edit_params(
            fn.params, remove=drop, insert=[rewrite.new_param(s, None) for s in added]
        )
        new_fn = fn.with_changes(params=params, body=_with_statements(fn.body, body))
        if not params.params and not params.kwonly_params and not params.posonly_params:
            new_fn = new_fn.with_changes(
                whitespace_before_params=cst.SimpleWhitespace("")
            )
        return new_fn

    def _rebuild_manager(
        self, name: str, manager: fx.Fixture, into: str
    ) -> list[tuple[str, cst.BaseStatement, list[str]]]:
        """``name = Manager(...)``: the manager fixture's own construction (which
        create_all_managers cannot stand for), on the inner function's session, after those
        of the manager fixtures it requests that are rebuilt too; the session fixture and
        the managers the factory builds are replaced with the other names. Each comes with
        its variable and the fixtures it reads that touch no database (a mock client), which
        the factory fixture requests from now on."""
        graph = self.analysis.graph

        def resolve(param: str) -> fx.Fixture | None:
            return graph.resolve(param, manager.rel)

        chain = fx.manager_rebuilds(manager, resolve, into)
        assert chain  # the model's _factory_problem let the fixture through
        session = self.config.session_variable
        out: list[tuple[str, cst.BaseStatement, list[str]]] = []
        for index, (fixture, call) in enumerate(chain):
            variable = name if index == len(chain) - 1 else fixture.name
            if fx.omits_session(fixture, call, resolve, session):
                call = rewrite.add_session_argument(call, session)
            renamed: dict[str, cst.BaseExpression] = {}
            plain: list[str] = []
            for p in fixture.params:
                dep = resolve(p)
                if dep is None:
                    continue
                if dep.kind == fx.SESSION:
                    renamed[p] = cst.Name(session)
                elif dep.kind == fx.MANAGER and dep.plain_manager:
                    renamed[p] = rewrite.managers_attr(self.config, dep.manager_short or p)
                elif dep.kind == fx.PLAIN:
                    plain.append(p)
            stmt = cst.SimpleStatementLine(
                [cst.Assign([cst.AssignTarget(cst.Name(variable))], call)]
            )
            (stmt,), _ = rewrite.rewrite_names([stmt], renamed, set(), session)
            for free in fx.scan([stmt]).used:
                if free in fixture.imports and free not in self._bindings:
                    source, obj, asname = fixture.imports[free]
                    AddImportsVisitor.add_needed_import(self.context, source, obj, asname)
            out.append((variable, stmt, plain))
        return out


def _with_statements(
    suite: cst.BaseSuite, stmts: list[cst.BaseStatement]
) -> cst.BaseSuite:
    if isinstance(suite, cst.IndentedBlock):
        return suite.with_changes(body=stmts)
    return cst.IndentedBlock(body=stmts)


class RemoveObjectFixtures(_FixtureModuleCodemod):
    STEP = "4.5"
    DESCRIPTION = (
        "Delete the object fixtures (test_game, ...) whose recipe phase 5 inlines into the "
        "tests, and the dead earlier definition of a fixture defined twice in one module."
    )

    def visit_Module(self, node: cst.Module) -> bool:
        return False

    def leave_Module(
        self, original_node: cst.Module, updated_node: cst.Module
    ) -> cst.Module:
        _, fixtures = self.fixture_module()
        plan = self.plan
        doomed: set[int] = set()
        seen: dict[str, int] = {}
        redefined: set[str] = set()
        for i, stmt in enumerate(updated_node.body):
            if fx.is_fixture(stmt):
                name = fx.registered_name(stmt)  # type: ignore[arg-type]
                if name in seen:
                    doomed.add(seen[name])  # an earlier definition: dead code
                    redefined.add(name)
                seen[name] = i
        body = list(updated_node.body)
        for name in redefined:
            # the definition it redefined is gone: its ``# noqa: F811`` silences nothing
            index = seen[name]
            body[index] = rewrite.without_noqa(
                cst.ensure_type(body[index], cst.FunctionDef), "F811"
            )
        # what the note of a fixture that stays says about its calls of factories
        extra: dict[str, str] = {}
        for name, index in seen.items():
            fixture = fixtures.get(name)
            if fixture is None or fixture.kind not in (fx.OBJECT, fx.DB_OTHER, fx.FACTORY):
                continue
            fate = plan.fate(fixture)
            if fixture.kind == fx.FACTORY:
                if fate == fx.LEAVE:  # a factory left as it was still calls the others
                    fn = cst.ensure_type(body[index], cst.FunctionDef)
                    body[index], extra[name] = self._pass_session(fn, fixture)
                continue
            if fate == fx.DELETE:
                doomed.add(index)
            elif fate in (fx.KEEP, fx.LEAVE):
                fn = cst.ensure_type(body[index], cst.FunctionDef)
                body[index], extra[name] = self._pass_session(fn, fixture)
        for fixture in sorted(fixtures.values(), key=lambda f: f.line):
            more = extra.get(fixture.name, "")
            if fixture.kind == fx.OBJECT and plan.fate(fixture) == fx.KEEP:
                self.report_kept(fixture, "object", more)
            elif fixture.kind == fx.OBJECT and fixture.problem:
                self.report_fixture(
                    fixture,
                    f"object fixture {fixture.name!r} {fixture.problem}; left in place, "
                    f"rewrite by hand{more}",
                )
            elif fixture.kind == fx.DB_OTHER:
                self.report_fixture(
                    fixture,
                    f"fixture {fixture.name!r} uses the session but {fixture.problem}; "
                    f"left in place, rewrite by hand{more}",
                )
            elif (
                fixture.kind == fx.MANAGER
                and fixture.problem
                and plan.fate(fixture) == fx.DELETE
            ):
                self.report_fixture(
                    fixture,
                    f"manager fixture {fixture.name!r} {fixture.problem}; "
                    "phase 5 cannot inline it, rewrite the tests that use it by hand",
                )
        if any(new is not old for new, old in zip(body, updated_node.body)):
            updated_node = updated_node.with_changes(body=body)
        return self.remove_fixtures(updated_node, original_node, doomed)

    def _pass_session(
        self, fn: cst.FunctionDef, fixture: fx.Fixture
    ) -> tuple[cst.FunctionDef, str]:
        """The calls a fixture that stays (kept, or left in place) makes of the factory
        fixtures step 4.4 rewrites get the session fixture it requests as their first
        argument (a factory's inner function takes the session first now). Returned with
        what the fixture's note says about it."""
        graph = self.analysis.graph
        plan = self.plan
        deps = {p: graph.resolve(p, fixture.rel) for p in fixture.params}
        factories = {
            p for p, d in deps.items() if d is not None and plan.fate(d) == fx.REWRITE
        }
        if not factories:
            return fn, ""
        listed = ", ".join(repr(f) for f in sorted(factories))
        session = next(
            (p for p, d in deps.items() if d is not None and d.kind == fx.SESSION), None
        )
        requested = fn
        if session is None:
            # it requests the session fixture from now on (the plan keeps that one for it)
            session = fx.session_request_to_add(graph, fixture)
            asking = rewrite.with_fixture_request(fn, session) if session else None
            if session is None or asking is None:
                return fn, (
                    f"; it calls {listed} without a session, which step 4.4 makes their "
                    "first parameter: pass one by hand"
                )
            requested = asking
        stmts, rewriter = rewrite.rewrite_names(
            fx.statements(fn), {}, factories, session
        )
        if rewriter.conflicts or rewriter.factory_values:
            return fn, f"; pass the session to its calls of {listed} by hand"
        new = requested.with_changes(body=_with_statements(fn.body, stmts))
        if new.deep_equals(fn):
            return fn, ""
        if requested is not fn:
            return new, f"; it requests {session!r} now, and its calls of {listed} pass it first"
        return new, f"; its calls of {listed} pass {session!r} first now"


# ------------------------------------------------------------------------------- the phase

PHASE = PhaseSpec(
    4,
    "Refactor Test Infrastructure (`conftest.py`)",
    "Update test fixtures to align with the new session management and manager "
    "instantiation patterns.",
    (
        StepSpec("4.1", "Remove `db_session` Fixture", (RemoveSessionFixture,)),
        StepSpec("4.2", "Remove Individual Manager Fixtures", (RemoveManagerFixtures,)),
        StepSpec(
            "4.3", "Update `database_manager` Fixture", (UpdateDatabaseManagerFixture,)
        ),
        StepSpec(
            "4.4",
            "Refactor Factory Fixtures (`create_test_*`)",
            (RefactorFactoryFixtures,),
        ),
        StepSpec(
            "4.5",
            "Refactor/Remove Object Fixtures (`test_game`, etc.)",
            (RemoveObjectFixtures,),
            note=(
                "Option 1 (preferred by docs/plan.md): the object fixtures are deleted and phase 5 "
                "rebuilds them inside each test from the recipe recorded before the deletion. "
                "A fixture whose recipe cannot be inlined (it yields, returns early, uses "
                "'request') is reported and kept, and so is one that a fixture or test "
                "left as it is still requests."
            ),
        ),
    ),
    files=files,
    analyze=analyze,
    verification=(
        "Run `uv run pytest -v --log-cli-level=DEBUG`. Expect a very large number of failures "
        "due to removed fixtures and changed signatures. Check that `pytest --fixtures` shows "
        "the updated list (no `db_session`, no manager fixtures). Ensure "
        "`sologm/tests/conftest.py` itself loads without syntax errors."
    ),
)
