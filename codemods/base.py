"""What every refactor-tool codemod shares.

Each step of PLAN.md is a :class:`RefactorCodemod`: a libcst ``VisitorBasedCodemodCommand``
that takes the cross-file analysis of its phase as a constructor argument. The engine builds
that analysis once per phase and hands it in; when the codemod is run by libcst's own runner
(``python -m libcst.tool codemod phase1.RemoveSessionApis sologm``), the analysis is built on
first use from the project that contains the file being transformed.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import fields as dataclass_fields
from dataclasses import replace
from pathlib import Path
from types import MethodType
from typing import Any, ClassVar, Generator

import libcst as cst
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.metadata import MetadataWrapper, PositionProvider

from codemods import fastcst
from refactor_tool.config import Config
from refactor_tool.project import Project

_ANALYSIS_CACHE: dict[tuple[str, str], Any] = {}


# ---------------------------------------------------------------------------------------
# Fast visitor dispatch.
#
# libcst's MatcherDecoratableTransformer / MatcherDecoratableVisitor (the base of every
# codemod, and of libcst's own AddImportsVisitor / RemoveImportsVisitor and the visitors
# they run) evaluate their decorator bookkeeping and build two method names with getattr for
# every node and every child attribute, even when no matcher decorator is used at all.
# Measured on the bundled target, a codemod that does nothing cost five times a parse that
# way, and RemoveImportsVisitor over one 600-line conftest took over a second.
#
# The replacement below is behaviour-preserving: an instance that has matcher decorators
# (``@m.call_if_inside``, ``@m.visit``...) or handlers set on the instance takes libcst's
# original path; any other instance dispatches straight to its ``visit_*`` / ``leave_*``
# methods, looked up once per class and node type, and skips libcst's generated no-op
# stubs. The decision is made per instance, so third-party visitors keep working unchanged.

_STUB_MODULE = "libcst._typed_visitor"
_HANDLER_NAMES: dict[type, dict[Any, str | None]] = {}
_HAS_ATTRIBUTE_HANDLERS: dict[type, bool] = {}


def _handler_name(cls: type, name: str) -> str | None:
    """``name`` if ``cls`` really defines it (not libcst's generated stub), else None."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return None if klass.__module__ == _STUB_MODULE else name
    return None


def _has_attribute_handlers(cls: type) -> bool:
    found = _HAS_ATTRIBUTE_HANDLERS.get(cls)
    if found is None:
        found = any(
            name.count("_") >= 2 and _handler_name(cls, name) is not None
            for name in dir(cls)
            if name.startswith(("visit_", "leave_"))
        )
        _HAS_ATTRIBUTE_HANDLERS[cls] = found
    return found


def _lookup(obj: object, prefix: str, node_type: type) -> str | None:
    cls = type(obj)
    table = _HANDLER_NAMES.get(cls)
    if table is None:
        table = _HANDLER_NAMES[cls] = {}
    key = (prefix, node_type)
    try:
        return table[key]
    except KeyError:
        name = table[key] = _handler_name(cls, prefix + node_type.__name__)
        return name


def _lookup_attribute(obj: object, prefix: str, node_type: type, attribute: str) -> str | None:
    table = _HANDLER_NAMES.setdefault(type(obj), {})
    key = (prefix, node_type, attribute)
    if key not in table:
        table[key] = _handler_name(type(obj), f"{prefix}{node_type.__name__}_{attribute}")
    return table[key]


_OUR_HOOKS: set[Any] = set()  # the dispatch functions installed below
_ATTRIBUTE_MODE: dict[Any, Any] = {}  # an installed attribute hook -> its mode function
_HANDLED: dict[type, int | None] = {}


def _handled_mask(cls: type) -> int | None:
    """The node classes ``cls`` has a real handler for; None when the class dispatches by
    itself (``m.replace``'s transformer overrides ``on_leave``): nothing may be skipped."""
    if cls not in _HANDLED:
        hooks = ("on_visit", "on_leave", "on_visit_attribute", "on_leave_attribute")
        if any(getattr(cls, hook, None) not in _OUR_HOOKS for hook in hooks):
            _HANDLED[cls] = None
        else:
            _HANDLED[cls] = fastcst.handled_mask(cls)
    return _HANDLED[cls]


def _prunable(obj: object, node_type: type) -> bool:
    """No handler of ``obj`` can fire on a node of ``node_type`` or anywhere below it, so
    the traversal may skip the subtree: nothing would observe or change it."""
    cls = type(obj)
    table = _HANDLER_NAMES.get(cls)
    if table is None:
        table = _HANDLER_NAMES[cls] = {}
    key = ("prune", node_type)
    try:
        return table[key]  # type: ignore[return-value]
    except KeyError:
        found = table[key] = not fastcst.may_contain(node_type, _handled_mask(cls))  # type: ignore[assignment]
        return found  # type: ignore[return-value]


_FIELDS: dict[type, tuple[str, ...]] = {}


def _unchanged(original: cst.CSTNode, updated: Any) -> bool:
    """``updated`` is libcst's rebuilt copy of ``original`` with the very same children."""
    cls = type(original)
    if type(updated) is not cls:
        return False
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclass_fields(cls))
    for name in names:
        a = getattr(original, name)
        b = getattr(updated, name)
        if a is b:
            continue
        if (
            isinstance(a, (tuple, list))
            and isinstance(b, (tuple, list))
            and len(a) == len(b)
            and all(x is y for x, y in zip(a, b))
        ):
            continue
        return False
    return True


