"""The manager class hierarchy of a target, found by analysis (phases 2 and 3).

Nothing here knows the target's concrete manager names. The analysis starts from the base
class that the configuration names (``base_manager_class`` in ``base_manager_module``), then
finds every subclass, transitively, in the target's ``.py`` files: a file is parsed only if
its raw text contains the name of a class already known to be a manager (the cheap
prefilter), and a class counts when one of its bases *resolves* to a known manager through
the file's imports (aliases, ``import x as y``, dotted bases, re-exports from a package
``__init__``, subscripted generics such as ``BaseManager[Game, Game]``). A class of the
same name imported from somewhere else is not a manager.

For each manager it records the ``__init__`` signature (inherited from the nearest manager
ancestor when the class has none) and which parameters are other managers: a parameter
whose annotation names a manager class, or, without such an annotation, whose name is
``<short>_manager`` of a known manager (``GameManager`` -> ``game``).

The module also holds the small libcst helpers that the phase codemods share.
"""

from __future__ import annotations

import ast
import functools
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import libcst as cst
import libcst.matchers as m
from libcst.helpers import (
    get_absolute_module_from_package,
    get_absolute_module_from_package_for_import,
    get_full_name_for_node,
)

from codemods import fastcst
from codemods.base import transform  # also installs the dispatch FastDispatch copies
from codemods.fastcst import findall, matches, walk
from refactor_tool.config import Config
from refactor_tool.project import InputError, Project
from refactor_tool.statements import python_module

# ------------------------------------------------------------------------------- helpers


_DECORATOR_ATTRS = (
    "_call_if_inside_matcher",
    "_call_if_not_inside_matcher",
    "_visit_matcher",
    "_leave_matcher",
)


class FastDispatch:
    """Mixin for codemods that use matchers (``m.matches``/``m.findall``) but no matcher
    *decorators*: plain ``CSTTransformer`` dispatch instead of libcst's decorator-aware one.

    libcst's ``MatcherDecoratableTransformer`` evaluates its decorator bookkeeping on every
    node and walks ``dir()`` of the whole class at every construction (one construction per
    file and codemod); measured here, a codemod that does nothing took ~0.3 s per 250-line
    file that way against ~0.03 s with plain dispatch. Subclasses that try to use a matcher
    decorator fail at import time instead of silently not being called.
    """

    on_visit = cst.CSTTransformer.on_visit
    on_leave = cst.CSTTransformer.on_leave
    on_visit_attribute = cst.CSTTransformer.on_visit_attribute
    on_leave_attribute = cst.CSTTransformer.on_leave_attribute

    def __dir__(self) -> list[str]:
        # what the decorator gathering at construction walks: nothing to find here
        return []

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)  # type: ignore[call-arg]
        for name, value in vars(cls).items():
            if any(hasattr(value, attr) for attr in _DECORATOR_ATTRS):
                raise TypeError(
                    f"{cls.__name__}.{name}: matcher decorators are not dispatched by FastDispatch"
                )


