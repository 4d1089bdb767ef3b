"""Small questions about libcst trees, answered with libcst's public API.

Every analysis and codemod asks these the same way: where a node is (``PositionProvider``),
what it prints as (``Module.code_for_node``), which names it mentions (a ``CSTVisitor``).
Nothing here changes a tree or anything of libcst.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

_EMPTY_MODULE = cst.Module(body=[])


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


class _Names(cst.CSTVisitor):
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


def mentions(node: cst.CSTNode, names: Iterable[str]) -> bool:
    """Whether a ``Name`` with one of ``names`` appears anywhere in ``node``."""
    wanted = set(names)
    return any(n.value in wanted for n in names_below(node))


def identifiers(node: cst.CSTNode) -> set[str]:
    """The names ``node`` uses as identifiers: ``Name`` nodes outside imports and other than
    attribute names (``x.name`` uses ``x``, not ``name``)."""
    visitor = _Names(True, True, False)
    node.visit(visitor)
    return {n.value for n in visitor.found}


def names_used(node: cst.CSTNode, wanted: Iterable[str]) -> set[str]:
    """Which of ``wanted`` ``node`` uses as identifiers (see :func:`identifiers`)."""
    return identifiers(node) & set(wanted)