def _mode(obj: Any) -> int:
    """0: libcst's own dispatch (matcher decorators, or handlers set on the instance);
    1: plain dispatch, no ``visit_<Node>_<attribute>`` handlers; 2: plain with them."""
    mode = obj.__dict__.get("_refactor_tool_dispatch")
    if mode is None:
        missing = object()  # an attribute this libcst does not have: use its own dispatch
        plain = (
            not getattr(obj, "_matchers", missing)
            and not getattr(obj, "_extra_visit_funcs", missing)
            and not getattr(obj, "_extra_leave_funcs", missing)
            and not any(k.startswith(("visit_", "leave_")) for k in obj.__dict__)
        )
        mode = 0 if not plain else 2 if _has_attribute_handlers(type(obj)) else 1
        obj.__dict__["_refactor_tool_dispatch"] = mode
    return mode


_UNDECORATED: dict[type, bool] = {}


def _undecorated(cls: type) -> bool:
    """No function of ``cls`` (or its bases) carries a matcher decorator."""
    found = _UNDECORATED.get(cls)
    if found is None:
        from libcst.matchers import _decorators as d

        attrs = (
            d.VISIT_POSITIVE_MATCHER_ATTR,
            d.VISIT_NEGATIVE_MATCHER_ATTR,
            d.CONSTRUCTED_VISIT_MATCHER_ATTR,
            d.CONSTRUCTED_LEAVE_MATCHER_ATTR,
        )
        found = not any(
            hasattr(value, attr)
            for klass in cls.__mro__
            if klass.__module__ != _STUB_MODULE
            for value in vars(klass).values()
            for attr in attrs
        )
        _UNDECORATED[cls] = found
    return found


