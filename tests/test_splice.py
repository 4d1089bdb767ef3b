"""Splice printing (refactor_tool/splice.py) gives libcst's own output, byte for byte."""

from __future__ import annotations

import random
import sysconfig
from pathlib import Path

import libcst as cst
import pytest

import codemods.base  # noqa: F401  (the dispatch that keeps unchanged nodes by identity)
from refactor_tool.splice import splice

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
def test_splice_prints_what_libcst_prints(path: Path) -> None:
    old = path.read_bytes()
    try:
        original = cst.parse_module(old)
    except Exception:
        pytest.skip("libcst cannot parse it")
    tree = original.visit(_Mutate(path.name))
    result = splice(old, original, tree)
    if tree is original:
        assert result in (None, (old, old))
        return
    if result is None:
        return  # printed whole by the caller: nothing to compare
    new, printed = result
    assert printed == original.bytes
    if original.bytes == old:
        assert new == tree.bytes


def _pair(source: bytes) -> tuple[bytes, cst.Module, cst.Module]:
    original = cst.parse_module(source)
    tree = original.with_changes(body=[*original.body[:-1], cst.parse_statement("changed = 1\n")])
    return source, original, tree


def test_method_of_a_class_is_spliced_without_printing_the_rest() -> None:
    source = (
        b"# header\n\nimport os\n\n\n@decorator\nclass A(Base):\n    '''Doc.'''\n\n"
        b"    def one(self):\n        return 1\n\n    # about two\n    def two(self):\n"
        b"        return 2  # trailing\n    # block footer\n\n\ndef after():\n    pass\n"
    )
    original = cst.parse_module(source)
    cls = original.body[1]
    assert isinstance(cls, cst.ClassDef)
    two = cls.body.body[2]
    new_two = two.with_changes(body=two.body.with_changes(body=[cst.parse_statement("return 3\n")]))
    tree = original.with_changes(
        body=[original.body[0], cls.with_changes(body=cls.body.with_changes(body=[*cls.body.body[:2], new_two])), original.body[2]]
    )
    new, printed = splice(source, original, tree)  # type: ignore[misc]
    assert printed == source
    assert new == tree.bytes
    assert b"return 3  # trailing" not in new and b"        return 3\n    # block footer" in new


@pytest.mark.parametrize(
    "source",
    [
        b"x = 1\ny = 2",  # no final newline
        b"\xef\xbb\xbfx = 1\ny = 2\n",  # a BOM
    ],
)
def test_files_it_does_not_splice(source: bytes) -> None:
    assert splice(*_pair(source)) is None


def test_crlf_and_semicolons() -> None:
    source = b"import a; import b\r\n\r\nx = 1\r\n# c\r\ny = 2\r\n"
    old, original, tree = _pair(source)
    new, printed = splice(old, original, tree)  # type: ignore[misc]
    assert printed == source
    assert new == tree.bytes == b"import a; import b\r\n\r\nx = 1\r\nchanged = 1\r\n"


def test_python_parse_pauses_the_collector_and_restores_it() -> None:
    import ast
    import gc

    from refactor_tool.splice import python_module

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
