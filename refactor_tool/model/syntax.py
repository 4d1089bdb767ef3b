"""Small questions about libcst trees, answered with libcst's public API.

Every analysis and codemod asks these the same way: where a node is (``PositionProvider``),
what it prints as (``Module.code_for_node``), which names it mentions (a :class:`Visitor`).
Nothing here changes a tree or anything of libcst.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

_EMPTY_MODULE = cst.Module(body=[])


class Visitor(cst.CSTVisitor):
    """The base of the tool's read-only walks.

    libcst looks up ``visit_<Node>`` and ``leave_<Node>`` by name at every node, finds its
    own no-op for each kind of node a visitor does not handle and calls it, and looks up
    ``visit_<Node>_<attribute>`` methods around every child. Here each class finds its
    methods once per kind of node (:func:`_handler`) and calls only those it defines; none
    of the tool's walks has an attribute method (tests/test_plain_libcst.py checks that no
    subclass defines one), so that look-up is skipped.
    """

    def on_visit(self, node: cst.CSTNode) -> bool:
        handler = _handler(type(self), "visit_", type(node))
        return handler is None or handler(self, node) is not False

    def on_leave(self, original_node: cst.CSTNode) -> None:
        handler = _handler(type(self), "leave_", type(original_node))
        if handler is not None:
            handler(self, original_node)

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        return None

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        return None


class Transformer(cst.CSTTransformer):
    """The base of the tool's transformers, with the dispatch of :class:`Visitor`."""

    def on_visit(self, node: cst.CSTNode) -> bool:
        handler = _handler(type(self), "visit_", type(node))
        return handler is None or handler(self, node) is not False

    def on_leave(self, original_node: Any, updated_node: Any) -> Any:
        handler = _handler(type(self), "leave_", type(original_node))
        if handler is None:
            return updated_node
        return handler(self, original_node, updated_node)

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        return None

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        return None


def _handler(cls: type, prefix: str, node_type: type) -> Callable[..., Any] | None:
    """``cls``'s own method for ``prefix`` + the node type's name; None where it has only
    libcst's no-op (the function its visitor base class defines). Found once per class and
    kind of node, and kept with the class."""
    table = cls.__dict__.get("_handlers")
    if table is None:
        table = {}
        cls._handlers = table  # type: ignore[attr-defined]
    key = (prefix, node_type)
    if key not in table:
        name = prefix + node_type.__name__
        method = getattr(cls, name, None)
        base = cst.CSTTransformer if issubclass(cls, cst.CSTTransformer) else cst.CSTVisitor
        table[key] = None if method is None or method is getattr(base, name, None) else method
    return table[key]


def code(node: cst.CSTNode, module: cst.Module | None = None) -> str:
    """The source ``node`` prints as (``module`` supplies indentation and line endings)."""
    if isinstance(node, cst.Module):
        return node.code
    return (module or _EMPTY_MODULE).code_for_node(node)


class Lines:
    """The 1-based first line of any node of one module.

    Positions come from libcst's ``PositionProvider``, resolved on the first question only,
    on the module as it is (no copy: the nodes asked about are the module's own).
    """

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self._positions: Any = None

    def start(self, node: cst.CSTNode) -> int | None:
        """Where a definition starts: its first decorator, else :meth:`of`."""
        decorators = getattr(node, "decorators", None)
        return self.of(decorators[0] if decorators else node)

    def of(self, node: cst.CSTNode) -> int | None:
        """The node's own first line (``def`` of a decorated function)."""
        if self._positions is None:
            wrapper = MetadataWrapper(self.module, unsafe_skip_copy=True)
            self._positions = wrapper.resolve(PositionProvider)
        position = self._positions.get(node)
        return None if position is None else position.start.line


def line_of(module: cst.Module, node: cst.CSTNode) -> int | None:
    """The 1-based first line of ``node`` in ``module`` (for one question; use :class:`Lines`
    for several about the same module)."""
    return Lines(module).of(node)


class _Names(Visitor):
    def __init__(self, outside_imports: bool, identifiers_only: bool, strings: bool) -> None:
        self.found: list[cst.CSTNode] = []
        self.outside_imports = outside_imports or identifiers_only
        self.identifiers_only = identifiers_only
        self.strings = strings

    def visit_Import(self, node: cst.Import) -> bool:
        return not self.outside_imports

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return not self.outside_imports

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        if self.identifiers_only:  # ``x.name`` uses ``x``, not ``name``
            node.value.visit(self)
            return False
        return True

    def visit_Name(self, node: cst.Name) -> None:
        self.found.append(node)

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if self.strings:
            self.found.append(node)


def names_below(
    node: cst.CSTNode, outside_imports: bool = False, strings: bool = False
) -> list[Any]:
    """Every ``Name`` node in ``node`` (not those of import statements, with
    ``outside_imports``; every ``SimpleString`` too, with ``strings``), in source order."""
    visitor = _Names(outside_imports, False, strings)
    node.visit(visitor)
    return visitor.found


def identifiers(node: cst.CSTNode) -> set[str]:
    """The names ``node`` uses as identifiers: ``Name`` nodes outside imports and other than
    attribute names (``x.name`` uses ``x``, not ``name``)."""
    visitor = _Names(True, True, False)
    node.visit(visitor)
    return {n.value for n in visitor.found}


def names_used(node: cst.CSTNode, wanted: Iterable[str]) -> set[str]:
    """Which of ``wanted`` ``node`` uses as identifiers (see :func:`identifiers`)."""
    return identifiers(node) & set(wanted)


def line_map(before: str, after: str) -> Callable[[int], int]:
    """Takes a line number of ``after`` (``before`` rewritten) to the line of ``before`` it
    comes from: a line the rewrite kept to its old place, a changed or inserted line to the
    first line of ``before`` it replaced or stands before."""
    old, new = before.splitlines(), after.splitlines()
    blocks = difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()

    def back(line: int) -> int:
        j = line - 1
        for tag, i1, i2, j1, j2 in blocks:
            if j1 <= j < j2:
                if tag == "equal":
                    return i1 + (j - j1) + 1
                return min(i1 + (j - j1) if i2 > i1 else i1, max(i2 - 1, i1), len(old) - 1) + 1
        return max(len(old), 1)

    return back