def _install_fast_dispatch() -> None:
    from libcst.matchers import MatcherDecoratableTransformer as MT
    from libcst.matchers import MatcherDecoratableVisitor as MV
    from libcst.matchers import _decorators, _visitors

    if getattr(MT, "_refactor_tool_fast", False):
        return
    # Everything the replacement relies on is checked before anything is patched, so a
    # libcst release with other internals keeps its own dispatch, whole.
    needed = [
        (_visitors, "_gather_matchers"),
        (_visitors, "_gather_constructed_visit_funcs"),
        (_visitors, "_gather_constructed_leave_funcs"),
        (_decorators, "VISIT_POSITIVE_MATCHER_ATTR"),
        (_decorators, "VISIT_NEGATIVE_MATCHER_ATTR"),
        (_decorators, "CONSTRUCTED_VISIT_MATCHER_ATTR"),
        (_decorators, "CONSTRUCTED_LEAVE_MATCHER_ATTR"),
    ]
    if not all(hasattr(module, name) for module, name in needed):
        return

    # Construction walks dir() of the instance (every generated visit_/leave_ stub, some
    # two thousand names) three times to collect decorated methods; a class without any
    # decorator has none to find, which is known once per class.
    def skip_if_undecorated(gather: Any) -> Any:
        def gather_fast(obj: object) -> Any:
            if _undecorated(type(obj)) and not any(
                k.startswith(("visit_", "leave_")) for k in getattr(obj, "__dict__", {})
            ):
                return {}
            return gather(obj)

        return gather_fast

    for name in ("_gather_matchers", "_gather_constructed_visit_funcs", "_gather_constructed_leave_funcs"):
        setattr(_visitors, name, skip_if_undecorated(getattr(_visitors, name)))
    t_visit, t_leave, t_visit_attr, t_leave_attr = MT.on_visit, MT.on_leave, MT.on_visit_attribute, MT.on_leave_attribute
    v_visit, v_leave, v_visit_attr, v_leave_attr = MV.on_visit, MV.on_leave, MV.on_visit_attribute, MV.on_leave_attribute

    def on_visit(self: Any, node: cst.CSTNode, _orig: Any = None) -> bool:
        if not (self.__dict__.get("_refactor_tool_dispatch") or _mode(self)):
            return _orig(self, node)
        name = _lookup(self, "visit_", type(node))
        if name is None:
            return not _prunable(self, type(node))
        return getattr(self, name)(node) is not False

    def t_on_visit(self: Any, node: cst.CSTNode) -> bool:
        return on_visit(self, node, t_visit)

    def v_on_visit(self: Any, node: cst.CSTNode) -> bool:
        return on_visit(self, node, v_visit)

    def t_on_leave(self: Any, original_node: Any, updated_node: Any) -> Any:
        if not (self.__dict__.get("_refactor_tool_dispatch") or _mode(self)):
            return t_leave(self, original_node, updated_node)
        if updated_node is not original_node and _unchanged(original_node, updated_node):
            updated_node = original_node
        name = _lookup(self, "leave_", type(original_node))
        if name is None:
            return updated_node
        return getattr(self, name)(original_node, updated_node)

    def v_on_leave(self: Any, original_node: Any) -> None:
        if not (self.__dict__.get("_refactor_tool_dispatch") or _mode(self)):
            return v_leave(self, original_node)
        name = _lookup(self, "leave_", type(original_node))
        if name is not None:
            getattr(self, name)(original_node)

    def attribute_hook(prefix: str, orig: Any) -> Any:
        def hook(self: Any, node: cst.CSTNode, attribute: str) -> None:
            mode = self.__dict__.get("_refactor_tool_dispatch")
            if mode == 1:
                return None
            if mode is None:
                mode = _mode(self)
            if not mode:
                return orig(self, node, attribute)
            name = _lookup_attribute(self, prefix, type(node), attribute)
            if name is not None:
                getattr(self, name)(node)

        return hook

    MT.on_visit, MT.on_leave = t_on_visit, t_on_leave
    MT.on_visit_attribute = attribute_hook("visit_", t_visit_attr)
    MT.on_leave_attribute = attribute_hook("leave_", t_leave_attr)
    MV.on_visit, MV.on_leave = v_on_visit, v_on_leave
    MV.on_visit_attribute = attribute_hook("visit_", v_visit_attr)
    MV.on_leave_attribute = attribute_hook("leave_", v_leave_attr)
    _OUR_HOOKS.update(
        getattr(klass, hook)
        for klass in (MT, MV)
        for hook in ("on_visit", "on_leave", "on_visit_attribute", "on_leave_attribute")
    )
    for klass in (MT, MV):
        _ATTRIBUTE_MODE[klass.on_visit_attribute] = _mode
        _ATTRIBUTE_MODE[klass.on_leave_attribute] = _mode
    MT._refactor_tool_fast = True
    _install_fast_base_dispatch()


