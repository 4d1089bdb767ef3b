"""Small questions about libcst trees, answered with libcst's public API.

Every analysis and codemod asks these the same way: where a node is (``PositionProvider``),
what it prints as (``Module.code_for_node``), which names it mentions (a :class:`Visitor`).
Nothing here changes a tree or anything of libcst.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import libcst as cst
import libcst.matchers as m
from libcst.metadata import MetadataWrapper, PositionProvider

_EMPTY_MODULE = cst.Module(body=[])


class Visitor(cst.CSTVisitor):
    """The base of the tool's read-only walks.

    libcst looks up ``visit_<Node>`` and ``leave_<Node>`` by name at every node, finds its
    own no-op for each kind of node a visitor does not handle and calls it, and looks up
    ``visit_<Node>_<attribute>`` methods around every child. Here each class finds its
    methods once per kind of node (:func:`_entry`) and calls only those it defines; none
    of the tool's walks has an attribute method (tests/test_plain_libcst.py checks that no
    subclass defines one), so that look-up is skipped.

    A walk also stops at a node below which none of its class's handlers can fire
    (:func:`_descends`): a walk of ``FunctionDef`` nodes does not descend into expressions,
    one of ``Name`` nodes not into strings, operators or whitespace. What it skips it would
    only have rebuilt unchanged; a transformer returns those nodes as they were.
    """

    #: node type -> (visit handler, leave handler, whether to descend); one per class
    _dispatch: ClassVar[dict[type, tuple[Any, Any, bool]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._dispatch = {}

    def on_visit(self, node: cst.CSTNode) -> bool:
        entry = self._dispatch.get(type(node)) or _entry(type(self), type(node))
        handler = entry[0]
        if handler is not None and handler(self, node) is False:
            return False
        return entry[2]

    def on_leave(self, original_node: cst.CSTNode) -> None:
        handler = (self._dispatch.get(type(original_node)) or _entry(type(self), type(original_node)))[1]
        if handler is not None:
            handler(self, original_node)

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        return None

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        return None


class Transformer(cst.CSTTransformer):
    """The base of the tool's transformers, with the dispatch and the stops of
    :class:`Visitor`."""

    _dispatch: ClassVar[dict[type, tuple[Any, Any, bool]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._dispatch = {}

    def on_visit(self, node: cst.CSTNode) -> bool:
        entry = self._dispatch.get(type(node)) or _entry(type(self), type(node))
        handler = entry[0]
        if handler is not None and handler(self, node) is False:
            return False
        return entry[2]

    #: whether a handler of the last walk returned another node than the one it was given
    #: (a walk in which none did rebuilt the tree equal to the one it walked)
    edited: bool = False

    def on_leave(self, original_node: Any, updated_node: Any) -> Any:
        handler = (self._dispatch.get(type(original_node)) or _entry(type(self), type(original_node)))[1]
        if handler is None:
            return updated_node
        result = handler(self, original_node, updated_node)
        if result is not updated_node:
            self.edited = True
        return result

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        return None

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        return None


def _entry(cls: Any, node_type: type) -> tuple[Any, Any, bool]:
    """``cls``'s handlers for ``node_type`` (its own ``visit_`` and ``leave_`` methods, None
    where it has only libcst's no-op) and whether a walk descends below such a node; found
    once per class and kind of node, and kept with the class."""
    base = cst.CSTTransformer if issubclass(cls, cst.CSTTransformer) else cst.CSTVisitor
    found = []
    for prefix in ("visit_", "leave_"):
        name = prefix + node_type.__name__
        method = getattr(cls, name, None)
        found.append(None if method is None or method is getattr(base, name, None) else method)
    entry = (found[0], found[1], _descends(cls, node_type))
    cls._dispatch[node_type] = entry
    return entry


def _descends(cls: Any, node_type: type) -> bool:
    """Whether a walk of ``cls`` must go below a ``node_type`` node: some node type its
    handlers are for can occur there (:func:`_below`). A class that replaces the walk's own
    ``on_visit`` or ``on_leave`` may act at any node: its walks go everywhere."""
    own = Visitor if issubclass(cls, Visitor) else Transformer
    if cls.on_visit is not own.on_visit or cls.on_leave is not own.on_leave:
        return True
    handled = _HANDLED.get(cls)
    if handled is None:
        base = cst.CSTTransformer if issubclass(cls, cst.CSTTransformer) else cst.CSTVisitor
        types = _node_types()
        handled = _HANDLED[cls] = frozenset(
            types[name.partition("_")[2]]
            for name in dir(cls)
            if name.startswith(("visit_", "leave_"))
            and name.partition("_")[2] in types
            and getattr(cls, name) is not getattr(base, name, None)
        )
    below = _below(node_type)
    return below is None or not below.isdisjoint(handled)


#: the node types each walking class has a handler for
_HANDLED: dict[type, frozenset[type]] = {}
_NODE_TYPES: dict[str, type] = {}
_CHILDREN: dict[type, frozenset[type] | None] = {}
_BELOW: dict[type, frozenset[type] | None] = {}
_KINDS: dict[type, frozenset[type]] = {}


def _node_types() -> dict[str, type]:
    """libcst's node classes by name (those its visitors have ``visit_<Name>`` methods for)."""
    if not _NODE_TYPES:
        _NODE_TYPES.update(
            (name, value)
            for name, value in vars(cst).items()
            if isinstance(value, type) and issubclass(value, cst.CSTNode)
        )
    return _NODE_TYPES


