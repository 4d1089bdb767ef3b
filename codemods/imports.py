"""Where an import a codemod adds goes: the place ruff's isort rules (default settings) give it.

Every import a codemod schedules (libcst's ``add_needed_import``) is added by
:meth:`codemods.base.RefactorCodemod.transform_module`, through :func:`add_imports` here.
When the module's leading import block is already in the order those rules give, the new
import goes where they would put it: its name into the one-line ``from <module> import ...``
it belongs to (in order), else a line of its own in its section, a blank line setting a new
section apart; a module without imports gets them after its docstring. When the block is
in another order, :func:`add_imports` returns None and the
caller adds the imports as libcst's ``AddImportsVisitor`` does (after the last one), so that
no line of a block someone keeps in an order of their own moves.

The order (checked against ``ruff check --select I`` with its defaults): sections
``__future__``, standard library, third party, first party, relative; in a section ``import x``
lines before ``from x import y`` lines, each by module name, case-insensitively first, digits
compared as numbers; the names of a ``from`` import constants first, then classes, then the
rest, the same way. First party is the package of the module being changed and what the
project's root (or its ``src/``) holds (:func:`refactor_tool.model.project.first_party`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import libcst as cst
from libcst.helpers import get_full_name_for_node

FUTURE, STANDARD, THIRD_PARTY, FIRST_PARTY, LOCAL = range(5)
_STANDARD = frozenset(sys.stdlib_module_names)


@dataclass(frozen=True)
class Wanted:
    """One import to add: ``from module import obj as asname`` (``import module as asname``
    when ``obj`` is None)."""

    module: str
    obj: str | None = None
    asname: str | None = None
    level: int = 0  # ``from ..module import obj``: a relative import, so many dots


def _natural(text: str) -> tuple:
    """``text`` for comparing with the digits in it read as numbers (``a2`` before ``a10``)."""
    parts = re.split(r"(\d+)", text)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


def _text(text: str) -> tuple:
    return (_natural(text.lower()), _natural(text))


def member_key(name: str, asname: str | None = None) -> tuple:
    """The place of an imported name among the names of one ``from`` import."""
    kind = 0 if len(name) > 1 and name.isupper() else 1 if name[:1].isupper() else 2
    return (name != "*", kind, *_text(name), asname is not None, _text(asname or ""))


def section(module: str, level: int, first_party: frozenset[str]) -> int:
    if level:
        return LOCAL
    top = module.split(".")[0]
    if top == "__future__":
        return FUTURE
    if top in _STANDARD:
        return STANDARD
    return FIRST_PARTY if top in first_party else THIRD_PARTY


def _line_key(
    module: str, level: int, obj: str | None, asname: str | None, first_party: frozenset[str]
) -> tuple:
    """The place of an import line in the block."""
    straight = obj is None
    return (
        section(module, level, first_party),
        not straight,
        -level,  # the furthest relative imports first
        *_text(module),
        () if straight else member_key(obj, asname),  # type: ignore[arg-type]
        () if not straight else (asname is not None, _text(asname or "")),
    )


def _dotted(node: cst.CSTNode | None) -> str:
    return get_full_name_for_node(node) or "" if node is not None else ""


def _asname(alias: cst.ImportAlias) -> str | None:
    return _dotted(alias.asname.name) if alias.asname is not None else None


@dataclass
class _Line:
    """A line of the import block: its position in the module and its place in the order."""

    index: int
    key: tuple
    section: int
    node: cst.Import | cst.ImportFrom


def _import_of(stmt: cst.CSTNode) -> cst.Import | cst.ImportFrom | None:
    if isinstance(stmt, cst.SimpleStatementLine) and any(
        isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body
    ):
        if len(stmt.body) != 1:
            raise _Unordered
        return stmt.body[0]  # type: ignore[return-value]
    return None


class _Unordered(Exception):
    """The block is not in the order the rules give (or has a shape they would change)."""


def _block(body: Sequence[cst.BaseStatement], first_party: frozenset[str]) -> list[_Line]:
    """The module's first run of import lines, each with its key; raises ``_Unordered``
    unless they (and the names of each ``from`` line) are in order."""
    lines: list[_Line] = []
    for index, stmt in enumerate(body):
        node = _import_of(stmt)
        if node is None:
            if lines:
                break
            continue
        if isinstance(node, cst.Import):
            if len(node.names) != 1:
                raise _Unordered  # the rules give each module a line of its own
            alias = node.names[0]
            module, level, obj, asname = _dotted(alias.name), 0, None, _asname(alias)
        else:
            module = _dotted(node.module)
            level = len(node.relative)
            if isinstance(node.names, cst.ImportStar):
                obj, asname = "*", None
            else:
                keys = [member_key(_dotted(a.name), _asname(a)) for a in node.names]
                if keys != sorted(keys):
                    raise _Unordered
                obj, asname = _dotted(node.names[0].name), _asname(node.names[0])
        key = _line_key(module, level, obj, asname, first_party)
        if lines and key < lines[-1].key:
            raise _Unordered
        lines.append(_Line(index, key, key[0], node))
    return lines


def _imported(body: Sequence[cst.BaseStatement], wanted: Wanted) -> bool:
    """Whether a module-level import already binds what ``wanted`` would."""
    for stmt in body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for node in stmt.body:
            if isinstance(node, cst.Import) and wanted.obj is None:
                if any(
                    _dotted(a.name) == wanted.module and _asname(a) == wanted.asname
                    for a in node.names
                ):
                    return True
            elif (
                isinstance(node, cst.ImportFrom)
                and wanted.obj is not None
                and len(node.relative) == wanted.level
                and _dotted(node.module) == wanted.module
            ):
                if isinstance(node.names, cst.ImportStar):
                    return True
                if any(
                    _dotted(a.name) == wanted.obj and _asname(a) == wanted.asname
                    for a in node.names
                ):
                    return True
    return False


def _merge(node: cst.ImportFrom, name: str) -> cst.ImportFrom:
    """``node`` importing ``name`` too, in order (its names are)."""
    names = list(node.names)  # type: ignore[arg-type]
    keys = [member_key(_dotted(a.name), _asname(a)) for a in names]
    at = next((i for i, k in enumerate(keys) if k > member_key(name)), len(names))
    last_comma = names[-1].comma
    if node.lpar is not None and len(names) > 1:
        between = names[0].comma  # the layout of the parenthesized list
    else:
        between = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    names = [a.with_changes(comma=between) for a in names]
    names.insert(at, cst.ImportAlias(name=cst.Name(name), comma=between))
    names[-1] = names[-1].with_changes(comma=last_comma)
    return node.with_changes(names=names)


def _new_line(wanted: Wanted) -> cst.SimpleStatementLine:
    alias = f" as {wanted.asname}" if wanted.asname else ""
    text = (
        f"import {wanted.module}{alias}\n"
        if wanted.obj is None
        else f"from {'.' * wanted.level}{wanted.module} import {wanted.obj}{alias}\n"
    )
    return cst.ensure_type(cst.parse_statement(text), cst.SimpleStatementLine)


def _blank_prefix(lines: Sequence[cst.EmptyLine]) -> int:
    """How many of ``lines`` come before the first comment."""
    return next((i for i, line in enumerate(lines) if line.comment is not None), len(lines))


def _add_one(
    body: list[cst.BaseStatement], wanted: Wanted, first_party: frozenset[str]
) -> None:
    if _imported(body, wanted):
        return
    block = _block(body, first_party)
    if wanted.obj is not None and wanted.asname is None:
        for line in block:
            node = line.node
            if (
                isinstance(node, cst.ImportFrom)
                and len(node.relative) == wanted.level
                and _dotted(node.module) == wanted.module
                and not isinstance(node.names, cst.ImportStar)
                and all(a.asname is None for a in node.names)
            ):
                stmt = cst.ensure_type(body[line.index], cst.SimpleStatementLine)
                body[line.index] = stmt.with_changes(body=[_merge(node, wanted.obj)])
                return
    key = _line_key(wanted.module, wanted.level, wanted.obj, wanted.asname, first_party)
    new = _new_line(wanted)
    after = [line for line in block if line.key <= key]
    before = [line for line in block if line.key > key]
    prev = after[-1] if after else None
    following = before[0] if before else None
    blank = [cst.EmptyLine(indent=False)]
    if prev is not None and (
        prev.section == key[0] or following is None or following.section != key[0]
    ):
        # after a line of its own section, or a new section after the previous one
        new = new.with_changes(leading_lines=[] if prev.section == key[0] else blank)
        body.insert(prev.index + 1, new)
        return
    if following is None:
        raise _Unordered  # (not reached: the block has a line)
    stmt = body[following.index]
    leading = list(stmt.leading_lines)  # type: ignore[attr-defined]
    if following.section == key[0]:
        # first of the section that follows: the blank lines above it go above the new
        # line (above the whole block: its leading lines, comments too)
        cut = len(leading) if prev is None else _blank_prefix(leading)
        above = leading[:cut]
        if prev is not None and prev.section != key[0] and not above:
            above = blank  # sections are set apart (the line that was first lost its blank)
        new = new.with_changes(leading_lines=above)
        stmt = stmt.with_changes(leading_lines=leading[cut:])
    else:  # a section before every other: the block's leading lines go above it
        new = new.with_changes(leading_lines=leading)
        stmt = stmt.with_changes(leading_lines=blank)
    body[following.index : following.index + 1] = [new, stmt]


def add_imports(
    tree: cst.Module, wanted: Iterable[Wanted], first_party: frozenset[str]
) -> cst.Module | None:
    """``tree`` with each of ``wanted`` imported where the rules put it (a module without
    imports gets them after its docstring), or None when the module's import block is not
    in their order."""
    body = list(tree.body)
    try:
        items = [item for item in wanted if not _imported(body, item)]
        if items and not _block(body, first_party):
            _first_import(body, items.pop(0))
        for item in items:
            _add_one(body, item, first_party)
    except _Unordered:
        return None
    return tree.with_changes(body=body)


def in_house_form(
    tree: cst.Module, wanted: Wanted, module_name: str, is_package: bool
) -> Wanted:
    """``wanted`` in the form the module being changed (``module_name``) imports its own
    package in: relative (``from .db import X``) when its module-level ``from`` imports of
    that package are all relative and it has one, else as it is."""
    if wanted.level or wanted.obj is None or not module_name:
        return wanted
    package = module_name.split(".") if is_package else module_name.split(".")[:-1]
    target = wanted.module.split(".")
    if not package or target[0] != package[0]:
        return wanted
    relative = absolute = False
    for stmt in tree.body:
        node = _import_of_loose(stmt)
        if isinstance(node, cst.ImportFrom):
            if node.relative:
                relative = True
            elif _dotted(node.module).split(".")[0] == package[0]:
                absolute = True
        elif isinstance(node, cst.Import) and any(
            _dotted(a.name).split(".")[0] == package[0] for a in node.names
        ):
            absolute = True
    if not relative or absolute:
        return wanted
    common = 0
    while common < min(len(package), len(target)) and package[common] == target[common]:
        common += 1
    return Wanted(
        ".".join(target[common:]), wanted.obj, wanted.asname, len(package) - common + 1
    )


def _import_of_loose(stmt: cst.CSTNode) -> cst.Import | cst.ImportFrom | None:
    if isinstance(stmt, cst.SimpleStatementLine):
        for node in stmt.body:
            if isinstance(node, (cst.Import, cst.ImportFrom)):
                return node
    return None


def _first_import(body: list[cst.BaseStatement], wanted: Wanted) -> None:
    """The first import of a module that has none: after its docstring (a blank line
    between), and the blank lines the rules want after imports before what follows (two
    before a function or a class, else one) where it has none."""
    at = 0
    if body and isinstance(body[0], cst.SimpleStatementLine):
        first = body[0].body[0] if len(body[0].body) == 1 else None
        if isinstance(first, cst.Expr) and isinstance(
            first.value, (cst.SimpleString, cst.ConcatenatedString)
        ):
            at = 1
    new = _new_line(wanted)
    if at:
        new = new.with_changes(leading_lines=[cst.EmptyLine(indent=False)])
    if at < len(body) and not getattr(body[at], "leading_lines", True):
        blank = 2 if isinstance(body[at], (cst.FunctionDef, cst.ClassDef)) else 1
        body[at] = body[at].with_changes(
            leading_lines=[cst.EmptyLine(indent=False)] * blank
        )
    body.insert(at, new)
