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
ancestor when the class has none, and extended with the ancestor's when it hands its
``*args``/``**kwargs`` on to it) and which parameters are other managers: a parameter
whose annotation names a manager class, or, without such an annotation, whose name is
``<short>_manager`` of a known manager (``GameManager`` -> ``game``).

The module also holds the small libcst helpers that the phase codemods share.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import libcst as cst
import libcst.matchers as m
from libcst.helpers import (
    get_absolute_module_from_package_for_import,
    get_full_name_for_node,
)
from libcst.matchers import matches

from refactor_tool.model.config import Config
from refactor_tool.model.project import InputError, Project
from refactor_tool.model.syntax import Visitor, code, findall, line_of

# ------------------------------------------------------------------------------- helpers


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
    resolved), None outside the target."""
    if not context_filename:
        return None
    try:
        rel = (
            Path(context_filename)
            .resolve()
            .relative_to(Path(root).resolve())
            .as_posix()
        )
    except ValueError:
        return None
    return rel


def import_map(module: cst.Module, module_name: str, rel: str) -> dict[str, str]:
    """Local name -> dotted origin, for every import in the module (any depth).

    ``from a.b import C as D`` -> ``{"D": "a.b.C"}``; ``import a.b`` -> ``{"a": "a"}``;
    ``import a.b as ab`` -> ``{"ab": "a.b"}``. Relative imports are made absolute.
    Imports inside functions and ``if TYPE_CHECKING:`` blocks count too: a name only
    used in annotations is imported there.
    """
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
    if matches(annotation, m.BinaryOperation(operator=m.BitOr(), right=m.Name("None"))):
        return cst.ensure_type(annotation, cst.BinaryOperation).left
    if matches(annotation, m.BinaryOperation(operator=m.BitOr(), left=m.Name("None"))):
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


def _annotation_text_names(text: str) -> list[str]:
    """:func:`annotation_names` of an annotation's source text."""
    return annotation_names(cst.parse_expression(text))


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
    default: str | None = None  # source text of the default, None without one


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
    #: where the base manager's ``__init__`` stores the session (``self._session = session``);
    #: None when it stores it nowhere visible
    session_attr: str | None = None

    def in_file(self, rel: str | None) -> dict[str, ManagerClass]:
        return self.by_rel.get(rel or "", {})

    def init_params(self, cls: ManagerClass) -> list[Param]:
        """The ``__init__`` parameters that apply to ``cls`` (own or inherited).

        An ``__init__`` that hands its ``*args`` or ``**kwargs`` on to its base's
        (``super().__init__(*args, **kwargs)``) takes the base's parameters as well, in
        their place: its own first, then the base's that the call does not pass itself
        (positional ones stay positional only when ``*args`` is handed on, keyword ones
        stay only when ``**kwargs`` is)."""
        return self._init_params(cls, set())

    def _init_params(self, cls: ManagerClass, seen: set[str]) -> list[Param]:
        for current in self.lineage(cls, seen):
            if current.params is None:
                continue
            init = own_init(current.node) if current.node is not None else None
            forwarded = _forwarded_to_base(init, current.params) if init else None
            parent = next((b for b in current.bases if b in self.classes), None)
            if forwarded is None or parent is None:
                return current.params
            star, starstar, passed = forwarded
            return _merged_params(
                current.params, self._init_params(self.classes[parent], seen), star, starstar, passed
            )
        return []

    def lineage(
        self, cls: ManagerClass, seen: set[str] | None = None
    ) -> Iterator[ManagerClass]:
        """``cls`` and the manager classes it derives from, nearest first, each once (and
        none of ``seen``, the qualified names of classes met already, which it extends)."""
        seen = set() if seen is None else seen
        todo = [cls]
        while todo:
            current = todo.pop(0)
            if current.qualified in seen:
                continue
            seen.add(current.qualified)
            yield current
            todo.extend(self.classes[b] for b in current.bases if b in self.classes)

    def own_state(self, cls: ManagerClass) -> frozenset[str]:
        """The attributes every instance of ``cls`` gets a container of its own for in an
        ``__init__`` (its own or one it inherits from a manager base): ``self.x = {}``
        (``[]``, ``set()``, ``dict()``, ``defaultdict(...)`` ...). Emptying one touches
        nothing but that instance."""
        found: set[str] = set()
        for current in self.lineage(cls):
            init = own_init(current.node) if current.node is not None else None
            if init is not None:
                found |= _fresh_containers(init)
        return frozenset(found)

    def alternate_constructor(self, cls: ManagerClass, name: str) -> list[Param] | None:
        """The parameters (after ``cls``) of ``cls``'s classmethod ``name`` (own or
        inherited) when it is another constructor of the manager: it builds ``cls(...)``
        passing its own session parameter on (``session=session``), so a call of it is a
        construction that gives the manager its session or not; None otherwise."""
        fn = alternate_constructor_node(self, cls, name)
        return _params(fn) if fn is not None else None

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

    def is_override(self, param: Param) -> bool:
        """Whether ``create_all_managers`` takes this constructor parameter as a keyword:
        a parameter that is not the session nor a manager, can be passed by keyword and
        defaults to ``None``, the shape of a dependency (an API client, a mailer) that the
        constructor builds itself when it is not given one."""
        return (
            param.name != self.config.session_variable
            and param.dependency is None
            and param.kind in ("positional", "kwonly")
            and param.default == "None"
        )

    def factory_overrides(self) -> dict[tuple[str, str], str]:
        """(manager qualified name, parameter) -> the keyword ``create_all_managers`` takes
        for it (see :meth:`is_override`), over the managers the factory builds.

        The keyword is the parameter's name; when managers have parameters of one name with
        different annotations (two different things), each becomes ``<short>_<name>``
        (``oracle_client``)."""
        found: list[tuple[ManagerClass, Param]] = []
        for cls in sorted(self.factory_managers(), key=lambda c: (c.rel, c.name)):
            for param in self.init_params(cls):
                if self.is_override(param):
                    found.append((cls, param))
        annotations: dict[str, set[str | None]] = {}
        for _, param in found:
            annotations.setdefault(param.name, set()).add(
                re.sub(r"\s+", "", param.annotation) if param.annotation else None
            )
        return {
            (cls.qualified, param.name): (
                param.name
                if len(annotations[param.name]) == 1
                else f"{cls.short}_{param.name}"
            )
            for cls, param in found
        }

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
            self._rel_for_module[module_name] = self.project.module_file(module_name)
        return self._rel_for_module[module_name]

    def imports(self, rel: str) -> dict[str, str]:
        if rel not in self._imports:
            module_name = self.project.module_name(rel)
            self._imports[rel] = import_map(self.project.parse(rel), module_name, rel)
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
        default = code(param.default) if param.default is not None else None
        out.append(
            Param(
                param.name.value, ann, param.default is not None, kind, default=default
            )
        )

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