def _children(node_type: type) -> frozenset[type] | None:
    """The node classes a ``node_type`` node can hold as children: those its fields are
    declared to hold (libcst's nodes are dataclasses with annotated fields). None where the
    annotations cannot be read: any node may be below it."""
    if node_type in _CHILDREN:
        return _CHILDREN[node_type]
    try:
        hints = typing.get_type_hints(node_type)
        declared: set[type] = set()
        for field in dataclasses.fields(node_type):
            _classes_in(hints[field.name], declared)
    except (NameError, TypeError, KeyError, AttributeError):
        children = None
    else:
        children = frozenset().union(*map(_kinds_of, declared))
    _CHILDREN[node_type] = children
    return children


def _kinds_of(declared: type) -> frozenset[type]:
    """The node classes a field declared as ``declared`` can hold: it and its subclasses."""
    kinds = _KINDS.get(declared)
    if kinds is None:
        kinds = _KINDS[declared] = frozenset(
            t for t in _node_types().values() if declared in t.__mro__
        )
    return kinds


def _classes_in(annotation: Any, out: set[type]) -> None:
    if isinstance(annotation, type):
        if issubclass(annotation, cst.CSTNode):
            out.add(annotation)
        return
    for argument in typing.get_args(annotation):
        _classes_in(argument, out)


def _below(node_type: type) -> frozenset[type] | None:
    """Every node class that can occur at any depth below a ``node_type`` node; None where
    that cannot be known (any can)."""
    if node_type in _BELOW:
        return _BELOW[node_type]
    seen: set[type] = set()
    todo = [node_type]
    result: frozenset[type] | None = None
    while todo:
        children = _children(todo.pop())
        if children is None:
            break
        for child in children - seen:
            seen.add(child)
            todo.append(child)
    else:
        result = frozenset(seen)
    _BELOW[node_type] = result
    return result


def findall(tree: Any, matcher: Any) -> list[Any]:
    """``libcst.matchers.findall(tree, matcher)``: every node of ``tree`` that ``matcher``
    matches, in the order a walk meets them. The walk goes only where a node of a type the
    matcher can match may be (:func:`matched_types`; a matcher that can match any node,
    ``MatchIfTrue`` and the like, is left to libcst's ``findall``)."""
    kinds = matched_types(matcher)
    if kinds is None or not isinstance(tree, cst.CSTNode):
        return list(m.findall(tree, matcher))
    finder = _Finder(matcher, kinds)
    tree.visit(finder)
    return finder.found


def matched_types(matcher: Any) -> frozenset[type] | None:
    """The node types ``matcher`` can match (a node matcher matches the node class of its
    name, ``|`` any of its options', ``&`` those all of them can); None where any can
    (``MatchIfTrue``, ``DoesNotMatch``, metadata matchers)."""
    if isinstance(matcher, (m.OneOf, m.TypeOf)):
        kinds: set[type] = set()
        for option in matcher.options:
            some = matched_types(option)
            if some is None:
                return None
            kinds |= some
        return frozenset(kinds)
    if isinstance(matcher, m.AllOf):
        known = [k for k in map(matched_types, matcher.options) if k is not None]
        return frozenset.intersection(*known) if known else None
    if isinstance(matcher, m.BaseMatcherNode) and type(matcher).__module__.startswith(
        "libcst.matchers"
    ):
        node_type = _node_types().get(type(matcher).__name__)
        if node_type is not None:
            return frozenset({node_type})
    return None


class _Finder(Visitor):
    def __init__(self, matcher: Any, kinds: frozenset[type]) -> None:
        self.matcher = matcher
        self.kinds = kinds
        self.found: list[Any] = []
        self._descends: dict[type, bool] = {}

    def on_visit(self, node: cst.CSTNode) -> bool:
        kinds = self.kinds
        node_type = type(node)
        if node_type in kinds and m.matches(node, self.matcher):
            self.found.append(node)
        descends = self._descends.get(node_type)
        if descends is None:
            below = _below(node_type)
            descends = self._descends[node_type] = below is None or not below.isdisjoint(kinds)
        return descends

    def on_leave(self, original_node: cst.CSTNode) -> None:
        return None


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


def chain_root(expr: cst.BaseExpression, through_calls: bool = True) -> cst.BaseExpression:
    """What an attribute chain starts from: ``a`` of ``a.b.c``, and of ``a(x).b()`` when
    ``through_calls`` (else the call ``a(x)`` there)."""
    while isinstance(expr, cst.Attribute) or (through_calls and isinstance(expr, cst.Call)):
        expr = expr.value if isinstance(expr, cst.Attribute) else expr.func
    return expr


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
