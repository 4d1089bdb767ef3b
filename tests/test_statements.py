"""Printing changed trees, and statement positions read off Python's parser
(refactor_tool/statements.py), against libcst's own answers."""

from __future__ import annotations

import random
import sysconfig
from pathlib import Path

import libcst as cst
import pytest

import codemods.base  # noqa: F401  (the dispatch that keeps unchanged nodes by identity)
from codemods.fastcst import line_of, module_bytes
from refactor_tool.statements import reproduces, statement_lines, statement_texts

REPO = Path(__file__).resolve().parent.parent


class _Mutate(cst.CSTTransformer):
    """Replace some simple statements inside functions, some at module level."""

    def __init__(self, seed: str) -> None:
        self.rnd = random.Random(seed)
        self.depth = 0

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.depth += 1

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.FunctionDef:
        self.depth -= 1
        return updated_node

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine:
        if self.rnd.random() < (0.1 if self.depth else 0.05):
            return updated_node.with_changes(body=[cst.Pass()])
        return updated_node


def _corpus() -> list[Path]:
    files = sorted((REPO / "target_project").rglob("*.py"))
    stdlib = sorted(p for p in Path(sysconfig.get_paths()["stdlib"]).glob("*.py") if p.stat().st_size < 40_000)
    return files + stdlib[:: max(1, len(stdlib) // 30)]


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: p.name)
def test_changed_trees_print_what_libcst_prints(path: Path) -> None:
    """The engine prints a changed module whole with the light printer: the same bytes as
    libcst's own ``Module.bytes``, for trees mixing parsed and newly built nodes."""
    old = path.read_bytes()
    try:
        original = cst.parse_module(old)
    except Exception:
        pytest.skip("libcst cannot parse it")
    tree = original.visit(_Mutate(path.name))
    assert module_bytes(tree) == tree.bytes
    assert module_bytes(original) == original.bytes
    if reproduces(old):
        assert original.bytes == old


@pytest.mark.parametrize("path", _corpus()[:60], ids=lambda p: p.name)
def test_statement_lines_and_texts_are_libcsts(path: Path) -> None:
    source = path.read_bytes()
    try:
        module = cst.parse_module(source)
    except Exception:
        pytest.skip("libcst cannot parse it")
    lines = statement_lines(source, module)
    if lines is None:
        pytest.skip("the two parsers do not line up here")
    for stmt in module.body:  # a decorated definition starts at its first decorator
        decorators = getattr(stmt, "decorators", ())
        assert lines[id(stmt)] == line_of(module, decorators[0] if decorators else stmt)
    texts = statement_texts(source, module) or {}
    for stmt in module.body:
        if id(stmt) in texts:
            assert texts[id(stmt)] == module.code_for_node(stmt.with_changes(leading_lines=[]))


def test_crlf_and_semicolons() -> None:
    source = b"import a; import b\r\n\r\nx = 1\r\n# c\r\n@d\r\ndef f():\r\n    pass\r\n"
    module = cst.parse_module(source)
    assert list(statement_lines(source, module).values()) == [1, 3, 5]  # type: ignore[union-attr]
    assert statement_texts(source, module)[id(module.body[2])] == "@d\r\ndef f():\r\n    pass\r\n"  # type: ignore[index]


def test_python_parse_pauses_the_collector_and_restores_it() -> None:
    import ast
    import gc

    from refactor_tool.statements import python_module

    assert gc.isenabled()
    tree = python_module(b"def f(x):\n    return x\n")
    assert isinstance(tree, ast.Module) and gc.isenabled()
    assert python_module(b"def f(:\n") is None and gc.isenabled()
    gc.disable()
    try:
        python_module(b"y = 1\n")
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()
