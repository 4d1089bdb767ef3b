"""Faster traversals of libcst trees, with libcst's results.

libcst's visitor protocol rebuilds every node it passes (``_visit_and_replace_children``
constructs and validates a new node even for a read-only ``CSTVisitor``), and
``libcst.matchers.findall`` walks every node of the tree whatever the matcher asks for.
Measured on the bundled target, one empty traversal costs about as much as parsing the file.
This module gives the same answers with less work:

* :func:`may_contain` -- which node types can appear below a node of a given type, from the
  type annotations of libcst's node classes (an expression never holds a statement, a
  whitespace node never holds a call). The codemods' dispatch (``codemods/base.py``) uses it
  to skip subtrees in which the visitor has no handler at all.
* :func:`iter_children` / :func:`walk` -- a node's children in libcst's own (lexical) order,
  read from the node without rebuilding it, and the ``CSTVisitor`` protocol run on top of
  that (``on_visit``, the attribute hooks, ``on_leave``, in libcst's order).
* :func:`findall` -- ``libcst.matchers.findall`` for matchers of known node types: only
  subtrees that can hold such a node are entered, and nothing is rebuilt.

Each falls back on libcst itself where it cannot be sure (an unknown node class, a matcher
of unknown type, metadata matchers), and ``tests/test_fastcst.py`` compares every answer
with libcst's own on real code.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Callable, Iterator, Sequence

import libcst as cst
import libcst.matchers as m

__all__ = ["findall", "iter_children", "matches", "may_contain", "node_mask", "walk"]

# ---------------------------------------------------------------------------------------
# What can be inside what.

_BIT: dict[type, int] = {}  # concrete node class -> its bit
_BELOW: dict[type, int] = {}  # node class -> bits of the classes that can appear below it
_NAMED: dict[str, int] = {}  # class name -> bits of the concrete classes of that name
_FIELD_REACH: dict[type, dict[str, int]] = {}  # class -> field -> bits of what it can hold
_READY = False


def _subclasses(root: type) -> set[type]:
    seen: set[type] = set()
    stack = [root]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
    return seen


def _build() -> None:
    """Compute ``_BELOW`` for every node class libcst defines (once per process)."""
    global _READY
    classes = _subclasses(cst.CSTNode)
    concrete = sorted(
        (c for c in classes if not getattr(c, "__abstractmethods__", None)),
        key=lambda c: (c.__module__, c.__qualname__),
    )
    for i, cls in enumerate(concrete):
        _BIT[cls] = 1 << i
        _NAMED[cls.__name__] = _NAMED.get(cls.__name__, 0) | (1 << i)
    everything = (1 << len(concrete)) - 1
    # the concrete classes each class stands for in an annotation (itself and subclasses)
    family: dict[type, int] = {}
    for cls in classes | {cst.CSTNode}:
        bits = _BIT.get(cls, 0)
        for sub in _subclasses(cls):
            bits |= _BIT.get(sub, 0)
        family[cls] = bits

    def mentioned(annotation: Any) -> int:
        if isinstance(annotation, type):
            if issubclass(annotation, cst.CSTNode):
                return family.get(annotation, everything)
            return 0
        bits = 0
        for arg in typing.get_args(annotation):
            bits |= mentioned(arg)
        return bits

    direct: dict[type, int] = {}
    per_field: dict[type, dict[str, int]] = {}
    for cls in concrete:
        fields_bits: dict[str, int] = {}
        try:
            hints = typing.get_type_hints(cls)
            bits = 0
            for f in dataclasses.fields(cls):
                fields_bits[f.name] = mentioned(hints.get(f.name))
                bits |= fields_bits[f.name]
        except Exception:  # an annotation this cannot read: anything may be below
            bits = everything
            fields_bits = {}
        direct[cls] = bits
        per_field[cls] = fields_bits
    by_bit = {bit: cls for cls, bit in _BIT.items()}
    below = dict(direct)

    def grown(bits: int) -> int:
        """``bits`` and everything that can be below a class among them."""
        out = rest = bits
        while rest:
            low = rest & -rest
            out |= below[by_bit[low]]
            rest ^= low
        return out

    changed = True
    while changed:  # transitive closure (the graph is small: a few hundred classes)
        changed = False
        for cls in concrete:
            more = grown(below[cls])
            if more != below[cls]:
                below[cls] = more
                changed = True
    _BELOW.update(below)
    for cls, fields_bits in per_field.items():
        _FIELD_REACH[cls] = {name: grown(bits) for name, bits in fields_bits.items()}
    _READY = True


def node_mask(classes: Sequence[type]) -> int | None:
    """Bits of ``classes`` (None when one of them is unknown: assume anything)."""
    if not _READY:
        _build()
    bits = 0
    for cls in classes:
        bit = _BIT.get(cls)
        if bit is None:
            return None
        bits |= bit
    return bits


def named_mask(name: str) -> int | None:
    """Bits of the concrete node classes called ``name`` (0 when there is none)."""
    if not _READY:
        _build()
    return _NAMED.get(name, 0)


def may_contain(cls: type, mask: int | None) -> bool:
    """Whether a node of class ``cls``, or anything below it, can be of a class in ``mask``."""
    if mask is None:
        return True
    if not _READY:
        _build()
    below = _BELOW.get(cls)
    if below is None:  # a node class defined after the table was built
        return True
    return bool((below | _BIT[cls]) & mask)


# ---------------------------------------------------------------------------------------
# Children without rebuilding.

_ORDER: dict[type, tuple[tuple[str, ...], int]] = {}

#: class -> whether it is a CSTNode class. ``isinstance(x, CSTNode)`` goes through the ABC
#: machinery (CSTNode is abstract) and is the costliest thing a walk does per field; a dict
#: lookup on the exact class answers the same.
IS_NODE: dict[type, bool] = {}


def is_node(value: object) -> bool:
    cls = type(value)
    known = IS_NODE.get(cls)
    if known is None:
        known = IS_NODE[cls] = issubclass(cls, cst.CSTNode)
    return known


#: class -> whether its instances are a sequence that may hold nodes (not a str, tuple or
#: list, which the walks test first): ``isinstance(x, Sequence)`` goes through the ABC
#: machinery at every call, and most fields that are not nodes hold None or MaybeSentinel
OTHER_SEQUENCE: dict[type, bool] = {}


def other_sequence(value: object) -> bool:
    cls = type(value)
    known = OTHER_SEQUENCE.get(cls)
    if known is None:
        known = OTHER_SEQUENCE[cls] = isinstance(value, Sequence) and not isinstance(value, str)
    return known


class _Recorder(cst.CSTVisitor):
    """Records which attributes ``_visit_and_replace_children`` visits, in its order."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        return False

    def on_leave(self, original_node: cst.CSTNode) -> None:
        return None

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        if attribute not in self.names:
            self.names.append(attribute)

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        return None


