"""The fast traversals give libcst's own answers (codemods/fastcst.py, codemods/base.py).

Each helper is compared with the libcst function it replaces, on every module of the bundled
target and on a fixed sample of the installed standard library (real code of every shape).
"""

from __future__ import annotations

import dataclasses
import random
import sysconfig
from pathlib import Path
from typing import Any

import libcst as cst
import libcst.matchers as m
import pytest
from libcst._nodes.base import CSTCodegenError
from libcst.metadata import MetadataWrapper, PositionProvider

import codemods.base  # noqa: F401  (installs the dispatch under test)
from codemods import fastcst
from codemods.base import libcst_visit_only

REPO = Path(__file__).resolve().parent.parent


def _corpus() -> list[Path]:
    files = sorted((REPO / "target_project").rglob("*.py"))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sample = sorted(p for p in stdlib.glob("*.py") if p.stat().st_size < 30_000)
    files += sample[:: max(1, len(sample) // 15)]
    return files


def _modules() -> list[tuple[str, bytes, cst.Module]]:
    out = []
    for path in _corpus():
        source = path.read_bytes()
        try:
            out.append((path.name, source, cst.parse_module(source)))
        except Exception:  # a file libcst cannot parse is not this test's business
            continue
    return out


MODULES = _modules()
IDS = [name for name, _, _ in MODULES]


class _Recorder(cst.CSTVisitor):
    """Overrides the hooks themselves: libcst's protocol, event by event."""

    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.events.append(("visit", id(node)))
        return not isinstance(node, cst.Lambda)  # a pruned subtree, too

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.events.append(("leave", id(original_node)))

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        self.events.append(("visit_attr", id(node), attribute))

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        self.events.append(("leave_attr", id(original_node), attribute))


class _Handlers(cst.CSTVisitor):
    """A plain visitor (visit_*/leave_* only): what it sees, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.seen.append(("def", id(node)))
        return node.name.value != "main"  # returning False skips the body

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.seen.append(("/def", id(original_node)))

    def visit_Name(self, node: cst.Name) -> None:
        self.seen.append(("name", id(node)))

    def leave_Call(self, original_node: cst.Call) -> None:
        self.seen.append(("/call", id(original_node)))


def _call(obj: object, name: str, *args: object, default: object = None) -> object:
    """Call ``obj.<name>(*args)`` if it has such a handler: dispatch by name, libcst's way."""
    handler = getattr(obj, name, None)
    return default if handler is None else handler(*args)


class _ReferenceHandlers(_Handlers):
    """The same handlers dispatched by hand, as libcst's own visitor does."""

    def on_visit(self, node: cst.CSTNode) -> bool:
        return _call(self, f"visit_{type(node).__name__}", node) is not False

    def on_leave(self, original_node: cst.CSTNode) -> None:
        _call(self, f"leave_{type(original_node).__name__}", original_node)


@pytest.mark.parametrize("name,source,module", MODULES, ids=IDS)
def test_walk_sees_what_libcst_visit_sees(name: str, source: bytes, module: cst.Module) -> None:
    expected, actual = _Recorder(), _Recorder()
    with libcst_visit_only():
        module.visit(expected)
    fastcst.walk(module, actual)
    assert actual.events == expected.events
    reference, plain = _ReferenceHandlers(), _Handlers()
    with libcst_visit_only():
        module.visit(reference)
    fastcst.walk(module, plain)
    assert plain.seen == reference.seen
    assert plain.seen or "(" not in module.code  # a module with code has names


@pytest.mark.parametrize("name,source,module", MODULES, ids=IDS)
def test_findall_and_children_match_libcst(name: str, source: bytes, module: cst.Module) -> None:
    matchers = [
        m.Name(),
        m.Call(func=m.Attribute(attr=m.Name())),
        m.FunctionDef() | m.ClassDef(),
        m.SimpleString() | m.Comment(),
        m.MatchIfTrue(lambda n: isinstance(n, cst.Comma)),
    ]
    for matcher in matchers:
        with libcst_visit_only():
            expected = [id(n) for n in m.findall(module, matcher)]
        assert [id(n) for n in fastcst.findall(module, matcher)] == expected, matcher
    for node in [module, *fastcst.findall(module, m.ClassDef() | m.Call())][:20]:
        with libcst_visit_only():
            expected = [id(c) for c in node.children]
        assert [id(c) for c in fastcst.iter_children(node)] == expected


@pytest.mark.parametrize("name,source,module", MODULES, ids=IDS)
def test_line_of_is_the_position_providers_line(name: str, source: bytes, module: cst.Module) -> None:
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    nodes = list(fastcst.findall(module, m.MatchIfTrue(lambda n: True)))
    for node in random.Random(name).sample(nodes, min(15, len(nodes))):
        assert fastcst.line_of(module, node) == positions[node].start.line, node
    assert fastcst.line_of(module, cst.Name("not_in_module")) is None


@pytest.mark.parametrize("name,source,module", MODULES, ids=IDS)
def test_names_used_is_names_in(name: str, source: bytes, module: cst.Module) -> None:
    from codemods.managers import names_in

    everything = names_in(module)
    wanted = {"self", "os", "sys", "Optional", "session", "get", "not_there"}
    assert fastcst.names_used(module, wanted) == wanted & everything
    assert fastcst.names_used(module, everything) == everything


def test_node_classes_that_cannot_hold_others() -> None:
    statements = fastcst.node_mask([cst.FunctionDef, cst.SimpleStatementLine])
    assert not fastcst.may_contain(cst.Call, statements)  # an expression holds no statement
    assert not fastcst.may_contain(cst.SimpleWhitespace, fastcst.node_mask([cst.Name]))
    assert fastcst.may_contain(cst.IndentedBlock, statements)
    assert fastcst.may_contain(cst.Lambda, fastcst.node_mask([cst.Call]))
    assert fastcst.mentions(cst.parse_statement("x = f(y)\n"), {"y"})
    assert not fastcst.mentions(cst.parse_statement("x = f.y\n"), {"z"})


class _Rename(cst.CSTTransformer):
    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        return updated_node.with_changes(value="renamed") if original_node.value == "self" else updated_node


class _ReferenceRename(_Rename):
    def on_visit(self, node: cst.CSTNode) -> bool:
        return True

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> cst.CSTNode:
        if isinstance(original_node, cst.Name):
            return self.leave_Name(original_node, updated_node)  # type: ignore[arg-type]
        return updated_node


class _Nothing(cst.CSTTransformer):
    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        return updated_node


@pytest.mark.parametrize("name,source,module", MODULES, ids=IDS)
def test_transformers_skip_and_keep_unchanged_nodes(name: str, source: bytes, module: cst.Module) -> None:
    assert module.visit(_Nothing()) is module  # nothing changed: the very same tree
    renamed = module.visit(_Rename())
    with libcst_visit_only():
        assert renamed.code == module.visit(_ReferenceRename()).code
        assert module.visit(_Nothing()).code == module.code
    if "self" not in module.code:
        assert renamed is module


class _Surgery(cst.CSTTransformer):
    """Removes, flattens and rewrites, and records what its attribute handlers saw."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def leave_Pass(self, original_node: cst.Pass, updated_node: cst.Pass) -> cst.RemovalSentinel:
        return cst.RemoveFromParent()  # an emptied line goes, a lone `pass` in a block stays

    def leave_Return(
        self, original_node: cst.Return, updated_node: cst.Return
    ) -> cst.FlattenSentinel[cst.BaseSmallStatement]:
        return cst.FlattenSentinel([cst.Expr(cst.Name("before_return")), updated_node])

    def leave_Arg(self, original_node: cst.Arg, updated_node: cst.Arg) -> cst.Arg | cst.RemovalSentinel:
        if isinstance(original_node.value, cst.Integer):
            return cst.RemoveFromParent()
        return updated_node

    def leave_Import(self, original_node: cst.Import, updated_node: cst.Import) -> cst.RemovalSentinel:
        return cst.RemoveFromParent()

    def visit_Call_func(self, node: cst.Call) -> None:
        self.seen.append(f"func {type(node.func).__name__}")

    def leave_Call_args(self, original_node: cst.Call) -> None:
        self.seen.append(f"args {len(original_node.args)}")


class _ReferenceSurgery(_Surgery):
    """The same handlers under libcst's own dispatch (hooks overridden, so not ours)."""

    def on_visit(self, node: cst.CSTNode) -> bool:
        return True

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
        name = f"leave_{type(original_node).__name__}"
        return _call(self, name, original_node, updated_node, default=updated_node)

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        _call(self, f"visit_{type(node).__name__}_{attribute}", node)

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        _call(self, f"leave_{type(original_node).__name__}_{attribute}", original_node)


@pytest.mark.parametrize("name,source,module", MODULES, ids=IDS)
def test_transform_is_libcst_visit(name: str, source: bytes, module: cst.Module) -> None:
    """codemods.base.transform: libcst's result, rebuilding only what changed."""
    from codemods.base import transform

    expected, actual = _ReferenceSurgery(), _Surgery()
    with libcst_visit_only():
        want = module.visit(expected)
        reference_rename = module.visit(_ReferenceRename()).code
    got = transform(module, actual)
    assert got.code == want.code
    assert actual.seen == expected.seen
    assert transform(module, _Nothing()) is module
    assert transform(module, _Rename()).code == reference_rename
    # libcst's own helpers go through the same path: m.replace, whose transformer has
    # hooks of its own
    replaced = m.replace(module, m.Name("self"), cst.Name("this"))
    with libcst_visit_only():
        assert replaced.code == m.replace(module, m.Name("self"), cst.Name("this")).code


@pytest.mark.parametrize("name,source,module", MODULES, ids=IDS)
def test_clone_is_deep_clone(name: str, source: bytes, module: cst.Module) -> None:
    copy = fastcst.clone(module)
    assert copy.code == module.code
    assert copy.deep_equals(module.deep_clone())
    originals = {id(n) for n in fastcst.findall(module, m.MatchIfTrue(lambda n: True))}
    assert not originals & {id(n) for n in fastcst.findall(copy, m.MatchIfTrue(lambda n: True))}


@pytest.mark.parametrize("name,source,module", MODULES, ids=IDS)
def test_code_is_libcst_print(name: str, source: bytes, module: cst.Module) -> None:
    assert fastcst.code(module) == module.code
    assert fastcst.module_bytes(module) == module.bytes
    nodes = fastcst.findall(module, m.MatchIfTrue(lambda n: True))
    for node in nodes[:: max(1, len(nodes) // 300)]:
        try:
            expected = module.code_for_node(node)
        except CSTCodegenError:  # needs its parent's context (an annotation)
            with pytest.raises(CSTCodegenError):
                fastcst.code(node, module)
            continue
        assert fastcst.code(node, module) == expected


def test_code_prints_built_nodes_and_indentation_like_libcst() -> None:
    """Nodes a codemod builds leave whitespace and commas to libcst's defaults."""
    call = cst.Call(
        func=cst.Attribute(value=cst.Name("managers"), attr=cst.Name("game")),
        args=[cst.Arg(cst.Name("session")), cst.Arg(cst.Integer("1"), keyword=cst.Name("n"))],
        lpar=[cst.LeftParen()],
        rpar=[cst.RightParen()],
    )
    stmt = cst.With(
        items=[cst.WithItem(cst.Name("ctx"), asname=cst.AsName(cst.Name("s")))],
        body=cst.IndentedBlock(
            body=[
                cst.SimpleStatementLine([cst.Expr(call)]),
                cst.SimpleStatementLine(
                    [
                        cst.Expr(cst.Name("a")),
                        cst.Assign([cst.AssignTarget(cst.Name("b"))], cst.Integer("2")),
                        cst.Expr(cst.Call(cst.Name("f"), [cst.Arg(cst.Name("x"), star="*")])),
                    ]
                ),
                cst.SimpleStatementLine([]),
                cst.SimpleStatementLine(
                    [cst.Pass()],
                    leading_lines=[cst.EmptyLine(comment=cst.Comment("# note")), cst.EmptyLine(indent=False)],
                    trailing_whitespace=cst.TrailingWhitespace(
                        whitespace=cst.SimpleWhitespace("  "), comment=cst.Comment("# end")
                    ),
                ),
                cst.If(
                    test=cst.UnaryOperation(cst.Not(), cst.Name("x", lpar=[cst.LeftParen()], rpar=[cst.RightParen()])),
                    body=cst.IndentedBlock([cst.SimpleStatementLine([cst.Return()])]),
                ),
            ]
        ),
    )
    tabbed = cst.parse_module("if x:\n\tpass\n")
    for module in (cst.Module(body=[]), tabbed):
        assert fastcst.code(stmt, module) == module.code_for_node(stmt)
        assert fastcst.code(stmt, module, ["    "]).startswith("    with ctx as s:")
        state = fastcst._PlainState(default_indent=module.default_indent, default_newline=module.default_newline)
        state.indent_tokens = ["  ", "\t"]
        stmt._codegen(state)
        assert fastcst.code(stmt, module, ["  ", "\t"]) == "".join(state.tokens)


def test_code_leaves_position_printing_alone() -> None:
    """The lighter parentheses hook is in place only while code() prints, and defers to
    libcst's own whenever positions are recorded."""
    from libcst._nodes.expression import _BaseParenthesizedNode

    before = _BaseParenthesizedNode.__dict__["_parenthesize"]
    codegen = cst.CSTNode.__dict__["_codegen"]
    module = cst.parse_module("x = (a +\n     (b))\ny = f((1), [2])\n")
    inner = fastcst.findall(module, m.Name("b"))[0]
    fastcst.code(module)
    assert _BaseParenthesizedNode.__dict__["_parenthesize"] is before
    assert cst.CSTNode.__dict__["_codegen"] is codegen
    assert not [c for c in fastcst._subclasses(cst.CSTNode) if "_codegen" in c.__dict__]
    # line_of inside a plain printing (many nodes printed in a row) still sees every node
    with fastcst.plain_printing():
        assert fastcst.code(module) == module.code
        assert fastcst.line_of(module, inner) == 2
        assert fastcst.code(module) == module.code
    assert cst.CSTNode.__dict__["_codegen"] is codegen
    assert not [c for c in fastcst._subclasses(cst.CSTNode) if "_codegen" in c.__dict__]
    expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)[inner]
    _BaseParenthesizedNode._parenthesize = fastcst._parenthesize
    try:
        got = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)[inner]
    finally:
        _BaseParenthesizedNode._parenthesize = before
    assert (got.start, got.end) == (expected.start, expected.end) and got.start.column == 6


def test_parse_statement_gives_new_nodes_each_time() -> None:
    text = "managers = create_all_managers(session)\n"
    first, second = fastcst.parse_statement(text), fastcst.parse_statement(text)
    assert first.deep_equals(cst.parse_statement(text)) and second.deep_equals(first)
    mine = {id(n) for n in fastcst.findall(first, m.MatchIfTrue(lambda n: True))}
    assert not mine & {id(n) for n in fastcst.findall(second, m.MatchIfTrue(lambda n: True))}


def test_forget_contents_empties_the_caches_keyed_by_source_text() -> None:
    from codemods import fixtures
    from refactor_tool import statements

    fastcst.parse_statement("x = 1\n")
    statements.python_module(b"x = 1\n")
    fixtures._NODE_CACHE["def f():\n    pass\n"] = cst.parse_statement("def f():\n    pass\n")
    fastcst.forget_contents()
    assert not fastcst._STATEMENTS and not fixtures._NODE_CACHE
    assert statements.python_module.cache_info().currsize == 0


class _Ancestry(cst.CSTVisitor):
    """Reference for holding_leaf: every node above (and at) a wanted leaf."""

    def __init__(self, leaf: type, test: Any) -> None:
        self.leaf, self.test = leaf, test
        self.stack: list[int] = []
        self.found: set[int] = set()

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.stack.append(id(node))
        if type(node) is self.leaf and self.test(node):
            self.found.update(self.stack)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.stack.pop()


@pytest.mark.parametrize("name,source,module", MODULES, ids=IDS)
def test_holding_leaf_is_the_ancestry_of_wanted_leaves(name: str, source: bytes, module: cst.Module) -> None:
    for leaf, test in (
        (cst.Comment, lambda c: "e" in c.value),
        (cst.SimpleString, lambda s: len(s.value) > 10),
        (cst.Name, lambda n: n.value in {"self", "os"}),
        (cst.Call, lambda c: isinstance(c.func, cst.Name)),
    ):
        reference = _Ancestry(leaf, test)
        with libcst_visit_only():
            module.visit(reference)
        assert fastcst.holding_leaf(module, leaf, test) == reference.found
        if leaf is cst.Name:
            assert fastcst.holding(module, {"self", "os"}) == reference.found


class _CountingRename(_Rename):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[int] = []

    def visit_Name(self, node: cst.Name) -> None:
        self.names.append(id(node))


class _ReferenceOnly(_ReferenceRename):
    """libcst's own protocol, told to stay out of every subtree outside ``only``."""

    def __init__(self, only: set[int]) -> None:
        super().__init__()
        self.only = only

    def on_visit(self, node: cst.CSTNode) -> bool:
        return id(node) in self.only

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> cst.CSTNode:
        if id(original_node) not in self.only:
            return updated_node
        return super().on_leave(original_node, updated_node)


@pytest.mark.parametrize("name,source,module", MODULES, ids=IDS)
def test_visits_only_keeps_other_subtrees_without_hooks(name: str, source: bytes, module: cst.Module) -> None:
    """A transformer's ``visits_only``: only those nodes see a hook; the result is libcst's
    with those subtrees pruned."""
    from codemods.base import transform

    only = fastcst.holding(module, {"self"}) | {id(module)}
    # half of the paths: a rename below a pruned node must not happen
    only -= {i for k, i in enumerate(sorted(only)) if k % 2}
    only.add(id(module))
    with libcst_visit_only():
        expected = module.visit(_ReferenceOnly(only)).code
    counting = _CountingRename()
    counting.visits_only = only  # type: ignore[attr-defined]
    assert transform(module, counting).code == expected
    assert set(counting.names) <= only


def _codemod_matchers() -> list[Any]:
    """Every matcher the codemods keep as a module constant."""
    import importlib

    found: dict[int, Any] = {}
    for name in ("fixtures", "managers", "phase1", "phase2", "phase3", "phase4", "phase5", "phase6"):
        module = importlib.import_module(f"codemods.{name}")
        for value in vars(module).values():
            if isinstance(value, (m.BaseMatcherNode, m.OneOf, m.AllOf)):
                found[id(value)] = value
    return list(found.values())


MATCHERS = [
    m.Name(),
    m.Name("self"),
    m.Name(value=m.MatchRegex(r"^_")),
    m.Name(value=m.MatchIfTrue(lambda v: v.startswith("t"))),
    m.Name(value=[m.DoNotCare()]),  # a string is a sequence to libcst
    m.Attribute(value=m.Name("self")),
    m.Name() | m.Attribute(),
    m.Attribute(value=m.Name() | m.Attribute(attr=m.Name("path"))),
    m.AllOf(m.Call(), m.Call(func=m.Name())),
    m.Call(func=m.DoesNotMatch(m.Name())),
    m.DoesNotMatch(m.Name()),
    m.Call(func=m.SaveMatchedNode(m.Name(), "f")),
    m.SaveMatchedNode(m.Call(), "call"),
    m.MatchIfTrue(lambda n: True),  # not allowed at the top of matches()
    m.ZeroOrMore(),
    m.Arg(keyword=None),
    m.Arg(comma=m.Comma()),
    m.Arg(comma=m.DoesNotMatch(m.Comma())),
    m.Arg(comma=cst.MaybeSentinel.DEFAULT),
    m.Arg(star=""),
    m.EmptyLine(indent=True),
    m.EmptyLine(comment=None),
    m.Call(args=[m.Arg()]),
    m.Call(args=[]),
    m.Call(args=[m.DoNotCare(), m.Arg()]),
    m.Call(args=[m.ZeroOrMore(), m.Arg(keyword=m.Name("name")), m.ZeroOrMore()]),
    m.Call(args=[m.ZeroOrMore(), m.Arg(value=m.Name() | m.Integer()), m.ZeroOrMore()]),
    m.Call(args=[m.AtLeastN(n=1)]),
    m.Call(args=[m.ZeroOrMore(m.Arg(keyword=None))]),
    m.Call(args=[m.Arg(), m.ZeroOrMore()]),
    m.Call(args=[m.SaveMatchedNode(m.Arg(), "first"), m.ZeroOrMore()]),
    m.Call(args=m.OneOf([m.Arg()], [])),
    m.Call(args=m.AllOf([m.DoNotCare()], [m.Arg()])),
    m.Call(args=m.MatchIfTrue(lambda a: len(a) > 2)),
    m.Call(args=m.DoesNotMatch([])),
    m.Call(func=m.TypeOf(m.Name, m.Attribute)(value=m.Name("os"))),
    m.TypeOf(m.Name, m.Attribute)(),
    m.SimpleStatementLine(body=[m.Expr(value=m.SimpleString() | m.ConcatenatedString())]),
    m.FunctionDef(params=m.Parameters(params=[m.Param(name=m.Name("self")), m.ZeroOrMore()])),
    m.ClassDef(bases=[m.ZeroOrMore(), m.Arg(value=m.Name("Base")), m.ZeroOrMore()]),
]


def _samples(module: cst.Module) -> list[Any]:
    """Up to five nodes of every class in the module, and the non-node values fields hold."""
    by_class: dict[type, list[cst.CSTNode]] = {}
    for node in fastcst.findall(module, m.MatchIfTrue(lambda n: True)):
        bucket = by_class.setdefault(type(node), [])
        if len(bucket) < 5:
            bucket.append(node)
    return [n for nodes in by_class.values() for n in nodes] + [
        None,
        cst.MaybeSentinel.DEFAULT,
        cst.RemovalSentinel.REMOVE,
        "x",
        (),
    ]


@pytest.mark.parametrize("name,source,module", MODULES, ids=IDS)
def test_matches_is_libcst_matches(name: str, source: bytes, module: cst.Module) -> None:
    from libcst.matchers._matcher_base import _construct_metadata_fetcher_null, _matches

    fetcher = _construct_metadata_fetcher_null()
    hits = 0
    for matcher in MATCHERS + _codemod_matchers():
        test, anywhere = fastcst.compiled(matcher), fastcst.compiled(matcher, top=False)
        for node in _samples(module):
            expected = m.matches(node, matcher)
            assert test(node) is expected, (matcher, node)
            assert fastcst.matches(node, matcher) is expected  # first use: libcst's own
            assert fastcst.matches(node, matcher) is expected  # then compiled
            hits += expected
            if isinstance(node, cst.CSTNode):  # findall's rule
                assert anywhere(node) is (_matches(node, matcher, fetcher) is not None)
    assert hits


def test_matches_hands_metadata_to_libcst() -> None:
    from libcst.metadata import PositionProvider

    module = cst.parse_module("x = 1\n")
    name = fastcst.findall(module, m.Name())[0]
    matcher = m.Name(metadata=m.MatchMetadata(PositionProvider, None))
    with pytest.raises(LookupError):
        m.matches(name, matcher)
    with pytest.raises(LookupError):
        fastcst.compiled(matcher)(name)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    position = wrapper.resolve(PositionProvider)[name]
    wanted = m.Name(metadata=m.MatchMetadata(PositionProvider, position))
    assert fastcst.matches(name, wanted, metadata_resolver=wrapper)


def test_clone_copies_fields_slot_by_slot_without_validating_again() -> None:
    """A clone is a new valid tree: every field the same value (nodes copied, sequences as
    tuples), built without the constructor."""
    module = cst.parse_module("x = f(a, *b, k=1)  # c\nclass C(B):\n    '''d'''\n")
    copy = fastcst.clone(module)
    assert copy.deep_equals(module) and copy.code == module.code
    for old, new in zip(
        fastcst.findall(module, m.MatchIfTrue(lambda n: True)),
        fastcst.findall(copy, m.MatchIfTrue(lambda n: True)),
    ):
        assert type(old) is type(new) and old is not new
        for f in dataclasses.fields(old):
            a, b = getattr(old, f.name), getattr(new, f.name)
            if isinstance(a, (list, tuple)):
                assert type(b) is tuple and len(a) == len(b)
            elif not isinstance(a, cst.CSTNode):
                assert a == b
    copy.validate_types_deep()


def test_with_changes_is_libcst_with_changes() -> None:
    call = cst.parse_expression("f(a, b)")
    changed = fastcst.with_changes(call, {"args": call.args[:1]})
    assert changed.deep_equals(call.with_changes(args=call.args[:1])) and changed is not call
    assert changed.func is call.func
    with pytest.raises(TypeError):
        fastcst.with_changes(call, {"nonsense": 1})
    with pytest.raises(cst.CSTValidationError):  # still validated
        fastcst.with_changes(cst.Name("x"), {"value": "not a name"})


def test_installed_with_changes_is_libcsts_own() -> None:
    """``CSTNode.with_changes`` (installed by codemods.base) against libcst's original, on
    every node class of the target: same fields, same values, a new node, same errors."""
    from codemods import base

    libcst_with_changes = base._WITH_CHANGES[0]
    assert cst.CSTNode.with_changes is not libcst_with_changes
    seen: set[type] = set()
    for path in sorted((REPO / "target_project").rglob("*.py")):
        for node in fastcst.findall(cst.parse_module(path.read_bytes()), m.MatchIfTrue(lambda n: True)):
            if type(node) in seen:
                continue
            seen.add(type(node))
            changes = {f.name: getattr(node, f.name) for f in dataclasses.fields(node)[:1]}
            mine, theirs = node.with_changes(**changes), libcst_with_changes(node, **changes)
            assert type(mine) is type(theirs) is type(node) and mine is not node
            assert mine.deep_equals(theirs) and mine.deep_equals(node)
            for f in dataclasses.fields(node):
                assert getattr(mine, f.name) is getattr(theirs, f.name)
    assert len(seen) > 60
    with pytest.raises(TypeError):
        cst.Name("x").with_changes(nonsense=1)
    with pytest.raises(cst.CSTValidationError):
        cst.Name("x").with_changes(value="not a name")
