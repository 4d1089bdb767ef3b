"""Who can make Python run a module: the imports and the names that point at it.

A module runs only when something imports it: an ``import`` statement, a string handed to
``importlib.import_module``/``__import__``/``pytest_plugins``, a package's ``__all__`` pulled
in by a star import, an entry point in the project's metadata, or pytest itself (test
modules, conftests, doctests). :func:`referrers` lists what in the target could, so a module
nobody refers to is proven not to run.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import PurePosixPath

import libcst as cst
import libcst.matchers as m
from libcst.helpers import (
    get_absolute_module_from_package_for_import,
    get_full_name_for_node,
)

from .fixtures import is_test_module
from .managers import import_map, iter_statements, package_of
from .project import InputError, Project, location
from .syntax import findall

#: project files whose text can name a module to run (entry points, pytest's options)
METADATA_FILES = ("pyproject.toml", "setup.cfg", "setup.py", "pytest.ini", "tox.ini")


@dataclass(frozen=True)
class Referrer:
    """A place that can make ``module`` run (``line`` is None for a whole file)."""

    path: str
    line: int | None
    why: str

    def __str__(self) -> str:
        return f"{location(self.path, self.line)}: {self.why}"


#: calls that find modules or files by listing a directory or the installed distributions
ENUMERATING = (
    "iter_modules",
    "walk_packages",
    "listdir",
    "scandir",
    "iterdir",
    "glob",
    "walk",
    "entry_points",
)


def _strings(tree: cst.Module) -> list[str]:
    """The values of the string literals that are values (docstrings and other string
    statements are never read)."""
    statements = {
        id(e.value)
        for e in findall(
            tree, m.Expr(value=m.SimpleString() | m.ConcatenatedString())
        )
    }
    values = []
    for node in findall(tree, m.SimpleString() | m.ConcatenatedString()):
        if id(node) in statements:
            continue
        value = node.evaluated_value  # type: ignore[union-attr]
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str):
            values.append(value)
    return values


def _calls(tree: cst.Module) -> list[tuple[str, cst.Call]]:
    out = []
    for call in findall(tree, m.Call()):
        assert isinstance(call, cst.Call)
        out.append(((get_full_name_for_node(call.func) or "").rsplit(".", 1)[-1], call))
    return out


def _computed_import(calls: list[tuple[str, cst.Call]]) -> bool:
    """Whether the module imports something by a name computed at run time."""
    for name, call in calls:
        if name not in ("import_module", "__import__"):
            continue
        first = call.args[0].value if call.args else None
        if not isinstance(first, (cst.SimpleString, cst.ConcatenatedString)):
            return True
    return False


def referrers(project: Project, rel: str) -> list[Referrer]:
    """What could make the module ``rel`` run; empty when nothing can.

    Conservative: a file that does not parse counts; so does a string literal equal to the
    module's name or holding its dotted name. An import by a computed name counts when the
    target could compute this module's name: a string literal holds the name as a word, or
    the target lists directories or installed distributions (a name from outside, such as an
    environment variable, was set before the module existed).
    """
    found: list[Referrer] = []
    name = PurePosixPath(rel).name
    stem = name[: -len(".py")]
    dotted = project.module_name(rel)
    if name in ("__init__.py", "conftest.py", "__main__.py") or is_test_module(
        project, rel
    ):
        found.append(Referrer(rel, None, "pytest or Python runs it by its file name"))
    for meta in METADATA_FILES:
        if project.exists(meta):
            text = project.read_text(meta)
            if dotted in text or "doctest" in text:
                found.append(Referrer(meta, None, f"names {dotted} or runs doctests"))
    word = re.compile(rf"\b{re.escape(stem)}\b")
    needles = [n.encode() for n in (stem, "import_module", "__import__", *ENUMERATING)]
    computed: list[str] = []
    named_as_word = enumerates = False
    for other in project.python_files():
        if other == rel:
            continue
        data = project.read_bytes(other)
        if not any(n in data for n in needles):
            continue
        try:
            tree = project.parse(other)
        except InputError as exc:
            found.append(Referrer(other, exc.line, "does not parse"))
            continue
        own = project.module_name(other)
        imported = set(import_map(tree, own, other).values())
        for node in iter_statements(tree.body):
            if isinstance(node, cst.Import):
                imported.update(
                    get_full_name_for_node(a.name) or "" for a in node.names
                )
            elif isinstance(node, cst.ImportFrom) and isinstance(
                node.names, cst.ImportStar
            ):
                source = get_absolute_module_from_package_for_import(
                    package_of(own, other) or None, node
                )
                imported.add(source or "")
        strings = _strings(tree)
        calls = _calls(tree)
        if any(v == dotted or v.startswith(dotted + ".") for v in imported):
            found.append(Referrer(other, None, f"imports {dotted}"))
        elif any(s == stem or dotted in s for s in strings):
            found.append(Referrer(other, None, f"names {stem!r} in a string"))
        if _computed_import(calls):
            computed.append(other)
        named_as_word = named_as_word or any(word.search(s) for s in strings)
        enumerates = enumerates or any(n in ENUMERATING for n, _ in calls)
    if computed and (named_as_word or enumerates):
        found += [
            Referrer(other, None, "imports a module by a computed name")
            for other in computed
        ]
    return found


def own_names(project: Project) -> set[str]:
    """Every name a module or package of the target could be imported by at the top level
    (each file's and each directory's name, wherever it is: test directories are often on
    ``sys.path`` themselves)."""
    names: set[str] = set()
    for rel in project.python_files():
        parts = PurePosixPath(rel).parts
        names.update(parts[:-1])
        names.add(parts[-1][: -len(".py")])
    return names


def third_party_modules(project: Project) -> list[str]:
    """The top-level modules the target imports that are neither its own nor the standard
    library's (what a preloaded interpreter may import before any of the target's code);
    computed once per run (``project.memo``, shared with the run's other projects)."""
    memo = project.memo.get("third_party_modules")
    if isinstance(memo, list):
        return memo
    own = own_names(project) | {"__future__", "__main__"}
    stdlib = set(getattr(sys, "stdlib_module_names", ()))
    found: set[str] = set()
    for rel in project.python_files():
        try:
            tree = project.parse(rel)
        except InputError:
            continue
        for node in iter_statements(tree.body):
            if isinstance(node, cst.Import):
                dotted = [get_full_name_for_node(a.name) or "" for a in node.names]
            elif isinstance(node, cst.ImportFrom) and not node.relative and node.module:
                dotted = [get_full_name_for_node(node.module) or ""]
            else:
                continue
            found.update(d.split(".")[0] for d in dotted)
    result = sorted(n for n in found if n and n not in own and n not in stdlib)
    project.memo["third_party_modules"] = result
    return result