def _forwarded_to_base(
    init: cst.FunctionDef, params: list[Param]
) -> tuple[bool, bool, set[str]] | None:
    """Whether ``init`` hands its ``*args`` and its ``**kwargs`` on to its base's
    ``__init__`` (``super().__init__(...)``, ``super(C, self).__init__(...)`` or
    ``Base.__init__(self, ...)``), and the names that call passes by keyword itself; None
    when it hands on neither."""
    star = next((p.name for p in params if p.kind == "star"), None)
    starstar = next((p.name for p in params if p.kind == "starstar"), None)
    if star is None and starstar is None:
        return None
    for call in findall(init.body, m.Call(func=m.Attribute(attr=m.Name("__init__")))):
        call = cst.ensure_type(call, cst.Call)
        owner = cst.ensure_type(call.func, cst.Attribute).value
        is_super = matches(owner, m.Call(func=m.Name("super")))
        if not is_super and not (
            isinstance(owner, (cst.Name, cst.Attribute))
            and call.args
            and matches(call.args[0], m.Arg(value=m.Name("self"), keyword=None, star=""))
        ):
            continue
        handed_star = any(
            a.star == "*" and matches(a.value, m.Name(star)) for a in call.args
        ) if star else False
        handed_starstar = any(
            a.star == "**" and matches(a.value, m.Name(starstar)) for a in call.args
        ) if starstar else False
        if handed_star or handed_starstar:
            passed = {a.keyword.value for a in call.args if a.keyword is not None}
            return handed_star, handed_starstar, passed
    return None