def _base_mode(obj: Any) -> int:
    """For plain CSTVisitor / CSTTransformer subclasses: 0 libcst's own dispatch (handlers
    set on the instance), 1 straight dispatch without attribute hooks, 2 with them."""
    state = getattr(obj, "__dict__", None)
    if state is None:
        return 0
    mode = state.get("_refactor_tool_base")
    if mode is None:
        if any(k.startswith(("visit_", "leave_")) for k in state):
            mode = 0
        else:
            mode = 2 if _has_attribute_handlers(type(obj)) else 1
        state["_refactor_tool_base"] = mode
    return mode


def _install_fast_base_dispatch() -> None:
    """The same straight dispatch for plain ``CSTVisitor`` / ``CSTTransformer`` subclasses
    (the analyses' visitors, libcst's import helpers): libcst builds two method names and
    calls getattr for every child attribute of every node."""
    T, V = cst.CSTTransformer, cst.CSTVisitor
    originals = {
        (klass, name): getattr(klass, name)
        for klass in (T, V)
        for name in ("on_visit", "on_leave", "on_visit_attribute", "on_leave_attribute")
    }

    def make_on_visit(klass: type) -> Any:
        orig = originals[(klass, "on_visit")]

        def on_visit(self: Any, node: cst.CSTNode) -> bool:
            if not (self.__dict__.get("_refactor_tool_base") or _base_mode(self)):
                return orig(self, node)
            name = _lookup(self, "visit_", type(node))
            if name is None:
                return not _prunable(self, type(node))
            return getattr(self, name)(node) is not False

        return on_visit

    def t_on_leave(self: Any, original_node: Any, updated_node: Any) -> Any:
        if not (self.__dict__.get("_refactor_tool_base") or _base_mode(self)):
            return originals[(T, "on_leave")](self, original_node, updated_node)
        if updated_node is not original_node and _unchanged(original_node, updated_node):
            updated_node = original_node
        name = _lookup(self, "leave_", type(original_node))
        if name is None:
            return updated_node
        return getattr(self, name)(original_node, updated_node)

    def v_on_leave(self: Any, original_node: Any) -> None:
        if not (self.__dict__.get("_refactor_tool_base") or _base_mode(self)):
            return originals[(V, "on_leave")](self, original_node)
        name = _lookup(self, "leave_", type(original_node))
        if name is not None:
            getattr(self, name)(original_node)

    def make_attribute_hook(klass: type, prefix: str, name: str) -> Any:
        orig = originals[(klass, name)]

        def hook(self: Any, node: cst.CSTNode, attribute: str) -> None:
            # called for every child attribute of every node: the mode is read inline
            try:
                mode = self.__dict__["_refactor_tool_base"]
            except (AttributeError, KeyError):
                mode = _base_mode(self)
            if mode == 1:
                return None
            if not mode:
                return orig(self, node, attribute)
            found = _lookup_attribute(self, prefix, type(node), attribute)
            if found is not None:
                getattr(self, found)(node)

        return hook

    for klass in (T, V):
        klass.on_visit = make_on_visit(klass)
        klass.on_visit_attribute = make_attribute_hook(klass, "visit_", "on_visit_attribute")
        klass.on_leave_attribute = make_attribute_hook(klass, "leave_", "on_leave_attribute")
    T.on_leave = t_on_leave
    V.on_leave = v_on_leave
    plain = [
        getattr(klass, hook)
        for klass in (T, V)
        for hook in ("on_visit", "on_leave", "on_visit_attribute", "on_leave_attribute")
    ]
    _OUR_HOOKS.update(plain)
    fastcst.PLAIN_HOOKS.update(plain)  # fastcst.walk calls such visitors' handlers directly
    for klass in (T, V):
        _ATTRIBUTE_MODE[klass.on_visit_attribute] = _base_mode
        _ATTRIBUTE_MODE[klass.on_leave_attribute] = _base_mode