def _order(node: cst.CSTNode) -> tuple[tuple[str, ...], int]:
    """The attributes libcst visits, in its order, and how many it always visits.

    libcst visits an attribute even when it holds None or a sentinel, except the few it
    visits only when they are set (``FormattedStringExpression.format_spec``): those come
    after the others, as in libcst's own order.
    """
    cls = type(node)
    order = _ORDER.get(cls)
    if order is None:
        recorder = _Recorder()
        node._visit_and_replace_children(recorder)
        names = recorder.names
        always = len(names)
        names += [
            f.name for f in dataclasses.fields(cls) if f.name not in names and not f.name.startswith("_")
        ]
        order = _ORDER[cls] = (tuple(names), always)
    return order


def fields_reaching(node: cst.CSTNode, mask: int | None) -> tuple[str, ...]:
    """The attributes of ``node`` (in libcst's order) whose values can hold a node of a class
    in ``mask``, itself or below (all of them for an unknown class or mask)."""
    names = _order(node)[0]
    if mask is None:
        return names
    reach = _FIELD_REACH.get(type(node))
    if not reach:
        return names
    everything = -1
    return tuple(n for n in names if reach.get(n, everything) & mask)


def iter_children(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """``node.children`` in the same order, without rebuilding ``node``."""
    for name in _order(node)[0]:
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            yield value
        elif isinstance(value, (tuple, list)):
            for child in value:
                if isinstance(child, cst.CSTNode):
                    yield child


def walk(node: cst.CSTNode, visitor: cst.CSTVisitor) -> None:
    """``node.visit(visitor)`` for a read-only visitor, without rebuilding the tree.

    The visitor sees the same calls in the same order: ``on_visit``, then for each attribute
    ``on_visit_attribute``, the children, ``on_leave_attribute``, then ``on_leave``. A
    visitor that dispatches the plain way (``visit_<Node>`` / ``leave_<Node>`` methods, no
    attribute handlers, hooks as installed by ``codemods.base``) has its handlers called
    directly, and subtrees where none of them can fire are not entered at all.
    """
    table = _plain_table(visitor)
    if table is not None:
        _walk_plain(node, visitor, table)
    else:
        _walk(node, visitor)


def _walk(node: cst.CSTNode, visitor: cst.CSTVisitor) -> None:
    if visitor.on_visit(node):
        names, always = _order(node)
        for i, name in enumerate(names):
            value = getattr(node, name)
            if isinstance(value, cst.CSTNode):
                visitor.on_visit_attribute(node, name)
                _walk(value, visitor)
                visitor.on_leave_attribute(node, name)
            elif isinstance(value, (tuple, list)):
                visitor.on_visit_attribute(node, name)
                for child in value:
                    if isinstance(child, cst.CSTNode):
                        _walk(child, visitor)
                visitor.on_leave_attribute(node, name)
            elif i < always:
                visitor.on_visit_attribute(node, name)
                visitor.on_leave_attribute(node, name)
    visitor.on_leave(node)


#: the dispatch hooks ``codemods.base`` installs on libcst's visitor classes: a class whose
#: four hooks are among these dispatches to its ``visit_*`` / ``leave_*`` methods only
PLAIN_HOOKS: set[Any] = set()
_HOOK_NAMES = ("on_visit", "on_leave", "on_visit_attribute", "on_leave_attribute")
_STUB_MODULE = "libcst._typed_visitor"
_PLAIN: dict[type, Any] = {}
_HANDLED: dict[type, int] = {}


def handler(cls: type, name: str) -> Any:
    """The function ``cls`` defines as handler ``name`` (None for libcst's generated stubs)."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return None if klass.__module__ == _STUB_MODULE else klass.__dict__[name]
    return None


def handled_mask(cls: type) -> int:
    """The node classes ``cls`` has a ``visit_*`` / ``leave_*`` handler for (attribute
    handlers included); libcst dispatches on the node's class name."""
    found = _HANDLED.get(cls)
    if found is None:
        if not _READY:
            _build()
        found = 0
        for name in dir(cls):
            if name.startswith(("visit_", "leave_")) and handler(cls, name) is not None:
                found |= _NAMED.get(name.split("_")[1], 0)
        _HANDLED[cls] = found
    return found


def _plain_table(visitor: Any) -> dict[type, Any] | None:
    cls = type(visitor)
    table = _PLAIN.get(cls, False)
    if table is False:
        plain = all(getattr(cls, hook, None) in PLAIN_HOOKS for hook in _HOOK_NAMES) and not any(
            name.count("_") >= 2 and handler(cls, name) is not None
            for name in dir(cls)
            if name.startswith(("visit_", "leave_"))
        )
        table = _PLAIN[cls] = {} if plain else None
    if table is not None and any(
        k.startswith(("visit_", "leave_")) for k in getattr(visitor, "__dict__", ())
    ):
        return None  # handlers set on the instance: libcst's own dispatch sees them
    return table


def _entry(visitor_cls: type, node: cst.CSTNode) -> tuple[Any, Any, bool, tuple[str, ...]]:
    cls = type(node)
    visit = handler(visitor_cls, "visit_" + cls.__name__)
    leave = handler(visitor_cls, "leave_" + cls.__name__)
    mask = handled_mask(visitor_cls)
    prune = visit is None and leave is None and not may_contain(cls, mask)
    return visit, leave, prune, fields_reaching(node, mask)


def _walk_plain(node: cst.CSTNode, visitor: Any, table: dict[type, Any]) -> None:
    cls = type(node)
    entry = table.get(cls)
    if entry is None:
        entry = table[cls] = _entry(type(visitor), node)
    visit, leave, prune, names = entry
    if prune:
        return
    if visit is None or visit(visitor, node) is not False:
        for name in names:
            value = getattr(node, name)
            kind = type(value)
            if kind is tuple or kind is list:
                for child in value:
                    if IS_NODE.get(type(child)) or is_node(child):
                        _walk_plain(child, visitor, table)
            elif IS_NODE.get(kind) or is_node(value):
                _walk_plain(value, visitor, table)
    if leave is not None:
        leave(visitor, node)


# ---------------------------------------------------------------------------------------
# matches and findall

try:  # the matcher evaluation libcst's own matches and findall use
    from libcst.matchers._matcher_base import (
        DoNotCareSentinel as _DoNotCare,
        _attribute_matches,
        _BaseMetadataMatcher,
        _construct_metadata_fetcher_null,
        _ExtractMatchingNode,
        _InverseOf,
        _matches,
    )

    _NULL_FETCHER: Any = _construct_metadata_fetcher_null()
except ImportError:  # pragma: no cover - a libcst with other internals: use its own
    _matches = None  # type: ignore[assignment]

#: id(matcher) -> (the matcher, kept alive so that the id stays its own; its predicate)
_COMPILED: dict[int, tuple[Any, Callable[[Any], bool]]] = {}  # findall's under -1 - id


def matches(node: Any, matcher: Any, *, metadata_resolver: Any = None) -> bool:
    """``libcst.matchers.matches(node, matcher)``, by a predicate compiled once per matcher.

    libcst interprets the matcher anew on every call (its fields listed with
    ``dataclasses.fields``, a dict of captures merged at every level); the codemods'
    matchers are module constants checked thousands of times. The predicate makes the same
    decisions in the same order, and hands whatever it does not cover (metadata, wildcards
    other than "anything before and after", ``TypeOf``) to libcst's own evaluation of that
    part."""
    if _matches is None or metadata_resolver is not None:
        return m.matches(node, matcher, metadata_resolver=metadata_resolver)
    entry = _COMPILED.get(id(matcher))
    if entry is not None and entry[0] is matcher:
        return entry[1](node)
    # compiling costs a few interpretations: a matcher built for one call is interpreted
    if _SEEN.get(id(matcher)) is not matcher:
        if len(_SEEN) > 1024:
            _SEEN.clear()
        _SEEN[id(matcher)] = matcher
        return m.matches(node, matcher)
    return compiled(matcher)(node)


#: id(matcher) -> matcher, for matchers checked once so far
_SEEN: dict[int, Any] = {}


def compiled(matcher: Any, top: bool = True) -> Callable[[Any], bool]:
    """The predicate ``lambda node: libcst.matchers.matches(node, matcher)``; with
    ``top=False`` the one libcst's ``findall`` applies to every node (it allows a
    ``MatchIfTrue`` or metadata matcher at the top, and never sees a RemovalSentinel)."""
    key = id(matcher) if top else -1 - id(matcher)
    entry = _COMPILED.get(key)
    if entry is not None and entry[0] is matcher:
        return entry[1]
    test: Callable[[Any], bool]
    if not top:
        test = _node_test(matcher)
    elif isinstance(matcher, (m.AtLeastN, m.AtMostN, m.MatchIfTrue, _BaseMetadataMatcher)):
        test = _never  # libcst: not allowed at the top
    else:
        inner = _node_test(matcher)

        def test(node: Any) -> bool:
            return type(node) is not cst.RemovalSentinel and inner(node)

    if len(_COMPILED) > 1024:
        _COMPILED.clear()
    _COMPILED[key] = (matcher, test)
    return test


def _never(node: Any) -> bool:
    return False


def _node_test(matcher: Any) -> Callable[[Any], bool]:
    """libcst's ``_matches(node, matcher)``: a node (or a MaybeSentinel) against a node
    matcher, OneOf or AllOf."""
    if isinstance(matcher, m.OneOf):
        options = [_concrete_test(o) for o in matcher.options]
        return _maybe_sentinel(matcher, lambda node: any(t(node) for t in options))
    if isinstance(matcher, m.AllOf):
        options = [_concrete_test(o) for o in matcher.options]
        return _maybe_sentinel(matcher, lambda node: all(t(node) for t in options))
    if isinstance(matcher, m.TypeOf):
        return _libcst_node_test(matcher)
    return _maybe_sentinel(matcher, _concrete_test(matcher))


def _maybe_sentinel(matcher: Any, test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    inverse = isinstance(matcher, _InverseOf)

    def checked(node: Any) -> bool:
        if type(node) is cst.MaybeSentinel:  # only an inverse matches a missing value
            return inverse
        return test(node)

    return checked


def _libcst_node_test(matcher: Any) -> Callable[[Any], bool]:
    return lambda node: _matches(node, matcher, _NULL_FETCHER) is not None


def _concrete_test(matcher: Any) -> Callable[[Any], bool]:
    """libcst's ``_node_matches``: one node against one matcher (no OneOf at this level)."""
    if isinstance(matcher, _InverseOf):
        inner = _concrete_test(matcher.matcher)
        return lambda node: not inner(node)
    if isinstance(matcher, _ExtractMatchingNode):  # a capture: the same decision
        return _concrete_test(matcher.matcher)
    if isinstance(matcher, m.MatchIfTrue):
        func = matcher.func
        return lambda node: bool(func(node))
    if (
        isinstance(matcher, (m.OneOf, m.AllOf, m.TypeOf, _BaseMetadataMatcher))
        or not isinstance(matcher, m.BaseMatcherNode)
        or not dataclasses.is_dataclass(matcher)
    ):
        return _libcst_concrete_test(matcher)
    name = type(matcher).__name__
    checks: list[tuple[str, Callable[[Any], bool]]] = []
    for f in dataclasses.fields(matcher):
        if f.name == "_metadata":
            continue
        desired = getattr(matcher, f.name)
        if isinstance(desired, _DoNotCare):
            continue
        if f.name == "metadata":
            return _libcst_concrete_test(matcher)
        checks.append((f.name, _attribute_test(desired)))
    if not checks:
        return lambda node: type(node).__name__ == name
    if len(checks) == 1:
        (attr, only), = checks
        return lambda node: type(node).__name__ == name and only(getattr(node, attr))

    def test(node: Any) -> bool:
        if type(node).__name__ != name:
            return False
        for attr, check in checks:
            if not check(getattr(node, attr)):
                return False
        return True

    return test


def _libcst_concrete_test(matcher: Any) -> Callable[[Any], bool]:
    from libcst.matchers._matcher_base import _node_matches

    return lambda node: _node_matches(node, matcher, _NULL_FETCHER) is not None


def _attribute_test(desired: Any) -> Callable[[Any], bool]:
    """libcst's ``_attribute_matches``: a field's value against what the matcher wants."""
    if isinstance(desired, _DoNotCare):
        return lambda value: True
    if isinstance(desired, _InverseOf):
        inner = _attribute_test(desired.matcher)
        return lambda value: not inner(value)
    if isinstance(desired, _ExtractMatchingNode):
        return _attribute_test(desired.matcher)
    if isinstance(desired, m.MatchIfTrue):
        func = desired.func
        return lambda value: bool(func(value))
    if desired is None:
        return lambda value: value is None
    if isinstance(desired, str):
        return lambda value: value == desired
    if isinstance(desired, bool):
        return lambda value: value is desired
    sequence = _sequence_test(desired) if type(desired) in (list, tuple) else None
    libcst_own = lambda value: _attribute_matches(value, desired, _NULL_FETCHER) is not None  # noqa: E731
    if sequence is not None:
        return lambda value: sequence(value) if type(value) in (tuple, list) else libcst_own(value)
    if isinstance(desired, (m.OneOf, m.AllOf)):
        either = _node_test(desired)  # about a node value; libcst decides for a sequence
        return lambda value: libcst_own(value) if _is_sequence(value) else either(value)
    if isinstance(desired, Sequence):
        return libcst_own
    node_test = _node_test(desired)

    def test(value: Any) -> bool:
        if _is_sequence(value):
            return False  # a sequence against a node matcher never matches
        return node_test(value)

    return test


def _is_sequence(value: Any) -> bool:
    kind = type(value)
    if kind is tuple or kind is list or kind is str:
        return True
    if IS_NODE.get(kind) or value is None or kind is cst.MaybeSentinel:
        return False
    return isinstance(value, Sequence)


def _sequence_test(desired: Sequence[Any]) -> Callable[[Any], bool] | None:
    """A sequence of matchers against a sequence of nodes, for the two shapes the codemods
    use: one matcher per element, and "some element matches" (``[ZeroOrMore(), X,
    ZeroOrMore()]``). None for anything else (libcst decides)."""
    def anything(wildcard: Any) -> bool:
        return (
            type(wildcard) is m.AtLeastN
            and wildcard.n == 0
            and isinstance(wildcard.matcher, _DoNotCare)
        )

    if any(isinstance(d, (m.AtLeastN, m.AtMostN, _ExtractMatchingNode)) for d in desired):
        if (
            len(desired) == 3
            and anything(desired[0])
            and anything(desired[2])
            and not isinstance(desired[1], (m.AtLeastN, m.AtMostN, _ExtractMatchingNode, _DoNotCare))
        ):
            middle = _node_test(desired[1])
            return lambda values: any(middle(v) for v in values)
        return None
    tests = [None if isinstance(d, _DoNotCare) else _node_test(d) for d in desired]
    count = len(tests)

    def test(values: Sequence[Any]) -> bool:
        if len(values) != count:
            return False
        for value, check in zip(values, tests):
            if check is not None and not check(value):
                return False
        return True

    return test


def _matcher_mask(matcher: Any) -> int | None:
    """The concrete node classes ``matcher`` can match (None: any, or unknown)."""
    if not _READY:
        _build()
    if isinstance(matcher, (m.OneOf, m.TypeOf)):  # TypeOf: m.Name | m.Attribute
        bits = 0
        for option in matcher.options:
            sub = _matcher_mask(option)
            if sub is None:
                return None
            bits |= sub
        return bits
    if isinstance(matcher, m.AllOf):
        known = [b for b in (_matcher_mask(o) for o in matcher.options) if b is not None]
        if not known:
            return None
        bits = known[0]
        for b in known[1:]:
            bits &= b
        return bits
    if isinstance(matcher, m.BaseMatcherNode) and type(matcher).__module__.startswith(
        "libcst.matchers"
    ):
        # libcst compares the node's class name with the matcher's
        return _NAMED.get(type(matcher).__name__, 0)
    return None


#: matchers asked for again and again, built once (findall compiles each matcher object)
ANY_NAME = m.Name()
ANY_CALL = m.Call()
ANY_STRING = m.SimpleString()
ANY_TRY = m.Try()
ANY_IMPORT_FROM = m.ImportFrom(module=m.DoNotCare())


def findall(tree: Any, matcher: Any, *, metadata_resolver: Any = None) -> Sequence[cst.CSTNode]:
    """``libcst.matchers.findall(tree, matcher)``: the same nodes in the same order."""
    if (
        _matches is None
        or metadata_resolver is not None
        or not isinstance(tree, cst.CSTNode)
        or isinstance(matcher, (m.AtLeastN, m.AtMostN))
    ):
        return m.findall(tree, matcher, metadata_resolver=metadata_resolver)
    mask = _matcher_mask(matcher)
    found: list[cst.CSTNode] = []
    test = compiled(matcher, top=False)
    if mask is None:
        _find_any(tree, test, found)
    elif mask:
        _find_typed(tree, test, mask, found)
    return found


def _find_any(node: cst.CSTNode, test: Callable[[Any], bool], found: list[cst.CSTNode]) -> None:
    if test(node):
        found.append(node)
    for child in iter_children(node):
        _find_any(child, test, found)


def _find_typed(
    node: cst.CSTNode, test: Callable[[Any], bool], mask: int, found: list[cst.CSTNode]
) -> None:
    cls = type(node)
    bit = _BIT.get(cls)
    if bit is None:  # unknown class: check it and everything below
        _find_any(node, test, found)
        return
    if bit & mask and test(node):
        found.append(node)
    if not _BELOW[cls] & mask:
        return
    names = _TYPED_FIELDS.get((cls, mask))
    if names is None:
        names = _TYPED_FIELDS[(cls, mask)] = fields_reaching(node, mask)
    for name in names:  # in libcst's order: the nodes come out in its order
        value = getattr(node, name)
        kind = type(value)
        if kind is tuple or kind is list:
            for child in value:
                if is_node(child):
                    _find_typed(child, test, mask, found)
        elif is_node(value):
            _find_typed(value, test, mask, found)
        elif other_sequence(value):
            for child in value:
                if is_node(child):
                    _find_typed(child, test, mask, found)


#: (node class, matcher mask) -> the fields findall enters
_TYPED_FIELDS: dict[tuple[type, int], tuple[str, ...]] = {}


# ---------------------------------------------------------------------------------------
# The line of one node

try:
    from libcst._nodes.internal import CodegenState as _CodegenState
    from libcst.metadata.position_provider import NEWLINE_RE as _NEWLINE_RE
except ImportError:  # pragma: no cover - a libcst with other internals
    _CodegenState = None  # type: ignore[assignment,misc]


class _Found(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


if _CodegenState is not None:
    import contextlib

    _NO_CONTEXT = contextlib.nullcontext()

    class _LineState(_CodegenState):  # type: ignore[misc,valid-type]
        """Prints the module only until the start of one node is known.

        The start is the one ``PositionProvider`` gives: where the node's syntactic part
        begins (``record_syntactic_position``, or the start of the child it names), else
        where its code begins.
        """

        target: Any = None
        first: int | None = None
        syntactic: int | None = None

        def _line(self) -> int:
            return 1 + len(_NEWLINE_RE.findall("".join(self.tokens)))

        def before_codegen(self, node: cst.CSTNode) -> None:
            if node is self.target and self.first is None:
                self.first = self._line()

        def after_codegen(self, node: cst.CSTNode) -> None:
            if node is self.target:
                line = self.syntactic if self.syntactic is not None else self.first
                raise _Found(line if line is not None else self._line())

        def record_syntactic_position(
            self, node: cst.CSTNode, *, start_node: Any = None, end_node: Any = None
        ) -> Any:
            # libcst's is a context manager whose work happens on entry; here it happens on
            # the call, just before the caller enters the (empty) context
            if node is self.target:
                if start_node is None:
                    self.syntactic = self._line()
                else:  # the start of that child is the start of this node
                    self.target, self.first, self.syntactic = start_node, None, None
            return _NO_CONTEXT


def line_of(module: cst.Module, node: cst.CSTNode) -> int | None:
    """The 1-based line ``PositionProvider`` would give ``node`` (None if it is not in
    ``module``), printing only the code before it, not the whole module with positions."""
    if _CodegenState is None:  # pragma: no cover
        from libcst.metadata import MetadataWrapper, PositionProvider

        pos = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider).get(node)
        return pos.start.line if pos is not None else None
    state = _LineState(default_indent=module.default_indent, default_newline=module.default_newline)
    state.target = node
    try:
        with _light_parentheses():
            module._codegen(state)
    except _Found as found:
        return found.line
    return None


# ---------------------------------------------------------------------------------------
# Printing

if _CodegenState is not None:
    from libcst._nodes.expression import _BaseParenthesizedNode

    _PARENTHESIZE = _BaseParenthesizedNode.__dict__["_parenthesize"]

    class _PlainState(_CodegenState):  # type: ignore[misc,valid-type]
        """libcst's codegen state for plain printing (``Module.code``), without the
        bookkeeping only positions need: ``record_syntactic_position`` does nothing in
        libcst's own plain state either, here it does nothing without a generator."""

        def record_syntactic_position(
            self, node: cst.CSTNode, *, start_node: Any = None, end_node: Any = None
        ) -> Any:
            return _NO_CONTEXT

    class _Parens:
        """``_parenthesize`` for the plain state: the same tokens, no generator."""

        __slots__ = ("node", "state")

        def __init__(self, node: Any, state: Any) -> None:
            self.node, self.state = node, state

        def __enter__(self) -> None:
            for lpar in self.node.lpar:
                lpar._codegen(self.state)
            if type(self.state) is _LineState:
                self.state.record_syntactic_position(self.node)

        def __exit__(self, kind: object, value: object, tb: object) -> None:
            if kind is None:
                for rpar in self.node.rpar:
                    rpar._codegen(self.state)

    def _parenthesize(self: Any, state: Any) -> Any:
        kind = type(state)
        if kind is _PlainState:
            if not self.lpar and not self.rpar:
                return _NO_CONTEXT
            return _Parens(self, state)
        if kind is _LineState:
            return _Parens(self, state)
        return _PARENTHESIZE(self, state)  # positions are being recorded: libcst's own

    from libcst._nodes.base import BaseValueToken as _BaseValueToken
    from libcst._nodes.op import _BaseOneTokenOp

    _CODEGEN = cst.CSTNode.__dict__["_codegen"]

    def _codegen_plain(self: Any, state: Any, **kwargs: Any) -> None:
        # libcst's CSTNode._codegen, without the two hooks the plain state ignores
        self._codegen_impl(state, **kwargs)

    # the commonest nodes' _codegen_impl, inlined (record_syntactic_position does nothing
    # for the plain state): a value token, a name, a one-token operator
    def _value_plain(self: Any, state: Any, **kwargs: Any) -> None:
        state.tokens.append(self.value)

    def _name_plain(self: Any, state: Any, **kwargs: Any) -> None:
        for lpar in self.lpar:
            lpar._codegen(state)
        state.tokens.append(self.value)
        for rpar in self.rpar:
            rpar._codegen(state)

    # whitespace is the commonest child of all: a SimpleWhitespace is printed without a
    # call of its own codegen
    _SW = cst.SimpleWhitespace

    def _whitespace(ws: Any, state: Any) -> None:
        if type(ws) is _SW:
            state.tokens.append(ws.value)
        else:
            ws._codegen(state)

    def _operator_plain(self: Any, state: Any, **kwargs: Any) -> None:
        tokens = state.tokens
        _whitespace(self.whitespace_before, state)
        tokens.append(self._get_token())
        _whitespace(self.whitespace_after, state)

    def _attribute_plain(self: Any, state: Any, **kwargs: Any) -> None:
        for lpar in self.lpar:
            lpar._codegen(state)
        self.value._codegen(state)
        self.dot._codegen(state)
        self.attr._codegen(state)
        for rpar in self.rpar:
            rpar._codegen(state)

    def _newline_plain(self: Any, state: Any, **kwargs: Any) -> None:
        value = self.value
        state.tokens.append(state.default_newline if value is None else value)

    def _trailing_plain(self: Any, state: Any, **kwargs: Any) -> None:
        _whitespace(self.whitespace, state)
        if self.comment is not None:
            self.comment._codegen(state)
        self.newline._codegen(state)

    def _empty_line_plain(self: Any, state: Any, **kwargs: Any) -> None:
        if self.indent:
            state.tokens.extend(state.indent_tokens)
        _trailing_plain(self, state)  # then whitespace, comment and newline, as a line end

    def _simple_line_plain(self: Any, state: Any, **kwargs: Any) -> None:
        for line in self.leading_lines:
            line._codegen(state)
        state.tokens.extend(state.indent_tokens)
        body = self.body
        if body:
            last = len(body) - 1
            for index, small in enumerate(body):
                small._codegen(state, default_semicolon=(index != last))
        else:  # libcst prints an empty line of statements as ``pass``
            state.tokens.append("pass")
        self.trailing_whitespace._codegen(state)

    def _call_plain(self: Any, state: Any, **kwargs: Any) -> None:
        tokens = state.tokens
        for lpar in self.lpar:
            lpar._codegen(state)
        self.func._codegen(state)
        _whitespace(self.whitespace_after_func, state)
        tokens.append("(")
        _whitespace(self.whitespace_before_args, state)
        args = self.args
        last = len(args) - 1
        for index, arg in enumerate(args):
            arg._codegen(state, default_comma=(index != last))
        tokens.append(")")
        for rpar in self.rpar:
            rpar._codegen(state)

    def _arg_plain(self: Any, state: Any, default_comma: bool = False) -> None:
        tokens = state.tokens
        tokens.append(self.star)
        _whitespace(self.whitespace_after_star, state)
        keyword = self.keyword
        if keyword is not None:
            keyword._codegen(state)
        _separator(self.equal, cst.AssignEqual, " = ", keyword is not None, state)
        self.value._codegen(state)
        _separator(self.comma, cst.Comma, ", ", default_comma, state)
        _whitespace(self.whitespace_after_arg, state)

    def _separator(value: Any, cls: type, default: str, use_default: bool, state: Any) -> None:
        """A comma, equal sign or semicolon field as libcst prints it: its default token
        where the field is left to its default and one is due, else the node if it is one
        (an exact class check first: the ABC check of a non-instance is slow)."""
        if value is cst.MaybeSentinel.DEFAULT:
            if use_default:
                state.tokens.append(default)
        elif type(value) is cls or isinstance(value, cls):
            value._codegen(state)

    def _semicolon(self: Any, state: Any, default_semicolon: bool) -> None:
        _separator(self.semicolon, cst.Semicolon, "; ", default_semicolon, state)

    def _expr_plain(self: Any, state: Any, default_semicolon: bool = False) -> None:
        self.value._codegen(state)
        _semicolon(self, state, default_semicolon)

    def _assign_plain(self: Any, state: Any, default_semicolon: bool = False) -> None:
        for target in self.targets:
            target._codegen(state)
        self.value._codegen(state)
        _semicolon(self, state, default_semicolon)

    def _assign_target_plain(self: Any, state: Any, **kwargs: Any) -> None:
        self.target._codegen(state)
        self.whitespace_before_equal._codegen(state)
        state.tokens.append("=")
        self.whitespace_after_equal._codegen(state)

    _PLAIN_CODEGEN: dict[type, Any] = {}
    def _param_plain(self: Any, state: Any, default_star: Any = None, default_comma: bool = False) -> None:
        tokens = state.tokens
        star = self.star
        if isinstance(star, cst.MaybeSentinel):
            if default_star is None:
                raise cst.CSTCodegenError("Must specify a concrete default_star if default used on star.")
            star = default_star
        if isinstance(star, str):
            tokens.append(star)
        _whitespace(self.whitespace_after_star, state)
        self.name._codegen(state)
        annotation = self.annotation
        if annotation is not None:
            annotation._codegen(state, default_indicator=":")
        default = self.default
        _separator(self.equal, cst.AssignEqual, " = ", default is not None, state)
        if default is not None:
            default._codegen(state)
        _separator(self.comma, cst.Comma, ", ", default_comma, state)
        _whitespace(self.whitespace_after_param, state)

    def _indented_block_plain(self: Any, state: Any, **kwargs: Any) -> None:
        self.header._codegen(state)
        indent = self.indent
        indents = state.indent_tokens
        indents.append(state.default_indent if indent is None else indent)
        if self.body:
            for stmt in self.body:
                stmt._codegen(state)
        else:  # libcst prints an empty block as ``pass``
            state.tokens.extend(indents)
            state.tokens.append("pass")
            state.tokens.append(state.default_newline)
        for footer in self.footer:
            footer._codegen(state)
        indents.pop()

    _INLINED: dict[type, Any] = {
        cst.Param: _param_plain,
        cst.IndentedBlock: _indented_block_plain,
        cst.SimpleString: _name_plain,  # parentheses around a value token, as for a name
        cst.Integer: _name_plain,
        cst.Float: _name_plain,
        cst.Imaginary: _name_plain,
        cst.Call: _call_plain,
        cst.Arg: _arg_plain,
        cst.Expr: _expr_plain,
        cst.Assign: _assign_plain,
        cst.AssignTarget: _assign_target_plain,
        cst.Name: _name_plain,
        cst.Attribute: _attribute_plain,
        cst.Newline: _newline_plain,
        cst.TrailingWhitespace: _trailing_plain,
        cst.EmptyLine: _empty_line_plain,
        cst.SimpleStatementLine: _simple_line_plain,
    }

    def _plain_codegens() -> dict[type, Any]:
        if not _PLAIN_CODEGEN:
            value_impl = _BaseValueToken.__dict__["_codegen_impl"]
            operator_impl = _BaseOneTokenOp.__dict__["_codegen_impl"]
            for cls in _subclasses(cst.CSTNode):
                if "_codegen" in cls.__dict__ or getattr(cls, "__abstractmethods__", None):
                    continue
                impl = getattr(cls, "_codegen_impl", None)
                if cls in _INLINED:
                    _PLAIN_CODEGEN[cls] = _INLINED[cls]
                elif impl is value_impl:
                    _PLAIN_CODEGEN[cls] = _value_plain
                elif impl is operator_impl:
                    _PLAIN_CODEGEN[cls] = _operator_plain
        return _PLAIN_CODEGEN

    _PLAIN_ACTIVE = [0]

    def _install_plain(on: bool) -> None:
        if on:
            cst.CSTNode._codegen = _codegen_plain  # type: ignore[method-assign]
            for cls, fast in _plain_codegens().items():
                cls._codegen = fast  # type: ignore[attr-defined]
        else:
            cst.CSTNode._codegen = _CODEGEN  # type: ignore[method-assign]
            for cls in _plain_codegens():
                if "_codegen" in cls.__dict__:
                    delattr(cls, "_codegen")

    @contextlib.contextmanager
    def _light_parentheses(plain: bool = False) -> Iterator[None]:
        """The lighter hooks in place while one of the states above prints. With ``plain``
        (only ``_PlainState`` prints inside), also ``_codegen`` without the before/after
        calls only positions use, and inlined for the commonest nodes; without it, libcst's
        own ``_codegen``, even inside a plain printing (``line_of`` needs those calls)."""
        previous = _BaseParenthesizedNode.__dict__["_parenthesize"]
        _BaseParenthesizedNode._parenthesize = _parenthesize  # type: ignore[method-assign]
        outer = _PLAIN_ACTIVE[0]  # how many plain printings this one is inside
        if plain:
            if not outer:
                _install_plain(True)
            _PLAIN_ACTIVE[0] = outer + 1
        elif outer:
            _install_plain(False)
            _PLAIN_ACTIVE[0] = 0
        try:
            yield
        finally:
            _PLAIN_ACTIVE[0] = outer
            if plain and not outer:
                _install_plain(False)
            elif not plain and outer:
                _install_plain(True)
            _BaseParenthesizedNode._parenthesize = previous  # type: ignore[method-assign]

    def plain_printing() -> Any:
        """Keep the plain printing hooks installed across many :func:`code` calls (an
        analysis that prints many nodes) instead of installing them for each."""
        return _light_parentheses(plain=True)


else:  # pragma: no cover - a libcst with other internals

    def plain_printing() -> Any:
        import contextlib

        return contextlib.nullcontext()


def code(node: cst.CSTNode, module: cst.Module | None = None, indents: Sequence[str] = ()) -> str:
    """``module.code_for_node(node)`` (``node.code`` for a module), printed by libcst's own
    codegen with a lighter state: the parenthesised-expression and position hooks, which
    print nothing themselves, cost no generator each. ``indents`` are the indentation tokens
    the node is printed under (a statement inside a block)."""
    if module is None:
        module = node if isinstance(node, cst.Module) else _DEFAULT_MODULE
    if _CodegenState is None:  # pragma: no cover - a libcst with other internals
        if indents:
            raise NotImplementedError("printing under an indentation needs libcst's CodegenState")
        return node.code if isinstance(node, cst.Module) else module.code_for_node(node)
    state = _PlainState(default_indent=module.default_indent, default_newline=module.default_newline)
    if indents:
        state.indent_tokens = list(indents)
    with _light_parentheses(plain=True):
        node._codegen(state)
    return "".join(state.tokens)


def module_bytes(module: cst.Module) -> bytes:
    """``module.bytes``, printed by :func:`code`."""
    return code(module).encode(module.encoding)


_DEFAULT_MODULE = cst.Module(body=[])


def _names_below(
    node: cst.CSTNode, identifiers_only: bool, outside_imports: bool = False, strings: bool = False
) -> Iterator[Any]:
    """Every ``Name`` node in ``node`` (with ``identifiers_only``: not in imports, and not
    the attribute name of ``x.name``; with ``outside_imports``: not in imports; with
    ``strings``: every ``SimpleString`` too), entering only fields that can hold one."""
    if not _READY:
        _build()
    name_bit = _NAMED.get("Name", 0)
    masks: dict[type, tuple[str, ...]] = _NAME_FIELDS
    if strings:
        name_bit |= _NAMED.get("SimpleString", 0)
        masks = _NAME_OR_STRING_FIELDS
    stack = [node]
    while stack:
        current = stack.pop()
        cls = type(current)
        if cls is cst.Name or (strings and cls is cst.SimpleString):
            yield current
            continue
        if identifiers_only or outside_imports:
            if cls is cst.Import or cls is cst.ImportFrom:
                continue
        if identifiers_only:
            if cls is cst.Attribute:
                stack.append(current.value)  # type: ignore[attr-defined]
                continue
        names = masks.get(cls)
        if names is None:
            names = masks[cls] = fields_reaching(current, name_bit)
        for attr in reversed(names):
            value = getattr(current, attr)
            kind = type(value)
            if kind is tuple or kind is list:
                stack.extend(c for c in reversed(value) if is_node(c))
            elif IS_NODE.get(kind) or is_node(value):
                stack.append(value)


_NAME_FIELDS: dict[type, tuple[str, ...]] = {}
_NAME_OR_STRING_FIELDS: dict[type, tuple[str, ...]] = {}


def names_below(
    node: cst.CSTNode, outside_imports: bool = False, strings: bool = False
) -> Iterator[Any]:
    """Every ``Name`` node in ``node`` (not those of import statements, with
    ``outside_imports``; and every ``SimpleString``, with ``strings``), in no particular
    order (only fields that can hold one are entered)."""
    return _names_below(node, False, outside_imports, strings)


def mentions(node: cst.CSTNode, names: set[str] | frozenset[str]) -> bool:
    """Whether a ``Name`` node with one of ``names`` appears in ``node`` (stops at the first)."""
    return any(n.value in names for n in _names_below(node, False))


#: leaf bit -> node class -> the fields that can hold such a leaf (holding_leaf's walk)
_REACHING: dict[int, dict[type, tuple[str, ...]]] = {}


def holding(node: cst.CSTNode, names: set[str] | frozenset[str]) -> set[int]:
    """``id`` of ``node`` and of every node below it whose subtree has a ``Name`` with one of
    ``names``: a transformer that acts on those names only may skip every other subtree."""
    return holding_leaf(node, cst.Name, lambda name: name.value in names)


def holding_leaf(
    node: cst.CSTNode, leaf: type | tuple[type, ...], test: Callable[[Any], bool]
) -> set[int]:
    """``id`` of ``node`` and of every node below it whose subtree has a node of class
    ``leaf`` (``cst.Name``, ``cst.Comment``..., or a tuple of classes) for which ``test`` is
    true. Only the fields that can hold such a node are entered."""
    if not _READY:
        _build()
    leaves = leaf if isinstance(leaf, tuple) else (leaf,)
    bit = 0
    for cls in leaves:
        if cls not in _BIT:
            raise ValueError(f"not a concrete libcst node class: {cls!r}")
        bit |= _BIT[cls]
    single = leaves[0] if len(leaves) == 1 else None
    found: set[int] = set()
    reaching = _REACHING.get(bit)
    if reaching is None:
        reaching = _REACHING[bit] = {}
    known = IS_NODE

    def visit(current: Any) -> bool:
        cls = type(current)
        hot = (cls is single if single is not None else cls in leaves) and bool(test(current))
        names = reaching.get(cls)
        if names is None:
            names = reaching[cls] = fields_reaching(current, bit)
        for attr in names:
            value = getattr(current, attr)
            kind = type(value)
            if kind is tuple or kind is list:
                for child in value:
                    is_child = known.get(type(child))
                    if is_child is None:
                        is_child = is_node(child)
                    if is_child and visit(child):
                        hot = True
            else:
                is_child = known.get(kind)
                if is_child is None:
                    is_child = is_node(value)
                if is_child:
                    if visit(value):
                        hot = True
                elif other_sequence(value):
                    for child in value:  # another kind of sequence: rare, checked in full
                        if is_node(child) and visit(child):
                            hot = True
        if hot:
            found.add(id(current))
        return hot

    visit(node)
    return found


def names_used(node: cst.CSTNode, wanted: set[str] | frozenset[str]) -> set[str]:
    """Which of ``wanted`` appear in ``node`` as identifiers: ``Name`` nodes outside imports
    and other than attribute names (``x.name`` uses ``x``, not ``name``); stops once all are
    found."""
    found: set[str] = set()
    for name in _names_below(node, True):
        if name.value in wanted:
            found.add(name.value)
            if len(found) == len(wanted):
                break
    return found


# ---------------------------------------------------------------------------------------
# Caches keyed by source text (not by a tree's identity, which dies with its run): each
# registers here, so that ``forget_contents`` can start a run from nothing
# (``bench/throughput.py`` does it before every repetition, so the figures are those of a
# process that has never seen the target).

_CONTENT_CACHES: list[Callable[[], None]] = []


def content_cache(clear: Callable[[], None]) -> Callable[[], None]:
    """Register the ``clear`` of a cache keyed by source text; returns it."""
    _CONTENT_CACHES.append(clear)
    return clear


def forget_contents() -> None:
    """Empty every cache keyed by source text."""
    for clear in _CONTENT_CACHES:
        clear()


_STATEMENTS: dict[str, cst.BaseStatement] = {}
content_cache(_STATEMENTS.clear)


class TreeMemo:
    """Answers about trees, by the tree's identity: a tree is immutable, and a file left
    unchanged keeps its tree from phase to phase, so an answer holds for the whole run.

    Each entry keeps its tree alive (so its id cannot be reused while the entry is there);
    only the trees asked about lately are kept (``size``), so that the trees of replaced
    contents are not held for the rest of the run.
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._entries: dict[tuple[int, Any], tuple[Any, Any]] = {}

    def get(self, tree: Any, key: Any = None) -> Any:
        """The answer kept for ``tree`` (and ``key``), else None."""
        entry = self._entries.get((id(tree), key))
        return entry[1] if entry is not None and entry[0] is tree else None

    def put(self, tree: Any, value: Any, key: Any = None) -> Any:
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[(id(tree), key)] = (tree, value)
        return value

    def clear(self) -> None:
        self._entries.clear()


def parse_statement(source: str) -> cst.BaseStatement:
    """``cst.parse_statement(source)``: new nodes every call (a copy of the first parse of
    the same text; parsing again costs twice as much as copying)."""
    parsed = _STATEMENTS.get(source)
    if parsed is None:
        if len(_STATEMENTS) > 256:
            _STATEMENTS.clear()
        parsed = _STATEMENTS[source] = cst.parse_statement(source)
    return clone(parsed)


def clone(node: Any) -> Any:
    """``node.deep_clone()``: a new tree of new nodes, the same code (libcst's deep_clone
    deep-copies every scalar field through an exception; those are immutable). The copies
    are filled in slot by slot: a copy of a valid node needs neither the constructor's
    defaults nor its validation (``__post_init__`` only validates)."""
    cls = type(node)
    setters = _SETTERS.get(cls)
    if setters is None:
        setters = _SETTERS[cls] = _slot_setters(cls)
    if not setters:  # not a slotted dataclass: through the constructor
        names = tuple(f.name for f in dataclasses.fields(cls))
        return cls(**{name: _cloned(getattr(node, name)) for name in names})
    new = object.__new__(cls)
    for name, set_slot in setters:
        set_slot(new, _cloned(getattr(node, name)))
    return new


def with_changes(node: Any, changes: dict[str, Any]) -> Any:
    """``node.with_changes(**changes)`` (``dataclasses.replace``: a new node, validated),
    without ``replace``'s per-call walk over the class's field records, and filled slot by
    slot (every field is given, so the dataclass constructor would only set them and call
    ``__post_init__``, which validates; it is called here the same way)."""
    cls = type(node)
    known = _FIELD_NAMES.get(cls)
    if known is None:
        names = tuple(f.name for f in dataclasses.fields(cls))
        known = _FIELD_NAMES[cls] = (names, frozenset(names))
    if not changes.keys() <= known[1]:  # libcst's own error
        return dataclasses.replace(node, **changes)
    setters = _SETTERS.get(cls)
    if setters is None:
        setters = _SETTERS[cls] = _slot_setters(cls)
    if not setters:
        return cls(**{name: changes[name] if name in changes else getattr(node, name) for name in known[0]})
    new = _new(cls)
    for name, set_slot in setters:
        set_slot(new, changes[name] if name in changes else getattr(node, name))
    new.__post_init__()
    return new


_new = object.__new__


_FIELD_NAMES: dict[type, tuple[tuple[str, ...], frozenset[str]]] = {}


def _cloned(value: Any) -> Any:
    kind = type(value)
    if kind is tuple or kind is list:
        return tuple(clone(c) if is_node(c) else c for c in value)
    if is_node(value):
        return clone(value)
    return value


_SETTERS: dict[type, tuple[tuple[str, Any], ...]] = {}


def _slot_setters(cls: type) -> tuple[tuple[str, Any], ...]:
    """(field, the slot's setter) for every field of a slotted node class; () otherwise."""
    out = []
    for f in dataclasses.fields(cls):
        for klass in cls.__mro__:
            slot = klass.__dict__.get(f.name)
            if slot is not None:
                break
        else:
            return ()
        if type(slot).__name__ != "member_descriptor":
            return ()
        out.append((f.name, slot.__set__))
    return tuple(out)