def _merged_params(
    own: list[Param], base: list[Param], star: bool, starstar: bool, passed: set[str]
) -> list[Param]:
    """``own`` parameters with the handed-on ``*args``/``**kwargs`` replaced by the base's
    parameters they reach (see :meth:`ManagerGraph.init_params`)."""
    names = {p.name for p in own}
    inherited = [p for p in base if p.name not in names and p.name not in passed]
    out = [p for p in own if p.kind in ("posonly", "positional")]
    for p in inherited:
        if p.kind in ("posonly", "positional"):
            if star:
                out.append(p if starstar or p.kind == "posonly" else replace(p, kind="posonly"))
            elif starstar and p.kind == "positional":
                out.append(replace(p, kind="kwonly"))
    if not star:
        out.extend(p for p in own if p.kind == "star")
    else:
        out.extend(p for p in inherited if p.kind == "star")
    out.extend(p for p in own if p.kind == "kwonly")
    if starstar:
        out.extend(p for p in inherited if p.kind in ("kwonly", "starstar"))
    else:
        out.extend(p for p in own if p.kind == "starstar")
    return out


def alternate_constructor_node(
    graph: ManagerGraph, cls: ManagerClass, name: str
) -> cst.FunctionDef | None:
    """The classmethod ``name`` of ``cls`` or of a manager base that builds its own class
    (``cls(...)``, its first parameter) with ``session=<its parameter of that name>``."""
    session = graph.config.session_variable
    seen: set[str] = set()
    todo = [cls]
    while todo:
        current = todo.pop(0)
        if current.qualified in seen or current.node is None:
            continue
        seen.add(current.qualified)
        for stmt in current.node.body.body:
            if isinstance(stmt, cst.FunctionDef) and stmt.name.value == name:
                return stmt if builds_own_class(stmt, session) else None
        todo.extend(graph.classes[b] for b in current.bases if b in graph.classes)
    return None


def plain_alternate_constructor(graph: ManagerGraph, cls: ManagerClass, name: str) -> bool:
    """Whether ``cls``'s other constructor ``name`` builds nothing but ``cls(session=session)``
    from its one parameter, the session: ``Manager.name(s)`` is ``Manager(session=s)``."""
    fn = alternate_constructor_node(graph, cls, name)
    if fn is None:
        return False
    params = fn.params
    session = graph.config.session_variable
    names = [p.name.value for p in (*params.posonly_params, *params.params)]
    if (
        len(names) != 2
        or names[1] != session
        or params.kwonly_params
        or isinstance(params.star_arg, cst.Param)
        or isinstance(params.star_kwarg, cst.Param)
    ):
        return False
    body = fn.body.body if isinstance(fn.body, cst.IndentedBlock) else ()
    statements = [
        s for s in body if not matches(s, m.SimpleStatementLine(body=[m.Expr(m.SimpleString())]))
    ]
    return len(statements) == 1 and matches(
        statements[0],
        m.SimpleStatementLine(
            body=[
                m.Return(
                    m.Call(
                        func=m.Name(names[0]),
                        args=[m.Arg(keyword=m.Name(session), value=m.Name(session))],
                    )
                )
            ]
        ),
    )


def builds_own_class(fn: cst.FunctionDef, session: str) -> bool:
    """Whether ``fn`` is a classmethod that builds its class (``cls(...)``) passing its
    own ``session`` parameter on by keyword: another constructor of a manager."""
    if not any(matches(d, m.Decorator(m.Name("classmethod"))) for d in fn.decorators):
        return False
    params = fn.params
    first = (params.posonly_params or params.params)[:1]
    names = {p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params)}
    if not first or session not in names:
        return False
    own = first[0].name.value
    builds = m.Call(
        func=m.Name(own),
        args=[
            m.ZeroOrMore(),
            m.Arg(keyword=m.Name(session), value=m.Name(session)),
            m.ZeroOrMore(),
        ],
    )
    return bool(findall(fn.body, builds))


