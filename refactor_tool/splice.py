"""Print a transformed module by printing only what the codemods changed.

A codemod that changes one method of a class leaves every other statement of the module the
very same node object (libcst keeps untouched subtrees, and the dispatch in
``codemods/base.py`` keeps unchanged nodes by identity). Printing the whole module again
costs about a third of parsing it, and the engine prints twice (the output, and the original
to check that libcst reproduces the file). :func:`splice` instead takes the text of every
statement that is still the original node from the old bytes, and prints only the rest.

Statement boundaries come from Python's own parser (:mod:`ast`: the first line of each
statement, its decorators included) combined with libcst's count of the blank and comment
lines that belong to each statement, so every line of the file belongs to exactly one
statement. Inside a changed ``class`` or ``def`` whose header is unchanged, the same is done
for its body, recursively. Whenever something does not line up (the parsers disagree, the
file has no final newline, a BOM, a changed header), None is returned and the caller prints
the module as before.
"""

from __future__ import annotations

import ast
import functools
import gc
import re
import warnings
from dataclasses import fields
from typing import Any, Sequence

import libcst as cst

from codemods.fastcst import code, content_cache, plain_printing

try:
    from libcst._nodes.internal import CodegenState
except ImportError:  # pragma: no cover - a libcst with other internals: print everything
    CodegenState = None  # type: ignore[assignment,misc]

_DEFS = (cst.ClassDef, cst.FunctionDef)
_AST_DEFS = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


_SPACE_BEFORE_COLON = re.compile(rb"\s:")


def reproduces(text: bytes) -> bool:
    """Whether libcst prints ``text`` back exactly as it parsed it, known without printing.

    libcst reproduces source byte for byte with one exception found so far: it drops the
    whitespace before the colon of an ``except`` clause (``except OSError :``). Over the
    whole installed standard library that is the only difference (``bench/corpus_noop.py``
    checks it on every file of its corpus). Text that could hold such a clause answers
    False, and the caller prints the original to find out.
    """
    return b"except" not in text or _SPACE_BEFORE_COLON.search(text) is None


class _Mismatch(Exception):
    """The two parsers' statements do not line up: print instead."""


