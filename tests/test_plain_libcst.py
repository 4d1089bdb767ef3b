"""The tool leaves libcst as it found it, and its modules form layers without a cycle.

The codemods run in users' processes beside their own libcst code: importing every module of
the tool and running every phase must not replace anything of libcst, and libcst's own codemods
must still work afterwards.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import shutil
import sys
import types
from pathlib import Path

import libcst
import pytest

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "target_project"
PACKAGES = ("refactor_tool", "codemods")


def _libcst_modules() -> list[types.ModuleType]:
    importlib.import_module("libcst.codemod.commands.unnecessary_format_string")
    importlib.import_module("libcst.metadata")
    importlib.import_module("libcst.matchers")
    return [m for name, m in sorted(sys.modules.items()) if name.split(".")[0] == "libcst" and m]


def _snapshot() -> dict[tuple[str, str], object]:
    """Every attribute of every libcst module and of every class defined in one, by identity."""
    seen: dict[tuple[str, str], object] = {}
    for module in _libcst_modules():
        for name, value in list(vars(module).items()):
            seen[(module.__name__, name)] = value
            if isinstance(value, type) and value.__module__.split(".")[0] == "libcst":
                for attr, member in list(vars(value).items()):
                    seen[(f"{value.__module__}.{value.__qualname__}", attr)] = member
    return seen


def _tool_modules() -> list[str]:
    names = []
    for package in PACKAGES:
        pkg = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
            names.append(info.name)
    return names


def _format_string_codemod_works() -> bool:
    from libcst.codemod import CodemodContext
    from libcst.codemod.commands.unnecessary_format_string import (
        UnnecessaryFormatString,
    )

    tree = libcst.parse_module('x = f"hi"\n')
    out = UnnecessaryFormatString(CodemodContext()).transform_module(tree)
    return out.code == 'x = "hi"\n'


@pytest.mark.skipif(not (TARGET / "pyproject.toml").is_file(), reason="no bundled target")
def test_importing_and_running_the_tool_replaces_nothing_of_libcst(tmp_path: Path) -> None:
    assert _format_string_codemod_works()
    before = _snapshot()

    for name in _tool_modules():
        importlib.import_module(name)
    from refactor_tool.engine import run_phase
    from refactor_tool.model.project import Project
    from refactor_tool.phases import PHASES

    root = tmp_path / "target"
    shutil.copytree(TARGET, root, ignore=shutil.ignore_patterns("__pycache__", "*.db"))
    project = Project(root)
    changed = 0
    for number in sorted(PHASES):
        result = run_phase(project, PHASES[number])
        changed += len(result.changes)
        project.apply(result.changes)
    assert changed > 10  # the phases really ran

    after = _snapshot()
    replaced = sorted(
        f"{owner}.{attr}" for key, value in before.items() if after.get(key, value) is not value
        for owner, attr in [key]
    )
    # libcst keeps caches of its own on its classes (names starting with "_"); nothing else
    # may appear
    added = sorted(f"{owner}.{attr}" for owner, attr in after.keys() - before.keys())
    assert replaced == []
    assert [a for a in added if not a.rpartition(".")[2].startswith("_")] == []
    assert _format_string_codemod_works()


def _imports_of(path: Path, module: str) -> set[str]:
    """The tool's own modules ``module`` imports (absolute and relative), at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    files: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            files[".".join(parts)] = path
    return {
        name: {other for other in _imports_of(path, name) if other in files and other != name}
        for name, path in files.items()
    }


def test_the_module_import_graph_has_no_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_layers_import_only_downwards() -> None:
    """model -> codemods -> the runner (engine, gates, check, cli): never upwards."""

    def layer(module: str) -> int:
        if module.startswith("refactor_tool.model"):
            return 0
        if module.startswith("codemods"):
            return 1
        return 2

    upward = [
        f"{name} imports {other}"
        for name, imports in _graph().items()
        for other in imports
        if layer(other) > layer(name) and other not in ("refactor_tool", "codemods")
    ]
    assert upward == []


def test_no_private_libcst_module_is_imported() -> None:
    private = []
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            for name in _imports_of(path, package):
                if name.startswith("libcst.") and any(p.startswith("_") for p in name.split(".")[1:]):
                    private.append(f"{path.relative_to(REPO)}: {name}")
    assert private == []


def _subclasses(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_subclasses(sub))]


def test_every_walk_of_the_tool_needs_no_attribute_hooks() -> None:
    """The tool's visitors and transformers derive from ``syntax.Visitor`` and
    ``syntax.Transformer``, which skip libcst's look-up of ``visit_<Node>_<attribute>`` and
    ``leave_<Node>_<attribute>`` methods: no subclass may define one."""
    import re

    from refactor_tool.model.syntax import Transformer, Visitor

    for name in _tool_modules():
        importlib.import_module(name)
    hook = re.compile(r"^(visit|leave)_[A-Z][A-Za-z]*_[a-z_]+$")
    found = [
        f"{cls.__module__}.{cls.__qualname__}.{attr}"
        for base in (Visitor, Transformer)
        for cls in _subclasses(base)
        for attr in vars(cls)
        if hook.match(attr)
    ]
    assert found == []
    plain = []
    for name in _tool_modules():
        source = Path(importlib.import_module(name).__file__ or "").read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef) and any(
                ast.unparse(b) in ("cst.CSTVisitor", "cst.CSTTransformer", "CSTVisitor", "CSTTransformer")
                for b in node.bases
            ) and not name.endswith(".syntax"):
                plain.append(f"{name}.{node.name}")
    assert plain == []