def own_init(node: cst.ClassDef) -> cst.FunctionDef | None:
    for stmt in node.body.body:
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value == "__init__":
            return stmt
    return None


#: a new, empty container: ``{}``, ``[]``, ``set()``, ``defaultdict(list)`` ...
FRESH_CONTAINER = (
    m.Dict(elements=[])
    | m.List(elements=[])
    | m.Call(
        func=m.Name(m.MatchIfTrue(lambda n: n in _CONTAINER_TYPES))
        | m.Attribute(attr=m.Name(m.MatchIfTrue(lambda n: n in _CONTAINER_TYPES)))
    )
)
_CONTAINER_TYPES = frozenset(
    {"dict", "list", "set", "OrderedDict", "defaultdict", "Counter", "deque", "WeakValueDictionary"}
)


def _fresh_containers(init: cst.FunctionDef) -> set[str]:
    """The attributes ``init`` gives a new empty container: ``self.x = {}``,
    ``self.x: Dict[int, C] = {}``."""
    found: set[str] = set()
    for node in findall(
        init,
        m.Assign(targets=[m.AssignTarget(m.Attribute(value=m.Name("self")))], value=FRESH_CONTAINER)
        | m.AnnAssign(target=m.Attribute(value=m.Name("self")), value=FRESH_CONTAINER),
    ):
        if isinstance(node, cst.Assign):
            target = node.targets[0].target
        else:
            target = cst.ensure_type(node, cst.AnnAssign).target
        found.add(cst.ensure_type(target, cst.Attribute).attr.value)
    return found


def stored_attribute(init: cst.FunctionDef, name: str) -> str | None:
    """The attribute ``init`` stores its parameter ``name`` in: ``x`` of the first
    ``self.x = name`` (None when it stores it nowhere)."""
    for assign in findall(
        init,
        m.Assign(
            targets=[m.AssignTarget(m.Attribute(value=m.Name("self")))],
            value=m.Name(name),
        ),
    ):
        target = cst.ensure_type(
            cst.ensure_type(assign, cst.Assign).targets[0].target, cst.Attribute
        )
        return target.attr.value
    return None


def _class_defs(module: cst.Module) -> list[tuple[cst.ClassDef, bool]]:
    """Every class in the module, with whether it is at module level."""
    top = {id(s) for s in module.body if isinstance(s, cst.ClassDef)}
    return [
        (n, id(n) in top)
        for n in iter_statements(module.body)
        if isinstance(n, cst.ClassDef)
    ]


def _may_subclass(project: Project, rels: list[str], names: set[str]) -> list[str]:
    """The text prefilter of the subclass search: files that can define a subclass of one
    of ``names`` (``class X(... Name ...)``, also dotted or subscripted) or import one of
    them under another name (``Name as Alias``). Only these are parsed."""
    alternatives = "|".join(re.escape(n) for n in sorted(names))
    pattern = re.compile(
        rf"class\s+\w+\s*\([^)]*\b(?:{alternatives})\b|\b(?:{alternatives})\s+as\s".encode()
    )
    return [
        rel
        for rel in project.grep(rels, *sorted(names))
        if pattern.search(project.read_bytes(rel))
    ]


def analyze_managers(project: Project) -> ManagerGraph:
    """Find the base manager and every manager subclass in the target.

    The graph is a function of the configuration and of the target's Python files: it is kept
    in ``project.memo`` with the files' contents, and a later question about the same tree
    (another phase, a gate, ``check``) gets the same object, which nothing changes after
    this; any changed, created or deleted file means a new search."""
    key = (
        project.config,
        tuple((rel, project.read_bytes(rel)) for rel in project.python_files()),
    )
    memo = project.memo.setdefault("managers", {})
    assert isinstance(memo, dict)
    graph = memo.get(key)
    if graph is None:
        graph = memo[key] = _analyze_managers(project)
    return graph