try:
    _install_fast_dispatch()
except (AttributeError, ImportError):  # a libcst whose internals differ: keep its own dispatch
    pass


# ---------------------------------------------------------------------------------------
# Transformers without rebuilding what they do not change.
#
# libcst's ``node.visit(transformer)`` builds (and validates) a new copy of every node it
# passes, changed or not; the dispatch above then hands the original back where nothing
# below changed. :func:`transform` runs the same protocol (the same hook calls in the same
# order, the same handling of RemovalSentinel / FlattenSentinel and of emptied statement
# lines) but builds a new node only where a child really changed.

_BODY_FIELDS = {(cst.Module, "body"), (cst.IndentedBlock, "body")}
_REMOVAL: dict[tuple[type, str], str] = {}


def _removal(cls: type, name: str) -> str:
    """What a removed child of ``cls.name`` becomes: "none", "sentinel" or "error"."""
    key = (cls, name)
    found = _REMOVAL.get(key)
    if found is None:
        import types
        import typing

        try:
            hint = typing.get_type_hints(cls).get(name)
        except Exception:  # noqa: BLE001 - unreadable annotations: libcst's own rule
            hint = None
        args = set(typing.get_args(hint)) if typing.get_origin(hint) in (typing.Union, types.UnionType) else set()
        if type(None) in args:
            found = "none"
        elif cst.MaybeSentinel in args:
            found = "sentinel"
        else:
            found = "error"
        _REMOVAL[key] = found
    return found


def _attribute_hooks(visitor: Any) -> bool:
    """Whether the attribute hooks can do anything for this visitor."""
    cls = type(visitor)
    mode_of = _ATTRIBUTE_MODE.get(cls.on_visit_attribute)
    if mode_of is None or _ATTRIBUTE_MODE.get(cls.on_leave_attribute) is not mode_of:
        return True  # hooks of its own
    return mode_of(visitor) != 1


def _fields_for(visitor: Any, node: Any) -> tuple[str, ...]:
    table = _HANDLER_NAMES.get(type(visitor))
    if table is None:
        table = _HANDLER_NAMES[type(visitor)] = {}
    key = ("fields", type(node))
    found = table.get(key)
    if found is None:
        found = table[key] = fastcst.fields_reaching(node, _handled_mask(type(visitor)))  # type: ignore[assignment]
    return found  # type: ignore[return-value]


def transform(node: Any, visitor: Any) -> Any:
    """``node.visit(visitor)`` for a transformer, rebuilding only changed nodes."""
    result = _transform(node, visitor, _attribute_hooks(visitor), _only(visitor))
    if isinstance(node, cst.Module) and isinstance(result, cst.RemovalSentinel):
        return node.with_changes(body=(), header=(), footer=())
    return result


def _only(visitor: Any) -> set[int] | None:
    """The transformer's ``visits_only``: ``id`` of every node it needs to see (None: all).

    A transformer that knows where its work is (the paths down to the names it rewrites, say)
    sets it before the traversal; any other child subtree is then kept as it is without a
    call to any hook, exactly as if its ``on_visit`` had returned False and its
    ``on_leave`` had returned the node. Not used with attribute hooks.
    """
    only = getattr(visitor, "visits_only", None)
    return only if only is not None and not _attribute_hooks(visitor) else None