class _Splicer:
    def __init__(self, old: bytes, original: cst.Module, tree: cst.Module) -> None:
        self.old = old
        self.original = original
        self.tree = tree
        self.encoding = tree.encoding
        self.want_old = True
        lines = old.splitlines(keepends=True)
        self.count = len(lines)
        offsets = [0]
        for line in lines:
            offsets.append(offsets[-1] + len(line))
        self.offsets = offsets

    # ------------------------------------------------------------------ text
    def text(self, start: int, end: int) -> bytes:
        return self.old[self.offsets[start] : self.offsets[end]]

    def print(self, node: cst.CSTNode, indents: Sequence[str]) -> bytes:
        return code(node, self.tree, indents).encode(self.encoding)

    # ------------------------------------------------------------------ boundaries
    def starts(self, body: Sequence[cst.BaseStatement], nodes: Sequence[ast.stmt]) -> list[tuple[int, ast.stmt]]:
        """(0-based first line with leading lines, the ast statement) of each statement."""
        found = _starts(body, nodes)
        if found is None:
            raise _Mismatch
        return [(start, node) for start, _, node in found]

    # ------------------------------------------------------------------ blocks
    def block(
        self,
        new_body: Sequence[cst.BaseStatement],
        old_body: Sequence[cst.BaseStatement],
        nodes: Sequence[ast.stmt],
        first: int,
        end: int,
        indents: Sequence[str],
    ) -> tuple[list[bytes], list[bytes]]:
        """Text of ``new_body`` and of ``old_body`` (which spans lines ``first``..``end``)."""
        starts = self.starts(old_body, nodes)
        bounds = [s for s, _ in starts] + [end]
        if not old_body:
            if first != end:
                raise _Mismatch
        elif bounds[0] != first or any(a >= b for a, b in zip(bounds, bounds[1:])):
            raise _Mismatch
        span = {id(s): (bounds[i], bounds[i + 1], starts[i][1]) for i, s in enumerate(old_body)}
        reused = {id(s) for s in new_body if id(s) in span}
        # a changed definition is matched with the original one of the same kind and name
        pending: dict[tuple[type, str], list[cst.BaseStatement]] = {}
        for s in old_body:
            if id(s) not in reused and isinstance(s, _DEFS):
                pending.setdefault((type(s), s.name.value), []).append(s)
        new_parts: list[bytes] = []
        old_text: dict[int, bytes] = {}
        for s in new_body:
            where = span.get(id(s))
            if where is not None:
                new_parts.append(self.text(where[0], where[1]))
                continue
            candidates = pending.get((type(s), s.name.value)) if isinstance(s, _DEFS) else None
            if candidates:
                before = candidates.pop(0)
                a, b, node = span[id(before)]
                done = self.definition(s, before, node, a, b, indents)  # type: ignore[arg-type]
                if done is not None:
                    new_parts.append(done[0])
                    old_text[id(before)] = done[1]
                    continue
            new_parts.append(self.print(s, indents))
        old_parts: list[bytes] = []
        if not self.want_old:
            return new_parts, old_parts
        for s in old_body:
            if id(s) in old_text:
                old_parts.append(old_text[id(s)])
                continue
            a, b, _ = span[id(s)]
            text = self.text(a, b)
            old_parts.append(text if id(s) in reused or reproduces(text) else self.print(s, indents))
        return new_parts, old_parts

    def definition(
        self, new: Any, old: Any, node: ast.stmt, start: int, end: int, indents: Sequence[str]
    ) -> tuple[bytes, bytes] | None:
        """A changed ``class``/``def`` whose header is unchanged: its body spliced."""
        if not isinstance(node, _AST_DEFS) or type(new) is not type(old):
            return None
        if not (isinstance(new.body, cst.IndentedBlock) and isinstance(old.body, cst.IndentedBlock)):
            return None
        for f in fields(type(old)):
            if f.name != "body" and not _same(getattr(new, f.name), getattr(old, f.name)):
                return None
        for f in fields(cst.IndentedBlock):
            if f.name != "body" and not _same(getattr(new.body, f.name), getattr(old.body, f.name)):
                return None
        if not old.body.body:
            return None
        inner_end = end - len(old.body.footer)
        inner = [*indents, old.body.indent if old.body.indent is not None else self.tree.default_indent]
        first = self.starts(old.body.body[:1], node.body[: _small(old.body.body[0])])[0][0]
        if not start < first < inner_end:
            raise _Mismatch
        new_parts, old_parts = self.block(new.body.body, old.body.body, node.body, first, inner_end, inner)
        head, foot = self.text(start, first), self.text(inner_end, end)
        return head + b"".join(new_parts) + foot, head + b"".join(old_parts) + foot


def _small(stmt: cst.BaseStatement) -> int:
    return len(stmt.body) if isinstance(stmt, cst.SimpleStatementLine) else 1


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(x is y for x, y in zip(a, b))
    return isinstance(a, (str, int, bool)) and a == b


def splice(
    old: bytes, original: cst.Module, tree: cst.Module, known: bytes | None = None
) -> tuple[bytes, bytes] | None:
    """``(tree.bytes, original.bytes)``, printing only the statements that changed.

    ``original`` is the tree parsed from ``old`` (``known``: what it prints, when that is
    already known); ``tree`` is the codemods' result. Returns None when the module is better
    printed whole (nothing of it was kept, or the statement boundaries cannot be established).
    """
    if CodegenState is None:
        return None
    kept = {id(s) for s in original.body}
    if not any(id(s) in kept for s in tree.body) and not any(
        isinstance(s, _DEFS) for s in tree.body
    ):
        return None
    if not (
        _same(tree.header, original.header)
        and _same(tree.footer, original.footer)
        and original.has_trailing_newline
        and tree.has_trailing_newline
        and tree.encoding == original.encoding
        and tree.default_newline == original.default_newline
        and tree.default_indent == original.default_indent
        and old.endswith((b"\n", b"\r"))
        and not old.startswith(b"\xef\xbb\xbf")
    ):
        return None
    nodes = python_body(old)
    if nodes is None:
        return None
    splicer = _Splicer(old, original, tree)
    splicer.want_old = known is None
    end = splicer.count - len(original.footer)
    try:
        with plain_printing():  # the printing hooks installed once for the whole file
            new_parts, old_parts = splicer.block(
                tree.body, original.body, nodes, len(original.header), end, ()
            )
    except (_Mismatch, RecursionError):
        return None
    head, foot = splicer.text(0, len(original.header)), splicer.text(end, splicer.count)
    new = head + b"".join(new_parts) + foot
    return new, known if known is not None else head + b"".join(old_parts) + foot


