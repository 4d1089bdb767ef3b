"""Which fixtures and tests touch the database, decided statically.

"Touches the database" is decided on the tree the baseline is taken from (before any phase
removed a fixture), with the standard library's ``ast``: a fixture is a database fixture if it
is the session fixture or the session-context fixture, if its body uses a name imported from
SQLAlchemy or from the package's database module or a manager class (a subclass of the base
manager, found in the code), or if it requests another database fixture. A test touches the
database if it requests a database fixture (directly or through ``usefixtures``; autouse
fixtures do not count, or every test would) or its body uses such a name. A test the analysis
cannot find counts as touching the database, so a gate never blames a phase without evidence.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ..model.config import Config
from ..model.fixtures import TestNaming, is_test_module, pytest_naming
from ..model.managers import analyze_managers
from ..model.project import InputError, Project


def _decorator_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _fixture_info(
    func: ast.FunctionDef | ast.AsyncFunctionDef,
) -> tuple[str, bool] | None:
    for deco in func.decorator_list:
        if _decorator_name(deco) == "fixture":
            name, autouse = func.name, False
            if isinstance(deco, ast.Call):
                for kw in deco.keywords:
                    if kw.arg == "name" and isinstance(kw.value, ast.Constant):
                        name = str(kw.value.value)
                    if kw.arg == "autouse" and isinstance(kw.value, ast.Constant):
                        autouse = bool(kw.value.value)
            return name, autouse
    return None


def _usefixtures(decorators: Iterable[ast.expr]) -> list[str]:
    names = []
    for deco in decorators:
        if isinstance(deco, ast.Call) and _decorator_name(deco) == "usefixtures":
            names += [
                a.value
                for a in deco.args
                if isinstance(a, ast.Constant) and isinstance(a.value, str)
            ]
    return names


def _params(func: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    args = func.args
    return [
        a.arg
        for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]
        if a.arg not in ("self", "cls")
    ]


def _used_names(node: ast.AST) -> set[str]:
    names: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            names.add(sub.attr)
    return names


@dataclass
class DbMap:
    """Which fixtures and tests touch the database (see the module docstring)."""

    fixtures: set[str] = field(default_factory=set)
    tests: dict[str, bool] = field(
        default_factory=dict
    )  # "path::Class::func" -> touches

    def touches(self, node_id: str) -> bool:
        base = node_id.split("[", 1)[0]
        return self.tests.get(base, True)


def analyze_db_usage(project: Project) -> DbMap:
    config = project.config
    files = project.python_files()
    trees: dict[str, ast.Module] = {}

    def tree(rel: str) -> ast.Module | None:
        if rel not in trees:
            try:
                trees[rel] = ast.parse(project.read_bytes(rel))
            except (SyntaxError, ValueError):
                trees[rel] = None  # type: ignore[assignment]
        return trees[rel]

    # manager classes: the model's answer (subclasses of the base manager, imports resolved)
    try:
        managers = {cls.name for cls in analyze_managers(project).classes.values()}
    except InputError:
        managers = {config.base_manager_class}

    database_pkg = config.module_name(config.session_module).rsplit(".", 1)[0]
    markers_base = {
        config.session_fixture,
        config.session_context_fixture,
        config.factory_function,
        config.database_manager_class,
        config.session_context_class,
        *config.removed_session_apis,
        *managers,
    }

    test_files = [
        f for f in files if is_test_module(project, f) or PurePosixPath(f).name == "conftest.py"
    ]
    # fixtures live in test files and conftests, and in any module those pull in
    # (``pytest_plugins``, star imports): every file that mentions fixtures is read
    scanned = sorted(set(test_files) | set(project.grep(files, "fixture")))
    fixture_defs: list[
        tuple[str, bool, set[str], set[str]]
    ] = []  # name, autouse, params, names
    module_markers: dict[str, set[str]] = {}
    for rel in scanned:
        module = tree(rel)
        if module is None:
            continue
        markers = set(markers_base)
        for node in ast.walk(module):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.split(".")[0] == "sqlalchemy" or node.module.startswith(
                    database_pkg
                ):
                    markers.update((a.asname or a.name) for a in node.names)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "sqlalchemy":
                        markers.add((alias.asname or alias.name).split(".")[0])
        module_markers[rel] = markers
        for node in ast.walk(module):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                info = _fixture_info(node)
                if info:
                    body = _used_names(ast.Module(body=node.body, type_ignores=[]))
                    fixture_defs.append(
                        (info[0], info[1], set(_params(node)), body & markers)
                    )

    db_fixtures = {config.session_fixture, config.session_context_fixture}
    for name, _autouse, _params_, used in fixture_defs:
        if used:
            db_fixtures.add(name)
    grew = True
    while grew:
        grew = False
        for name, _autouse, params, _used in fixture_defs:
            if name not in db_fixtures and params & db_fixtures:
                db_fixtures.add(name)
                grew = True

    result = DbMap(fixtures=db_fixtures)
    naming = pytest_naming(project)
    for rel in test_files:
        module = trees.get(rel)
        if module is None or rel.endswith("conftest.py"):
            continue
        markers = module_markers[rel]

        _visit_tests(result, db_fixtures, markers, rel, module.body, [], [], naming)
    return result


def _visit_tests(
    result: DbMap,
    db_fixtures: set[str],
    markers: set[str],
    rel: str,
    body: list[ast.stmt],
    prefix: list[str],
    inherited: list[str],
    naming: TestNaming,
) -> None:
    for node in body:
        if isinstance(node, ast.ClassDef) and naming.is_test_class_name(node.name):
            uses = inherited + _usefixtures(node.decorator_list)
            _visit_tests(
                result, db_fixtures, markers, rel, node.body, [*prefix, node.name], uses, naming
            )
        elif isinstance(
            node, (ast.FunctionDef, ast.AsyncFunctionDef)
        ) and naming.is_test_name(node.name):
            requested = (
                set(_params(node))
                | set(inherited)
                | set(_usefixtures(node.decorator_list))
            )
            used = _used_names(ast.Module(body=node.body, type_ignores=[]))
            touches = bool(requested & db_fixtures) or bool(used & markers)
            result.tests["::".join([rel, *prefix, node.name])] = touches