def _transform(node: Any, v: Any, hooks: bool, only: set[int] | None = None) -> Any:
    if v.on_visit(node):
        cls = type(node)
        if hooks:
            names, always = fastcst._order(node)
        else:  # nothing happens on attributes: skip those no handler can fire in
            names, always = _fields_for(v, node), 0
        changes: dict[str, Any] | None = None
        is_node = fastcst.IS_NODE
        for i, name in enumerate(names):
            value = getattr(node, name)
            kind = type(value)
            if kind is not tuple and kind is not list and (is_node.get(kind) or fastcst.is_node(value)):
                if only is not None and id(value) not in only:
                    continue
                if hooks:
                    v.on_visit_attribute(node, name)
                new = _transform(value, v, hooks, only)
                if new is not value:
                    if is_node.get(type(new)):
                        pass  # a node: the common case, without the ABC checks below
                    elif isinstance(new, cst.FlattenSentinel):
                        raise TypeError(
                            f"We got a FlattenSentinel while visiting a {type(value).__name__}. This "
                            "node's parent does not allow for it to be it to be replaced with a sequence."
                        )
                    if isinstance(new, cst.RemovalSentinel):
                        policy = _removal(cls, name)
                        if policy == "error":
                            raise TypeError(
                                f"We got a RemovalSentinel while visiting a {type(value).__name__}. "
                                "This node's parent does not allow it to be removed."
                            )
                        new = None if policy == "none" else cst.MaybeSentinel.DEFAULT
                    if changes is None:
                        changes = {}
                    changes[name] = new
                if hooks:
                    v.on_leave_attribute(node, name)
            elif kind is tuple or kind is list:
                if hooks:
                    v.on_visit_attribute(node, name)
                body = (cls, name) in _BODY_FIELDS
                out: list[Any] | None = None
                for k, child in enumerate(value):
                    if not (is_node.get(type(child)) or fastcst.is_node(child)) or (
                        only is not None and id(child) not in only
                    ):
                        if out is not None:
                            out.append(child)
                        continue
                    new = _transform(child, v, hooks, only)
                    if new is child:
                        if out is not None:
                            out.append(child)
                        continue
                    if out is None:
                        out = list(value[:k])
                    if is_node.get(type(new)):
                        if not (body and not child._is_removable() and new._is_removable()):
                            out.append(new)
                        continue
                    if isinstance(new, cst.RemovalSentinel):
                        continue
                    if isinstance(new, cst.FlattenSentinel):
                        for part in new:
                            if body and not child._is_removable() and part._is_removable():
                                continue
                            out.append(part)
                    elif not (body and not child._is_removable() and new._is_removable()):
                        out.append(new)
                if out is not None:
                    if changes is None:
                        changes = {}
                    changes[name] = tuple(out)
                if hooks:
                    v.on_leave_attribute(node, name)
            elif i < always and hooks:
                v.on_visit_attribute(node, name)
                v.on_leave_attribute(node, name)
        updated = fastcst.with_changes(node, changes) if changes else node
    else:
        updated = node
    result = v.on_leave(node, updated)
    if (
        result is not updated
        and result is not node
        and not fastcst.IS_NODE.get(type(result))
        and not fastcst.is_node(result)
        and not isinstance(result, (cst.RemovalSentinel, cst.FlattenSentinel))
    ):
        raise cst.CSTValidationError(
            "Expected a node of type CSTNode or a RemovalSentinel, "
            + f"but got a return value of {type(result).__name__}"
        )
    return result


def _install_fast_visit() -> None:
    """Every ``node.visit(...)`` in the process, libcst's own helpers included (imports
    added and removed, metadata providers, ``m.replace``), goes through :func:`transform`
    for transformers and :func:`fastcst.walk` for visitors: the same calls in the same order,
    without rebuilding unchanged nodes."""
    node_cls = cst.CSTNode
    if getattr(node_cls.visit, "_refactor_tool", False):
        return
    libcst_visit = node_cls.visit

    def visit(self: Any, visitor: Any) -> Any:
        if isinstance(visitor, cst.CSTTransformer):
            return _transform(self, visitor, _attribute_hooks(visitor), _only(visitor))
        if isinstance(visitor, cst.CSTVisitor):
            fastcst.walk(self, visitor)
            return self
        return libcst_visit(self, visitor)

    visit.__doc__ = libcst_visit.__doc__
    visit._refactor_tool = True  # type: ignore[attr-defined]
    node_cls.visit = visit  # type: ignore[method-assign]
    _VISITS.extend((libcst_visit, visit))