class _Names(cst.CSTVisitor):
    """Identifiers referenced in a tree (imports and attribute names excluded)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: set[str] = set()

    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        walk(node.value, self)
        return False

    def visit_Name(self, node: cst.Name) -> None:
        self.found.add(node.value)


def names_in(node: cst.CSTNode) -> set[str]:
    visitor = _Names()
    walk(node, visitor)
    return visitor.found


class _StringMentions(cst.CSTVisitor):
    """Names mentioned in string annotations or ``__all__`` (uses a Name walk misses)."""

    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.names = names
        self.found: set[str] = set()
        self.depth = 0

    def visit_Annotation(self, node: cst.Annotation) -> None:
        self.depth += 1

    def leave_Annotation(self, original_node: cst.Annotation) -> None:
        self.depth -= 1

    def visit_Assign(self, node: cst.Assign) -> None:
        if any(matches(t.target, m.Name("__all__")) for t in node.targets):
            self.depth += 1

    def leave_Assign(self, original_node: cst.Assign) -> None:
        if any(matches(t.target, m.Name("__all__")) for t in original_node.targets):
            self.depth -= 1

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if self.depth:
            words = set(re.findall(r"\w+", node.value))
            self.found |= self.names & words


class _DropAliases(cst.CSTTransformer):
    """Remove module-level ``from x import name`` aliases whose local name is in ``names``."""

    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.names = names

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.ImportFrom | cst.RemovalSentinel:
        return without_aliases(
            updated_node,
            lambda a: (a.evaluated_alias or a.evaluated_name) in self.names,
        )

    def leave_SimpleStatementLine(
        self,
        original_node: cst.SimpleStatementLine,
        updated_node: cst.SimpleStatementLine,
    ) -> cst.SimpleStatementLine | cst.RemovalSentinel:
        return updated_node if updated_node.body else cst.RemoveFromParent()


def without_aliases(
    node: cst.ImportFrom, drop: Callable[[cst.ImportAlias], bool]
) -> cst.ImportFrom | cst.RemovalSentinel:
    """``node`` without the aliases ``drop`` selects (commas and parentheses kept valid)."""
    if isinstance(node.names, cst.ImportStar):
        return node
    names = [a for a in node.names if not drop(a)]
    if len(names) == len(node.names):
        return node
    if not names:
        return cst.RemoveFromParent()
    last_old = node.names[-1]
    if names[-1] is not last_old:
        names[-1] = names[-1].with_changes(comma=last_old.comma)
    return node.with_changes(names=names)


def drop_unused_imports(
    codemod: cst.codemod.Codemod, updated: cst.Module, rel: str, names: Iterable[str]
) -> cst.Module:
    """``updated`` without the imports of those ``names`` that nothing uses any more.

    A name still referenced as an identifier keeps its import. A name whose only remaining
    mentions are in string annotations or ``__all__`` is left to libcst's RemoveImportsVisitor
    (scheduled, it decides with a scope analysis of the module); the others, no longer
    mentioned anywhere, lose their module-level import here directly, which spares that
    analysis, the costliest thing a codemod of this tool would otherwise do per file.
    """
    from libcst.codemod.visitors import RemoveImportsVisitor

    wanted = set(names)
    if not wanted:
        return updated
    imports = import_map(updated, codemod.context.full_module_name or "", rel)
    imported = {n for n in wanted if "." in imports.get(n, "")}  # only these can be dropped
    if not imported:
        return updated
    unused = imported - fastcst.names_used(updated, imported)
    if not unused:
        return updated
    strings = _StringMentions(unused)
    walk(updated, strings)
    for name in sorted(strings.found):
        module, _, obj = imports[name].rpartition(".")
        RemoveImportsVisitor.remove_unused_import(
            codemod.context, module, obj, asname=name if name != obj else None
        )
    direct = unused - strings.found
    return transform(updated, _DropAliases(direct)) if direct else updated


def iter_statements(body: Iterable[cst.CSTNode]) -> Iterator[cst.CSTNode]:
    """Every statement at any depth (compound statements' bodies included), plus the
    small statements of each simple line: a cheap walk for imports and class definitions.
    (Exact class checks: libcst's node classes are ABCs, and ``isinstance`` of a node that
    is not of the class goes through the ABC machinery each time.)"""
    stack = list(reversed(list(body)))
    while stack:
        node = stack.pop()
        yield node
        if type(node) is cst.SimpleStatementLine:
            yield from node.body  # type: ignore[attr-defined]
            continue
        children: list[cst.CSTNode] = []
        for attr in ("body", "orelse", "finalbody"):
            part = getattr(node, attr, None)
            kind = type(part)
            if kind is cst.Else or kind is cst.Finally:
                part = part.body  # type: ignore[union-attr]
                kind = type(part)
            if kind is cst.If:
                children.append(part)  # type: ignore[arg-type]
            elif kind is cst.IndentedBlock or kind is cst.SimpleStatementSuite:
                children.extend(part.body)  # type: ignore[union-attr]
        for handler in getattr(node, "handlers", ()) or ():
            children.extend(handler.body.body)
        stack.extend(reversed(children))


def code(node: cst.CSTNode) -> str:
    """Source text of a node (for annotations and messages)."""
    return fastcst.code(node)


def line_of(module: cst.Module, node: cst.CSTNode) -> int | None:
    """1-based line of ``node`` in ``module`` (computed only when asked: analysis errors)."""
    return fastcst.line_of(module, node)


def package_of(module_name: str, rel: str) -> str:
    """The package a module's relative imports are resolved against."""
    if PurePosixPath(rel).name == "__init__.py":
        return module_name
    return module_name.rpartition(".")[0]


def is_test_path(rel: str) -> bool:
    path = PurePosixPath(rel)
    return (
        any(part in ("tests", "test", "testing") for part in path.parts[:-1])
        or path.name.startswith("test_")
        or path.name.endswith("_test.py")
        or path.name == "conftest.py"
    )


def relpath_for(context_filename: str | None, root: Path) -> str | None:
    """The target-relative POSIX path of the file a codemod is transforming (symlinks
    resolved; each file's answer is kept until :func:`forget_paths`, which every phase
    calls first: every codemod of a phase asks about the same files)."""
    if not context_filename:
        return None
    key = (context_filename, root)
    if key in _RELPATHS:
        return _RELPATHS[key]
    # Path(context_filename).resolve().relative_to(root).as_posix(), in strings
    real, top = os.path.realpath(context_filename), str(root)
    if real == top:
        rel: str | None = "."
    elif real.startswith(top.rstrip(os.sep) + os.sep):
        rel = real[len(top.rstrip(os.sep)) + 1 :].replace(os.sep, "/")
    else:
        rel = None
    if len(_RELPATHS) > 65536:
        _RELPATHS.clear()
    _RELPATHS[key] = rel
    return rel


_RELPATHS: dict[tuple[str, Path], str | None] = {}
#: what the file system said in this phase (cleared as each phase starts, and before each
#: benchmark repetition)
forget_paths = fastcst.content_cache(_RELPATHS.clear)


def import_map(module: cst.Module, module_name: str, rel: str) -> dict[str, str]:
    """Local name -> dotted origin, for every import in the module (any depth).

    ``from a.b import C as D`` -> ``{"D": "a.b.C"}``; ``import a.b`` -> ``{"a": "a"}``;
    ``import a.b as ab`` -> ``{"ab": "a.b"}``. Relative imports are made absolute.
    Imports inside functions and ``if TYPE_CHECKING:`` blocks count too: a name only
    used in annotations is imported there.
    """
    names = _IMPORT_MAPS.get(module, (module_name, rel))
    if names is None:
        names = _IMPORT_MAPS.put(module, _import_map(module, module_name, rel), (module_name, rel))
    return dict(names)


_IMPORT_MAPS = fastcst.TreeMemo()


def _import_map(module: cst.Module, module_name: str, rel: str) -> dict[str, str]:
    package = package_of(module_name, rel)
    names: dict[str, str] = {}
    for node in iter_statements(module.body):
        kind = type(node)  # exact classes (see iter_statements)
        if kind is not cst.Import and kind is not cst.ImportFrom:
            continue
        if kind is cst.Import:
            for alias in node.names:
                dotted = get_full_name_for_node(alias.name) or ""
                if alias.asname is not None:
                    local = get_full_name_for_node(alias.asname.name) or dotted
                    names[local] = dotted
                else:
                    top = dotted.split(".")[0]
                    names.setdefault(top, top)
        else:
            assert isinstance(node, cst.ImportFrom)
            if isinstance(node.names, cst.ImportStar):
                continue
            # None for a relative import beyond the top package
            source = get_absolute_module_from_package_for_import(package or None, node)
            if source is None:
                continue
            for alias in node.names:
                name = get_full_name_for_node(alias.name) or ""
                local = (
                    get_full_name_for_node(alias.asname.name)
                    if alias.asname is not None
                    else name
                ) or name
                names[local] = f"{source}.{name}"
    return names


def python_import_map(source: bytes, module_name: str, rel: str) -> dict[str, str] | None:
    """:func:`import_map` of ``source`` read with Python's parser (a fraction of a libcst
    parse, for a module the search only needs the imports of); None if it cannot read it.
    The statements are taken in :func:`iter_statements`' order, so a name bound twice
    ends with the same origin."""
    tree = python_module(source)
    if tree is None:
        return None
    package = package_of(module_name, rel)
    names: dict[str, str] = {}
    stack = list(reversed(tree.body))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname is not None:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names.setdefault(top, top)
        elif isinstance(node, ast.ImportFrom):
            if any(alias.name == "*" for alias in node.names):
                continue
            source_module = get_absolute_module_from_package(package or None, node.module, node.level)
            if source_module is None:
                continue
            for alias in node.names:
                names[alias.asname or alias.name] = f"{source_module}.{alias.name}"
        else:
            children: list[ast.stmt] = []
            for attr in ("body", "orelse", "finalbody"):  # libcst's order of the parts
                part = getattr(node, attr, None)
                if isinstance(part, list):
                    children.extend(part)
            for handler in getattr(node, "handlers", ()) or ():
                children.extend(handler.body)
            stack.extend(reversed(children))
    return names


def resolve_local(
    dotted: str, imports: dict[str, str], module_name: str, local_defs: Iterable[str]
) -> str | None:
    """A dotted expression as written in a module -> its absolute dotted origin."""
    first, _, rest = dotted.partition(".")
    if first in imports:
        origin = imports[first]
        return f"{origin}.{rest}" if rest else origin
    if first in set(local_defs):
        return f"{module_name}.{dotted}"
    return None


def unwrap_optional(annotation: cst.BaseExpression) -> cst.BaseExpression | None:
    """``Optional[X]`` / ``typing.Optional[X]`` / ``X | None`` / ``Union[X, None]`` -> ``X``.

    Returns None when the annotation is not an optional of one type.
    """
    if matches(
        annotation,
        m.Subscript(
            value=m.Name("Optional") | m.Attribute(attr=m.Name("Optional")),
            slice=[m.SubscriptElement(slice=m.Index())],
        ),
    ):
        return cst.ensure_type(annotation, cst.Subscript).slice[0].slice.value  # type: ignore[union-attr]
    if matches(
        annotation, m.BinaryOperation(operator=m.BitOr(), right=m.Name("None"))
    ):
        return cst.ensure_type(annotation, cst.BinaryOperation).left
    if matches(
        annotation, m.BinaryOperation(operator=m.BitOr(), left=m.Name("None"))
    ):
        return cst.ensure_type(annotation, cst.BinaryOperation).right
    if matches(
        annotation,
        m.Subscript(
            value=m.Name("Union") | m.Attribute(attr=m.Name("Union")),
            slice=[m.SubscriptElement(), m.SubscriptElement()],
        ),
    ):
        elements = cst.ensure_type(annotation, cst.Subscript).slice
        values = [e.slice.value for e in elements if isinstance(e.slice, cst.Index)]
        others = [v for v in values if not matches(v, m.Name("None"))]
        if len(values) == 2 and len(others) == 1:
            return others[0]
    return None


_ANNOTATION_PARTS = m.Name() | m.Attribute() | m.SimpleString()


def annotation_names(annotation: cst.BaseExpression) -> list[str]:
    """Dotted names an annotation mentions, including inside string annotations."""
    found: list[str] = []
    for node in findall(annotation, _ANNOTATION_PARTS):
        if isinstance(node, cst.SimpleString):
            text = node.evaluated_value
            if isinstance(text, str):
                found.extend(re.findall(r"[A-Za-z_][\w.]*", text))
        else:
            name = get_full_name_for_node(node)
            if name:
                found.append(name)
    return found


@functools.lru_cache(maxsize=1024)
def _annotation_text_names(text: str) -> tuple[str, ...]:
    """:func:`annotation_names` of an annotation's source text."""
    return tuple(annotation_names(cst.parse_expression(text)))


fastcst.content_cache(_annotation_text_names.cache_clear)


def short_name(class_name: str) -> str:
    """``GameManager`` -> ``game``; ``EventSourceManager`` -> ``event_source``."""
    stem = (
        class_name[: -len("Manager")]
        if class_name.endswith("Manager") and class_name != "Manager"
        else class_name
    )
    stem = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", stem)
    return stem.lower()


# ------------------------------------------------------------------------------- the graph


@dataclass
class Param:
    name: str
    annotation: str | None  # source text
    has_default: bool
    kind: str  # "posonly", "positional", "kwonly", "star", "starstar"
    dependency: str | None = None  # qualified name of the manager it takes


@dataclass
class ManagerClass:
    name: str
    rel: str
    module: str
    qualified: str
    bases: list[str]  # qualified names of the manager bases
    params: list[Param] | None  # __init__ parameters after self; None: no own __init__
    top_level: bool
    abstract: bool
    is_base: bool = False
    #: the class definition in the (cached) parsed module, for error lines
    node: cst.ClassDef | None = field(default=None, repr=False, compare=False)
    tree: cst.Module | None = field(default=None, repr=False, compare=False)

    def line(self, of_init: bool = False) -> int | None:
        """Line of the class (or of its ``__init__``); computed only for error messages."""
        if self.node is None or self.tree is None:
            return None
        init = own_init(self.node) if of_init else None
        return line_of(self.tree, init if init is not None else self.node)

    @property
    def short(self) -> str:
        return short_name(self.name)

    @property
    def is_test(self) -> bool:
        return is_test_path(self.rel)


@dataclass
class ManagerGraph:
    config: Config
    root: Path
    base: ManagerClass
    classes: dict[str, ManagerClass] = field(default_factory=dict)  # qualified -> class
    by_rel: dict[str, dict[str, ManagerClass]] = field(
        default_factory=dict
    )  # rel -> name -> class
    scanned: list[str] = field(default_factory=list)  # files parsed by the analysis

    def in_file(self, rel: str | None) -> dict[str, ManagerClass]:
        return self.by_rel.get(rel or "", {})

    def init_params(self, cls: ManagerClass) -> list[Param]:
        """The ``__init__`` parameters that apply to ``cls`` (own or inherited)."""
        seen: set[str] = set()
        todo = [cls]
        while todo:
            current = todo.pop(0)
            if current.qualified in seen:
                continue
            seen.add(current.qualified)
            if current.params is not None:
                return current.params
            todo.extend(self.classes[b] for b in current.bases if b in self.classes)
        return []

    def subclasses(self) -> list[ManagerClass]:
        return [c for c in self.classes.values() if not c.is_base]

    def factory_managers(self) -> list[ManagerClass]:
        """Concrete application managers: what ``create_all_managers`` builds."""
        package = self.config.package_dotted
        return [
            c
            for c in self.classes.values()
            if not c.is_base
            and c.top_level
            and not c.abstract
            and not c.is_test
            and not c.name.startswith("_")
            and (c.module == package or c.module.startswith(package + "."))
        ]

    def class_names(self) -> list[str]:
        return sorted({c.name for c in self.classes.values()})


class _Resolver:
    """Resolves dotted names in a module to their origin, following package re-exports."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._imports: dict[str, dict[str, str]] = {}
        self._rel_for_module: dict[str, str | None] = {}

    def rel_for_module(self, module_name: str) -> str | None:
        if module_name not in self._rel_for_module:
            base = module_name.replace(".", "/")
            rel = None
            for candidate in (f"{base}.py", f"{base}/__init__.py"):
                if self.project.exists(candidate):
                    rel = candidate
                    break
            self._rel_for_module[module_name] = rel
        return self._rel_for_module[module_name]

    def imports(self, rel: str) -> dict[str, str]:
        if rel not in self._imports:
            module_name = self.project.module_name(rel)
            found = None
            if not self.project.is_parsed(rel):  # read by Python's parser, not parsed for this
                found = python_import_map(self.project.read_bytes(rel), module_name, rel)
            if found is None:
                found = import_map(self.project.parse(rel), module_name, rel)
            self._imports[rel] = found
        return self._imports[rel]

    def canonical(self, qualified: str, known: set[str], depth: int = 0) -> str:
        """Follow ``from pkg import X`` re-exports until a known (or final) name."""
        if qualified in known or depth > 4:
            return qualified
        module_name, _, name = qualified.rpartition(".")
        rel = self.rel_for_module(module_name) if module_name else None
        if rel is None or b"import" not in self.project.read_bytes(rel):
            return qualified
        origin = self.imports(rel).get(name)
        if origin is None or origin == qualified:
            return qualified
        return self.canonical(origin, known, depth + 1)


def _is_abstract(node: cst.ClassDef) -> bool:
    if any(
        matches(b.value, m.Name("ABC") | m.Attribute(attr=m.Name("ABC")))
        for b in node.bases
    ):
        return True
    abstract = m.Decorator(
        decorator=m.Name("abstractmethod") | m.Attribute(attr=m.Name("abstractmethod"))
    )
    return any(
        matches(d, abstract)
        for stmt in node.body.body
        if isinstance(stmt, cst.FunctionDef)
        for d in stmt.decorators
    )


def _params(fn: cst.FunctionDef) -> list[Param]:
    p = fn.params
    out: list[Param] = []

    def add(param: cst.Param, kind: str) -> None:
        ann = (
            code(param.annotation.annotation) if param.annotation is not None else None
        )
        out.append(Param(param.name.value, ann, param.default is not None, kind))

    for param in p.posonly_params:
        add(param, "posonly")
    for param in p.params:
        add(param, "positional")
    if isinstance(p.star_arg, cst.Param):
        add(p.star_arg, "star")
    for param in p.kwonly_params:
        add(param, "kwonly")
    if isinstance(p.star_kwarg, cst.Param):
        add(p.star_kwarg, "starstar")
    # drop ``self``
    if out and out[0].kind in ("posonly", "positional"):
        out.pop(0)
    return out


def own_init(node: cst.ClassDef) -> cst.FunctionDef | None:
    for stmt in node.body.body:
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value == "__init__":
            return stmt
    return None


def _class_defs(module: cst.Module) -> list[tuple[cst.ClassDef, bool]]:
    """Every class in the module, with whether it is at module level (kept per tree: every
    phase that needs the managers searches the same files again)."""
    found = _CLASS_DEFS.get(module)
    if found is None:
        top = {id(s) for s in module.body if isinstance(s, cst.ClassDef)}
        found = _CLASS_DEFS.put(
            module,
            [(n, id(n) in top) for n in iter_statements(module.body) if type(n) is cst.ClassDef],
        )
    return found


_CLASS_DEFS = fastcst.TreeMemo()


def _may_subclass(project: Project, rels: list[str], names: set[str]) -> list[str]:
    """The text prefilter of the subclass search: files that can define a subclass of one
    of ``names`` (``class X(... Name ...)``, also dotted or subscripted) or import one of
    them under another name (``Name as Alias``). Only these are parsed."""
    key = frozenset(names)
    test = _SUBCLASS_TESTS.get(key)
    if test is None:
        if len(_SUBCLASS_TESTS) > 256:
            _SUBCLASS_TESTS.clear()
        test = _SUBCLASS_TESTS[key] = _SubclassText(names)
    return [rel for rel in project.grep(rels, *sorted(names)) if test(project.read_bytes(rel))]


class _SubclassText:
    """``class X(... Name ...)`` or ``Name as ...`` somewhere in a file's bytes, for one set
    of names; each content is searched once (the answers are kept by content)."""

    def __init__(self, names: set[str]) -> None:
        alternatives = "|".join(re.escape(n) for n in sorted(names))
        # a pattern that starts with a literal is scanned for that literal first; one that
        # starts with an alternation is tried at every position, so ``Name as`` is looked
        # for name by name, and the word boundary before the name checked by hand
        self.subclass = re.compile(rf"class\s+\w+\s*\([^)]*\b(?:{alternatives})\b".encode())
        self.aliased = [
            (n.encode(), re.compile(re.escape(n.encode()) + rb"\s+as\s")) for n in sorted(names)
        ]
        self.answers: dict[bytes, bool] = {}

    def __call__(self, data: bytes) -> bool:
        answer = self.answers.get(data)
        if answer is None:
            answer = self.answers[data] = self._search(data)
        return answer

    def _search(self, data: bytes) -> bool:
        if self.subclass.search(data):
            return True
        for name, pattern in self.aliased:
            if name in data:
                for found in pattern.finditer(data):
                    before = data[found.start() - 1 : found.start()]
                    if not (before.isalnum() or before == b"_"):
                        return True
        return False


_SUBCLASS_TESTS: dict[frozenset[str], _SubclassText] = {}
fastcst.content_cache(_SUBCLASS_TESTS.clear)


def analyze_managers(project: Project) -> ManagerGraph:
    """Find the base manager and every manager subclass in the target.

    The graph is a function of the configuration, the contents (and existence) of the
    files the search read, and which files its text prefilter let through. All of them are
    recorded with it; a later phase of the same run gets the same graph (the same object,
    which nothing changes after this) when every one of them is still the same, and a new
    search otherwise."""
    memo = project.memo.get("managers")
    if isinstance(memo, _ManagerMemo) and memo.holds_for(project):
        return memo.graph
    reads = _RecordedReads(project)
    with fastcst.plain_printing():  # the parameters' annotations and defaults are printed
        graph = _analyze_managers(reads)  # type: ignore[arg-type]
    names = {cls.name for cls in graph.classes.values()}
    project.memo["managers"] = _ManagerMemo(graph, reads, names)
    return graph


class _RecordedReads:
    """The project as the manager search sees it, recording what it read."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.config = project.config
        self.root = project.root
        self.contents: dict[str, bytes] = {}
        self.existence: dict[str, bool] = {}

    def exists(self, rel: str) -> bool:
        found = self.existence[rel] = self.project.exists(rel)
        return found

    def read_bytes(self, rel: str) -> bytes:
        data = self.contents[rel] = self.project.read_bytes(rel)
        return data

    def parse(self, rel: str) -> cst.Module:
        self.read_bytes(rel)
        return self.project.parse(rel)

    def is_parsed(self, rel: str) -> bool:
        self.read_bytes(rel)
        return self.project.is_parsed(rel)

    def module_name(self, rel: str) -> str:
        return self.project.module_name(rel)

    def python_files(self) -> list[str]:
        return self.project.python_files()


@dataclass
class _ManagerMemo:
    graph: ManagerGraph
    reads: _RecordedReads
    names: set[str]

    def holds_for(self, project: Project) -> bool:
        if project.config != self.reads.config:
            return False
        for rel, existed in self.reads.existence.items():
            if project.exists(rel) != existed:
                return False
        for rel, data in self.reads.contents.items():
            if not project.exists(rel):
                return False
            now = project.read_bytes(rel)
            if now is not data and now != data:
                return False
        # the prefilter, over the files there are now, lets through the same ones: every
        # file that names one of the classes found (the search's rounds add up to exactly
        # that set); a new file that could define a subclass is one more
        files = project.python_files()
        return set(_may_subclass(project, files, self.names)) == set(self.graph.scanned)


def _analyze_managers(project: Project) -> ManagerGraph:
    config = project.config
    base_rel = config.base_manager_module
    if not project.exists(base_rel):
        raise InputError(
            base_rel,
            None,
            "base manager module not found; set base_manager_module in [tool.refactor-tool]",
        )
    resolver = _Resolver(project)
    base_module_name = project.module_name(base_rel)
    base_tree = project.parse(base_rel)
    base_node = next(
        (
            n
            for n in base_tree.body
            if isinstance(n, cst.ClassDef) and n.name.value == config.base_manager_class
        ),
        None,
    )
    if base_node is None:
        raise InputError(
            base_rel,
            None,
            f"no class {config.base_manager_class} here; set base_manager_class in [tool.refactor-tool]",
        )
    base_init = own_init(base_node)
    base = ManagerClass(
        name=config.base_manager_class,
        rel=base_rel,
        module=base_module_name,
        qualified=f"{base_module_name}.{config.base_manager_class}",
        bases=[],
        params=_params(base_init) if base_init is not None else [],
        top_level=True,
        abstract=False,
        is_base=True,
        node=base_node,
        tree=base_tree,
    )
    graph = ManagerGraph(config=config, root=project.root, base=base)
    graph.classes[base.qualified] = base

    files = project.python_files()
    scanned: list[str] = []
    scanned_set: set[str] = set()
    names: set[str] = {base.name}
    searched: set[str] = set()
    defs_of: dict[str, tuple[cst.Module, list[str], list[tuple[cst.ClassDef, bool]]]] = {}
    while True:
        new_names = names - searched
        if not new_names:
            break
        searched |= new_names
        # the text prefilter reads every file: not an input of its own (see _ManagerMemo)
        for rel in _may_subclass(
            getattr(project, "project", project), [f for f in files if f not in scanned_set], new_names
        ):
            scanned_set.add(rel)
            scanned.append(rel)
        # fixed point over the scanned files: a class may subclass one found later
        changed = True
        while changed:
            changed = False
            known = set(graph.classes)
            for rel in scanned:
                module = project.parse(rel)
                module_name = project.module_name(rel)
                imports = resolver.imports(rel)
                found = defs_of.get(rel)
                if found is None or found[0] is not module:  # each file's classes, once
                    local = [n.name.value for n in module.body if isinstance(n, cst.ClassDef)]
                    found = defs_of[rel] = (module, local, list(_class_defs(module)))
                _, local_defs, class_defs = found
                for node, top_level in class_defs:
                    qualified = f"{module_name}.{node.name.value}"
                    if qualified in graph.classes:
                        continue
                    manager_bases = []
                    for arg in node.bases:
                        dotted = get_full_name_for_node(arg.value)
                        if dotted is None:
                            continue
                        origin = resolve_local(dotted, imports, module_name, local_defs)
                        if origin is None:
                            continue
                        origin = resolver.canonical(origin, known)
                        if origin in known:
                            manager_bases.append(origin)
                    if not manager_bases:
                        continue
                    init = own_init(node)
                    cls = ManagerClass(
                        name=node.name.value,
                        rel=rel,
                        module=module_name,
                        qualified=qualified,
                        bases=manager_bases,
                        params=_params(init) if init is not None else None,
                        top_level=top_level,
                        abstract=_is_abstract(node),
                        node=node,
                        tree=module,
                    )
                    graph.classes[qualified] = cls
                    graph.by_rel.setdefault(rel, {})[cls.name] = cls
                    names.add(cls.name)
                    known.add(qualified)
                    changed = True
    graph.by_rel.setdefault(base_rel, {})[base.name] = base
    graph.scanned = scanned
    _find_dependencies(graph, project, resolver)
    return graph


def _find_dependencies(
    graph: ManagerGraph, project: Project, resolver: _Resolver
) -> None:
    known = set(graph.classes)
    by_short: dict[str, str] = {}
    for cls in graph.factory_managers():
        by_short.setdefault(f"{cls.short}_manager", cls.qualified)
    for cls in graph.classes.values():
        if not cls.params:
            continue
        imports = resolver.imports(cls.rel)
        module = project.parse(cls.rel)
        local_defs = [n.name.value for n in module.body if isinstance(n, cst.ClassDef)]
        for param in cls.params:
            if param.kind in ("star", "starstar"):
                continue
            if param.annotation is not None:
                for dotted in _annotation_text_names(param.annotation):
                    origin = resolve_local(dotted, imports, cls.module, local_defs)
                    if origin is None:
                        continue
                    origin = resolver.canonical(origin, known)
                    if origin in known and not graph.classes[origin].is_base:
                        param.dependency = origin
                        break
            if param.dependency is None and param.name in by_short:
                param.dependency = by_short[param.name]


__all__ = [
    "FastDispatch",
    "ManagerClass",
    "ManagerGraph",
    "Param",
    "analyze_managers",
    "annotation_names",
    "code",
    "drop_unused_imports",
    "import_map",
    "is_test_path",
    "iter_statements",
    "line_of",
    "names_in",
    "own_init",
    "package_of",
    "relpath_for",
    "resolve_local",
    "short_name",
    "unwrap_optional",
    "without_aliases",
]