class _CallsNamed(Visitor):
    """Calls of a name or attribute whose last part is one of ``names``."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.found: list[cst.Call] = []

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        last = func.attr if isinstance(func, cst.Attribute) else func
        if isinstance(last, cst.Name) and last.value in self.names:
            self.found.append(node)


def calls_without_session(
    project: Project, graph: ManagerGraph, rel: str
) -> list[tuple[cst.Call, ManagerClass]]:
    """Calls in ``rel`` of a manager class whose constructor requires the session (no
    default), that pass none (see :func:`constructions_without_session`)."""
    names = {c.name for c in graph.classes.values()}
    if not project.grep([rel], *(f"{n}(" for n in names)):
        return []  # no call of a manager class by its name (an alias is checked below)
    return constructions_without_session(
        project.parse(rel), project.module_name(rel), rel, graph
    )


def constructions_without_session(
    tree: cst.Module,
    module_name: str,
    rel: str,
    graph: ManagerGraph,
    within: cst.CSTNode | None = None,
) -> list[tuple[cst.Call, ManagerClass]]:
    """Calls in ``tree`` (only those in ``within``, a node of it, if given) of a manager
    class whose constructor requires the session (no default), that pass none: no
    ``session=`` keyword, not enough positional arguments to reach it, no
    ``*args``/``**kwargs`` that might carry it."""
    names = {c.name for c in graph.classes.values()}
    calls = _CallsNamed(names)
    (tree if within is None else within).visit(calls)
    if not calls.found:
        return []
    imports = import_map(tree, module_name, rel)
    local = {n.name.value for n in tree.body if isinstance(n, cst.ClassDef)}
    session = graph.config.session_variable
    found = []
    for call in calls.found:
        dotted = get_full_name_for_node(call.func)
        qualified = (
            resolve_local(dotted, imports, module_name, local) if dotted else None
        )
        cls = graph.classes.get(qualified or "")
        if cls is None:
            continue
        params = graph.init_params(cls)
        index = next((i for i, p in enumerate(params) if p.name == session), None)
        if index is None or params[index].has_default:
            continue
        if any(a.star for a in call.args) or any(
            a.keyword is not None and a.keyword.value == session for a in call.args
        ):
            continue
        positional = sum(1 for a in call.args if a.keyword is None)
        reachable = params[index].kind in ("posonly", "positional")
        if reachable and positional > index:
            continue
        found.append((call, cls))
    return found


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
    graph = ManagerGraph(
        config=config,
        root=project.root,
        base=base,
        session_attr=(
            stored_attribute(base_init, config.session_variable)
            if base_init is not None
            else None
        ),
    )
    graph.classes[base.qualified] = base

    files = project.python_files()
    scanned: list[str] = []
    scanned_set: set[str] = set()
    names: set[str] = {base.name}
    searched: set[str] = set()
    defs_of: dict[
        str, tuple[cst.Module, list[str], list[tuple[cst.ClassDef, bool]]]
    ] = {}
    while True:
        new_names = names - searched
        if not new_names:
            break
        searched |= new_names
        # the text prefilter reads every file: not an input of its own (see _ManagerMemo)
        for rel in _may_subclass(
            project, [f for f in files if f not in scanned_set], new_names
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
                if found is None:  # each file's classes, once
                    local = [
                        n.name.value for n in module.body if isinstance(n, cst.ClassDef)
                    ]
                    found = defs_of[rel] = (module, local, _class_defs(module))
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
    "ManagerClass",
    "ManagerGraph",
    "Param",
    "analyze_managers",
    "annotation_names",
    "builds_own_class",
    "code",
    "context_openers",
    "import_map",
    "is_test_path",
    "iter_statements",
    "line_of",
    "own_init",
    "package_of",
    "plain_alternate_constructor",
    "relpath_for",
    "resolve_local",
    "short_name",
    "unwrap_optional",
]


def reexported_as(project: Project, qualified: Iterable[str]) -> frozenset[str]:
    """``qualified`` (dotted names of the project's objects) and every name a package of the
    project re-exports them under (``from pkg.db import SessionContext`` in
    ``pkg/__init__.py`` makes ``pkg.SessionContext`` one), through any number of packages."""
    found = set(qualified)
    packages = [rel for rel in project.python_files() if rel.endswith("__init__.py")]
    maps: dict[str, dict[str, str]] = {}
    changed = True
    while changed:
        changed = False
        # only the packages whose text names one of them are read
        words = sorted({q.rpartition(".")[2] for q in found})
        for rel in project.grep([r for r in packages if r not in maps], *words):
            maps[rel] = import_map(project.parse(rel), project.module_name(rel), rel)
        for rel, names in maps.items():
            package = project.module_name(rel)
            for local, origin in names.items():
                alias = f"{package}.{local}"
                if origin in found and alias not in found:
                    found.add(alias)
                    changed = True
    return frozenset(found)


def session_context_openers(module: cst.Module, context_class: str) -> frozenset[str]:
    """The functions of the session module (``module``) that open a session context: they
    take no argument and return ``SessionContext()`` (``get_db_context()``), so
    ``with opener() as s:`` is ``with SessionContext() as s:``."""
    opens_context = m.FunctionDef(
        params=m.Parameters(params=[], kwonly_params=[], posonly_params=[]),
        body=m.IndentedBlock(
            body=[
                m.ZeroOrMore(m.SimpleStatementLine(body=[m.Expr(m.SimpleString())])),
                m.SimpleStatementLine(
                    body=[m.Return(m.Call(func=m.Name(context_class), args=[]))]
                ),
            ]
        ),
    )
    return frozenset(
        n.name.value
        for n in module.body
        if isinstance(n, cst.FunctionDef) and matches(n, opens_context)
    )


def context_openers(project: Project) -> frozenset[str]:
    """Dotted names of what opens a session context when called: the session module's
    ``SessionContext`` class and its functions returning one (:func:`session_context_openers`),
    under every name the project's packages re-export them as; empty when the session module
    is not there."""
    config = project.config
    if not project.exists(config.session_module):
        return frozenset()
    module = config.session_module_name
    names = (
        config.session_context_class,
        *session_context_openers(
            project.parse(config.session_module), config.session_context_class
        ),
    )
    return reexported_as(project, (f"{module}.{name}" for name in names))


#: the text of an assignment to an attribute (plain or augmented); group 1 is what comes
#: before the dot (``self``, a name, or the closing bracket of a call or subscript)
_ATTRIBUTE_ASSIGNED = re.compile(
    rb"(\w+|[)\]])\s*\.\s*\w+\s*(?:[-+*/%&|^@]|//|<<|>>|\*\*)?=(?!=)"
)


def attributes_set_in_place(project: Project) -> frozenset[str]:
    """The attribute names the application's own code (the package, its tests aside) assigns
    on an object it was handed or loaded (``tool.status = "repair"``; ``self.x = ...`` is
    the object's own state): what running the application may change in the rows a test
    holds. Computed once per run (``project.memo``)."""
    memo = project.memo.get("attributes_set_in_place")
    if isinstance(memo, frozenset):
        return memo
    package = project.config.package_dotted
    target = m.Attribute(value=m.Name(m.MatchIfTrue(lambda n: n != "self")) | m.Attribute())
    found: set[str] = set()
    for rel in project.python_files():
        name = project.module_name(rel)
        if is_test_path(rel) or not (name == package or name.startswith(package + ".")):
            continue
        if not any(
            receiver != b"self" for receiver in _ATTRIBUTE_ASSIGNED.findall(project.read_bytes(rel))
        ):
            continue  # the text assigns no attribute but its own object's
        try:
            tree = project.parse(rel)
        except InputError:
            continue
        for node in findall(tree, m.AssignTarget(target=target) | m.AugAssign(target=target)):
            attribute = node.target  # type: ignore[attr-defined]
            found.add(cst.ensure_type(attribute, cst.Attribute).attr.value)
    result = frozenset(found)
    project.memo["attributes_set_in_place"] = result
    return result