_VISITS: list[Any] = []  # libcst's CSTNode.visit and ours


@contextmanager
def libcst_visit_only() -> Generator[None, None, None]:
    """libcst's own ``CSTNode.visit`` for the duration (the tests' reference)."""
    if not _VISITS:
        yield
        return
    cst.CSTNode.visit = _VISITS[0]  # type: ignore[method-assign]
    try:
        yield
    finally:
        cst.CSTNode.visit = _VISITS[1]  # type: ignore[method-assign]


if _OUR_HOOKS:  # the dispatch above is installed: its bookkeeping is what transform reads
    _install_fast_visit()


def _install_fast_with_changes() -> None:
    """Every ``node.with_changes(...)`` in the process is :func:`fastcst.with_changes`: the
    same new node, validated the same way, with libcst's own error for an unknown field,
    without ``dataclasses.replace``'s walk over the field records at every call."""
    node_cls = cst.CSTNode
    libcst_with_changes = node_cls.with_changes
    if getattr(libcst_with_changes, "_refactor_tool", False):
        return

    def with_changes(self: Any, **changes: Any) -> Any:
        return fastcst.with_changes(self, changes)

    with_changes.__doc__ = libcst_with_changes.__doc__
    with_changes._refactor_tool = True  # type: ignore[attr-defined]
    node_cls.with_changes = with_changes  # type: ignore[method-assign]
    _WITH_CHANGES.append(libcst_with_changes)


_WITH_CHANGES: list[Any] = []  # libcst's own CSTNode.with_changes

_install_fast_with_changes()


def find_project_root(filename: str | None) -> Path:
    """The nearest directory above ``filename`` holding a ``pyproject.toml`` (else the cwd)."""
    if filename:
        here = Path(filename).resolve().parent
        for candidate in (here, *here.parents):
            if (candidate / "pyproject.toml").is_file():
                return candidate
    return Path.cwd().resolve()


class RefactorCodemod(VisitorBasedCodemodCommand):
    """Base class: the step it implements, its analysis, and file:line reports."""

    STEP: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""
    #: module-level function ``analyze(project) -> analysis`` of the codemod's phase
    ANALYZE: ClassVar[Any] = None

    def __init__(self, context: CodemodContext, analysis: Any = None) -> None:
        super().__init__(context)
        self._analysis = analysis
        self._positions: Any = None
        self._reports = 0
        self._tree: cst.Module | None = None

    # ------------------------------------------------------------ analysis
    @property
    def analysis(self) -> Any:
        if self._analysis is None:
            analyze = type(self).ANALYZE
            root = find_project_root(self.context.filename)
            key = (type(self).__module__, str(root))
            if key not in _ANALYSIS_CACHE:
                _ANALYSIS_CACHE[key] = analyze(Project(root)) if analyze else None
            self._analysis = _ANALYSIS_CACHE[key]
        return self._analysis

    @property
    def config(self) -> Config:
        config = getattr(self.analysis, "config", None)
        return config if isinstance(config, Config) else Config()

    # ------------------------------------------------------------ reports
    def report(self, node: cst.CSTNode, message: str) -> None:
        """Record a manual-attention item as ``line N: message`` (the engine adds the path).

        ``node`` must be a node of the tree this codemod was given (an ``original_node``).
        Positions are computed only when something is reported.
        """
        line = None
        if self._tree is not None:
            self._reports += 1
            if self._positions is None and self._reports <= 3:
                # a few reports: print the module only up to each node
                line = fastcst.line_of(self._tree, node)
            else:
                if self._positions is None:
                    wrapper = MetadataWrapper(self._tree, unsafe_skip_copy=True)
                    self._positions = wrapper.resolve(PositionProvider)
                pos = self._positions.get(node)
                line = pos.start.line if pos is not None else None
        self.context.warnings.append(f"{line or 0}\t{self.STEP}\t{message}")

    # ------------------------------------------------------------ libcst plumbing
    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        self._tree = tree
        self._positions = None
        self._reports = 0
        return transform(tree, self)

    @contextmanager
    def _handle_metadata_reference(self, module: cst.Module) -> Generator[cst.Module, None, None]:
        # libcst's default deep-copies the module for every codemod so metadata keys are
        # unique; trees that come out of parse_module already are, and the engine never
        # shares one between threads, so the copy is skipped.
        oldwrapper = self.context.wrapper
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        with self.resolve(wrapper):
            self.context = replace(self.context, wrapper=wrapper)
            try:
                yield wrapper.module
            finally:
                self.context = replace(self.context, wrapper=oldwrapper)

    def _instantiate_and_run(self, transform: Any, tree: cst.Module) -> cst.Module:
        # libcst runs AddImportsVisitor / RemoveImportsVisitor here when imports were
        # scheduled, each behind a deep copy of the module made for metadata keys. A
        # transform that needs no metadata (AddImportsVisitor) gets the tree as it is;
        # one that does (RemoveImportsVisitor: scopes) keeps libcst's copy, since a codemod
        # may have put one node object in two places.
        return run_helper(transform, self.context, tree)


