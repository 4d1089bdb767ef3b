"""The tool's walks (refactor_tool/model/syntax.py) answer as libcst's do.

A walk stops where none of its handlers can fire, and ``findall`` walks only where its
matcher can match: each must give the same answers as libcst's ``visit`` and
``matchers.findall``, on the bundled target and on the tool's own sources.
"""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import libcst.matchers as m
import pytest

from refactor_tool.model.syntax import Transformer, findall

REPO = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    [*(REPO / "target_project").rglob("*.py"), *(REPO / "refactor_tool" / "model").glob("*.py")]
)


@pytest.fixture(scope="module")
def trees() -> list[cst.Module]:
    return [cst.parse_module(path.read_bytes()) for path in SOURCES]


class _Functions(Transformer):
    def __init__(self) -> None:
        self.functions: list[str] = []

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        self.functions.append(original_node.name.value)
        return updated_node


class _Names(Transformer):
    def __init__(self) -> None:
        self.names: list[str] = []

    def visit_Name(self, node: cst.Name) -> None:
        self.names.append(node.value)


def test_a_walk_stops_where_none_of_its_handlers_can_fire(trees: list[cst.Module]) -> None:
    # libcst's own walk rebuilds every node it descends into: what it did not descend
    # into is the same object afterwards
    tree = cst.parse_module(
        "class C:\n    def f(self, a):\n        return g(a, 'x')\n\nx = h(1, [2])\n"
    )
    functions = _Functions()
    result = tree.visit(functions)
    assert functions.functions == ["f"]
    method = result.body[0].body.body[0]
    assert method is not tree.body[0].body.body[0]  # descended into: a function may be below
    assert method.params is tree.body[0].body.body[0].params  # no function in parameters
    assert result.body[1] is tree.body[1]  # nor in a statement line
    names = _Names()
    result = tree.visit(names)
    assert names.names == ["C", "f", "self", "a", "g", "a", "x", "h"]
    assert result.body[1].body[0].value.args[1].value.elements[0].value is (
        tree.body[1].body[0].value.args[1].value.elements[0].value
    )  # no name in ``2``
    assert result.body[1].body[0].value is not tree.body[1].body[0].value  # a name is below


@pytest.mark.parametrize(
    "matcher",
    [
        m.Call(func=m.Attribute(attr=m.Name("commit"))),
        m.Name("session") | m.SimpleString(),
        m.FunctionDef() & m.FunctionDef(name=m.Name(m.MatchRegex(r"test_.*"))),
        m.MatchIfTrue(lambda node: isinstance(node, cst.Integer)),
        m.Decorator(),
    ],
)
def test_findall_finds_what_libcst_finds(trees: list[cst.Module], matcher: object) -> None:
    for tree in trees:
        assert [id(n) for n in findall(tree, matcher)] == [id(n) for n in m.findall(tree, matcher)]
