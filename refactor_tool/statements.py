"""Where each top-level statement of a module is, read off Python's own parser.

The analyses need a statement's line (for messages) and its exact source text (the recipe of
a fixture phase 5 inlines) without a libcst metadata pass. Python's parser (:mod:`ast`)
gives the first line of each statement, its decorators included; libcst's count of the
blank and comment lines that belong to each statement completes it, so every line of the
file belongs to exactly one statement. Whenever the two parsers do not line up, the caller
is told (None) and prints instead.

:func:`reproduces` says, without printing, whether libcst prints a text back exactly.
"""

from __future__ import annotations

import ast
import functools
import gc
import re
import warnings
from typing import Sequence

import libcst as cst

from codemods.fastcst import content_cache

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


def python_body(source: bytes) -> list[ast.stmt] | None:
    """The module-level statements of ``source`` by Python's own parser (None: it cannot
    read it, e.g. syntax newer than this interpreter)."""
    tree = python_module(source)
    return None if tree is None else tree.body


@functools.lru_cache(maxsize=64)
def python_module(source: bytes) -> ast.Module | None:
    """``ast.parse(source)``, None where it fails; the same content is read by several
    analyses (the most recent results are kept: treat them as read-only)."""
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


def _small(stmt: cst.BaseStatement) -> int:
    return len(stmt.body) if isinstance(stmt, cst.SimpleStatementLine) else 1


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