def python_body(source: bytes) -> list[ast.stmt] | None:
    """The module-level statements of ``source`` by Python's own parser (None: it cannot
    read it, e.g. syntax newer than this interpreter)."""
    tree = python_module(source)
    return None if tree is None else tree.body


@functools.lru_cache(maxsize=64)
def python_module(source: bytes) -> ast.Module | None:
    """``ast.parse(source)``, None where it fails; the same content is read by several
    analyses and by :func:`splice` (the most recent results are kept: treat them as read-only)."""
    collecting = gc.isenabled()
    gc.disable()  # a tree of new objects without a cycle: nothing for the collector to find
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like
            return ast.parse(source)
    except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError):
        return None
    finally:
        if collecting:
            gc.enable()


content_cache(python_module.cache_clear)


def _starts(
    body: Sequence[cst.BaseStatement], nodes: Sequence[ast.stmt]
) -> list[tuple[int, int, ast.stmt]] | None:
    """(0-based first line with its leading lines, 0-based first line of its own, the first
    ast statement) of each libcst statement of ``body``; None where the parsers disagree.

    A libcst simple statement line holds as many ast statements as it has small statements
    (``import a; import b``); a decorated definition starts at its first decorator.
    """
    out = []
    i = 0
    for stmt in body:
        small = _small(stmt)
        if i + small > len(nodes):
            return None
        node = nodes[i]
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))]) - 1
        leading = len(getattr(stmt, "leading_lines", ()))
        decorators = getattr(stmt, "decorators", ())
        if decorators:
            leading += len(decorators[0].leading_lines)
        out.append((first - leading, first, node))
        i += small
    return out if i == len(nodes) else None


def _top_level(source: bytes, module: cst.Module) -> list[tuple[cst.BaseStatement, int, int, int]] | None:
    """(statement, 0-based first line with its leading lines, 0-based first line of its own,
    0-based end line) of each top-level statement; None when they cannot be established."""
    nodes = python_body(source)
    found = None if nodes is None else _starts(module.body, nodes)
    if found is None:
        return None
    end = len(source.splitlines()) - len(module.footer)
    spans = []
    for k, (stmt, (start, first, _)) in enumerate(zip(module.body, found)):
        stop = found[k + 1][0] if k + 1 < len(found) else end
        if not start <= first < stop:
            return None
        spans.append((stmt, start, first, stop))
    return spans


def statement_lines(source: bytes, module: cst.Module) -> dict[int, int] | None:
    """1-based line of each top-level statement of ``module`` parsed from ``source`` (its
    first decorator for a decorated definition), keyed by ``id(statement)``; None when
    Python's parser cannot read it or the two parsers' statements do not line up."""
    spans = _top_level(source, module)
    return None if spans is None else {id(s): first + 1 for s, _, first, _ in spans}


def statement_texts(source: bytes, module: cst.Module) -> dict[int, str] | None:
    """``module.code_for_node(s.with_changes(leading_lines=[]))`` of each top-level
    statement ``s``, keyed by ``id(s)``, sliced from ``source`` instead of printed (only for
    statements libcst is known to reproduce)."""
    spans = _top_level(source, module)
    if spans is None:
        return None
    lines = source.splitlines(keepends=True)
    out = {}
    for stmt, _, first, stop in spans:
        decorators = getattr(stmt, "decorators", ())
        if decorators and decorators[0].leading_lines:
            continue  # printed with those lines; the slice starts below them
        text = b"".join(lines[first:stop])
        if reproduces(text):
            out[id(stmt)] = text.decode(module.encoding)
    return out