def run_helper(transform: Any, context: CodemodContext, tree: cst.Module) -> cst.Module:
    """Run one of libcst's helper transforms (AddImportsVisitor...) on ``tree``; one that
    needs no metadata works on the tree as it is, without libcst's deep copy of it."""
    inst = transform(context)
    if not inst.get_inherited_dependencies():
        inst._handle_metadata_reference = MethodType(RefactorCodemod._handle_metadata_reference, inst)
    return inst.transform_module(tree)


# ---------------------------------------------------------------------------------------
# Phase and step descriptions: each codemods/phaseN.py exports one PHASE built from these,
# and refactor_tool.phases collects them into the registry.


class StepSpec:
    """One step of PLAN.md: its number, title and the codemods that carry it out."""

    def __init__(
        self,
        id: str,
        title: str,
        codemods: tuple[type[RefactorCodemod], ...] = (),
        *,
        generates: bool = False,
        note: str = "",
    ) -> None:
        self.id = id
        self.title = title
        self.codemods = codemods
        self.generates = generates  # carried out by the phase's ``generate`` (new files)
        self.note = note  # how the tool carries out a step that is not a codemod

    @property
    def mechanical(self) -> bool:
        return bool(self.codemods) or self.generates

    def __repr__(self) -> str:
        return f"StepSpec({self.id!r}, {self.title!r})"


class PhaseSpec:
    """A phase: steps, the files it needs, its analysis and (optionally) generated files.

    ``files(project, analysis)`` returns the relative paths the phase may change, already
    narrowed by a cheap text prefilter; only those are parsed and transformed.
    ``generate(project, analysis, step_ids)`` returns whole files to create or replace
    (relpath -> bytes, or None to delete) and runs after the codemods.
    ``postprocess(project, changes)`` may rewrite the phase's output (phase 6: ruff format).
    """

    def __init__(
        self,
        number: int,
        title: str,
        goal: str,
        steps: tuple[StepSpec, ...],
        *,
        files: Any,
        analyze: Any,
        generate: Any = None,
        postprocess: Any = None,
        verification: str = "",
    ) -> None:
        self.number = number
        self.title = title
        self.goal = goal
        self.steps = steps
        self.files = files
        self.analyze = analyze
        self.generate = generate
        self.postprocess = postprocess
        self.verification = verification

    def step(self, step_id: str) -> StepSpec:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def __repr__(self) -> str:
        return f"PhaseSpec({self.number}, {self.title!r})"
