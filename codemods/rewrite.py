"""Rewriting helpers the codemods share: fixture and manager names in a test body, calls
on the old session, fixture parameters, statements and the imports nothing uses any more.

They build new trees from the trees they are given and read the model; they write nothing.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import libcst as cst
import libcst.matchers as m
from libcst.helpers import get_full_name_for_node
from libcst.matchers import matches

from refactor_tool.model.config import Config
from refactor_tool.model.fixtures import (
    ONE_IMPORT_LINE,
    FactoryDefaults,
    ScanMemo,
    call_on,
    scan,
    top_level_bindings,
)
from refactor_tool.model.managers import import_map
from refactor_tool.model.syntax import (
    Transformer,
    Visitor,
    names_below,
    names_used,
)


class _StringMentions(Visitor):
    """Names mentioned in string annotations or ``__all__`` (uses a Name walk misses)."""

    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.names = names
        self.found: set[str] = set()
        self.depth = 0

    def visit_Annotation(self, node: cst.Annotation) -> None:
        self.depth += 1

    def leave_Annotation(self, original_node: cst.Annotation) -> None:
        self.depth -= 1

    def visit_Assign(self, node: cst.Assign) -> None:
        if any(matches(t.target, m.Name("__all__")) for t in node.targets):
            self.depth += 1

    def leave_Assign(self, original_node: cst.Assign) -> None:
        if any(matches(t.target, m.Name("__all__")) for t in original_node.targets):
            self.depth -= 1

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if self.depth:
            words = set(re.findall(r"\w+", node.value))
            self.found |= self.names & words


class _DropAliases(Transformer):
    """Remove module-level ``from x import name`` aliases whose local name is in ``names``."""

    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.names = names

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.ImportFrom | cst.RemovalSentinel:
        return without_aliases(
            updated_node,
            lambda a: (a.evaluated_alias or a.evaluated_name) in self.names,
        )

    # the blank lines and comments above an import line that goes are carried to the
    # statement after it (when that has none of its own): one pending set per block
    def visit_Module(self, node: cst.Module) -> None:
        self._carried: list[Sequence[cst.EmptyLine]] = [()]

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._carried.append(())

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        self._carried.pop()
        if not updated_node.body:  # ``if TYPE_CHECKING:`` that imported only these names
            return updated_node.with_changes(
                body=[cst.SimpleStatementLine(body=[cst.Pass()])]
            )
        return updated_node

    def on_leave(self, original_node: Any, updated_node: Any) -> Any:
        updated_node = super().on_leave(original_node, updated_node)
        if isinstance(original_node, cst.SimpleStatementLine) and (
            isinstance(updated_node, cst.SimpleStatementLine) and not updated_node.body
        ):
            self._carried[-1] = self._carried[-1] or original_node.leading_lines
            return cst.RemoveFromParent()
        if (
            isinstance(updated_node, cst.BaseStatement)
            and self._carried[-1]
            and not getattr(updated_node, "leading_lines", True)
        ):
            updated_node = updated_node.with_changes(leading_lines=self._carried[-1])
        if isinstance(updated_node, cst.BaseStatement):
            self._carried[-1] = ()
        return updated_node


def without_aliases(
    node: cst.ImportFrom, drop: Callable[[cst.ImportAlias], bool]
) -> cst.ImportFrom | cst.RemovalSentinel:
    """``node`` without the aliases ``drop`` selects (commas and parentheses kept valid)."""
    if isinstance(node.names, cst.ImportStar):
        return node
    names = [a for a in node.names if not drop(a)]
    if len(names) == len(node.names):
        return node
    if not names:
        return cst.RemoveFromParent()
    last_old = node.names[-1]
    if names[-1] is not last_old:
        names[-1] = names[-1].with_changes(comma=last_old.comma)
    return node.with_changes(names=names)


def drop_unused_imports(
    codemod: cst.codemod.Codemod, updated: cst.Module, rel: str, names: Iterable[str]
) -> cst.Module:
    """``updated`` without the imports of those ``names`` that nothing uses any more.

    A name still referenced as an identifier keeps its import. A name whose only remaining
    mentions are in string annotations or ``__all__`` is left to libcst's RemoveImportsVisitor
    (scheduled, it decides with a scope analysis of the module); the others, no longer
    mentioned anywhere, lose their module-level import here directly, which spares that
    analysis, the costliest thing a codemod of this tool would otherwise do per file.
    """
    from libcst.codemod.visitors import RemoveImportsVisitor

    wanted = set(names)
    if not wanted:
        return updated
    imports = import_map(updated, codemod.context.full_module_name or "", rel)
    imported = {
        n for n in wanted if "." in imports.get(n, "")
    }  # only these can be dropped
    if not imported:
        return updated
    unused = imported - names_used(updated, imported)
    if not unused:
        return updated
    strings = _StringMentions(unused)
    updated.visit(strings)
    for name in sorted(strings.found):
        module, _, obj = imports[name].rpartition(".")
        RemoveImportsVisitor.remove_unused_import(
            codemod.context, module, obj, asname=name if name != obj else None
        )
    direct = unused - strings.found
    return updated.visit(_DropAliases(direct)) if direct else updated


# ------------------------------------------------------------------------------- rewriting


def add_session_argument(call: cst.Call, session: str) -> cst.Call:
    """``call`` with ``session=<session>`` after its arguments (a manager construction that
    passed no session, the manager having fetched one itself)."""
    equal = cst.AssignEqual(
        whitespace_before=cst.SimpleWhitespace(""),
        whitespace_after=cst.SimpleWhitespace(""),
    )
    arg = cst.Arg(cst.Name(session), keyword=cst.Name(session), equal=equal)
    return call.with_changes(args=[*call.args, arg])


class _PassSession(Transformer):
    def __init__(self, calls: set[int], session: str) -> None:
        super().__init__()
        self.calls = calls
        self.session = session

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        if id(original_node) in self.calls:
            return add_session_argument(updated_node, self.session)
        return updated_node


def pass_session(
    body: Sequence[cst.BaseStatement], calls: set[int], session: str
) -> list[cst.BaseStatement]:
    """``body`` where each call whose id is in ``calls`` (manager constructions that pass no
    session, nodes of ``body``) passes ``session=<session>``."""
    transformer = _PassSession(calls, session)
    return [cst.ensure_type(stmt.visit(transformer), cst.BaseStatement) for stmt in body]


def managers_attr(config: Config, short: str) -> cst.Attribute:
    return cst.Attribute(value=cst.Name(config.managers_variable), attr=cst.Name(short))


class ScopedTransformer(Transformer):
    """A transformer that knows the names nested functions and lambdas rebind: inside one,
    :meth:`_shadowed` says whether a name is theirs (a parameter or a binding of their body)
    rather than the enclosing code's."""

    def __init__(self) -> None:
        super().__init__()
        self._shadow: list[set[str]] = []

    def _shadowed(self, name: str) -> bool:
        return any(name in s for s in self._shadow)

    def _enter(self, params: cst.Parameters, body: cst.CSTNode) -> None:
        names = {
            p.name.value
            for p in (*params.posonly_params, *params.params, *params.kwonly_params)
        }
        for star in (params.star_arg, params.star_kwarg):
            if isinstance(star, cst.Param):
                names.add(star.name.value)
        names |= scan([body]).bound
        self._shadow.append(names)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._enter(node.params, node.body)

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        self._shadow.pop()
        return updated_node

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._enter(node.params, node.body)

    def leave_Lambda(
        self, original_node: cst.Lambda, updated_node: cst.Lambda
    ) -> cst.Lambda:
        self._shadow.pop()
        return updated_node


class NameRewriter(ScopedTransformer):
    """Rewrites fixture names inside one function body (or a recipe).

    ``replacements`` maps a name to the expression that stands for it from now on
    (``db_session`` -> ``session``, ``game_manager`` -> ``managers.game``); calls of a name in
    ``factories`` get ``session`` as their first argument. Attribute names, keyword names and
    names a nested function or lambda rebinds are left alone. ``conflicts`` collects names
    that cannot be rewritten because the replacement would be captured by an inner binding.
    """

    def __init__(
        self,
        replacements: dict[str, cst.BaseExpression],
        factories: Iterable[str] = (),
        session_name: str = "session",
    ) -> None:
        super().__init__()
        self.replacements = replacements
        self.factories = set(factories)
        self.session_name = session_name
        self.conflicts: list[str] = []
        self.factory_values: list[str] = []
        self._skip: set[cst.CSTNode] = set()
        self._calls: set[cst.CSTNode] = set()

    def rewrite(self, node: cst.BaseStatement) -> cst.BaseStatement:
        return cst.ensure_type(node.visit(self), cst.BaseStatement)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._skip.add(node.name)
        super().visit_FunctionDef(node)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._skip.add(node.name)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._skip.add(node.attr)

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self._skip.add(node.keyword)

    def visit_Param(self, node: cst.Param) -> None:
        self._skip.add(node.name)

    def visit_ImportAlias(self, node: cst.ImportAlias) -> bool:
        return False

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name):
            self._calls.add(node.func)

    def leave_Name(
        self, original_node: cst.Name, updated_node: cst.Name
    ) -> cst.BaseExpression:
        name = original_node.value
        if original_node in self._skip or self._shadowed(name):
            return updated_node
        if name in self.factories and original_node not in self._calls:
            self.factory_values.append(name)
        replacement = self.replacements.get(name)
        if replacement is None:
            return updated_node
        root = replacement
        while isinstance(root, cst.Attribute):
            root = root.value
        if (
            isinstance(root, cst.Name)
            and root.value != name
            and self._shadowed(root.value)
        ):
            self.conflicts.append(name)
            return updated_node
        return replacement.deep_clone().with_changes(
            lpar=updated_node.lpar, rpar=updated_node.rpar
        )

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        func = original_node.func
        if not (
            isinstance(func, cst.Name) and func.value in self.factories
        ) or self._shadowed(func.value):
            return updated_node
        if self._shadowed(self.session_name):
            self.conflicts.append(func.value)
            return updated_node
        args = list(updated_node.args)
        if (
            args
            and not args[0].keyword
            and not args[0].star
            and matches(args[0].value, m.Name(self.session_name))
        ):
            return updated_node
        ws = updated_node.whitespace_before_args
        if args:
            if isinstance(ws, cst.ParenthesizedWhitespace):
                comma = cst.Comma(whitespace_after=ws)
            else:
                comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            first = cst.Arg(value=cst.Name(self.session_name), comma=comma)
        else:
            first = cst.Arg(value=cst.Name(self.session_name))
        return updated_node.with_changes(args=[first, *args])


def rewrite_names(
    nodes: Sequence[cst.BaseStatement],
    replacements: dict[str, cst.BaseExpression],
    factories: Iterable[str],
    session_name: str,
) -> tuple[list[cst.BaseStatement], NameRewriter]:
    rewriter = NameRewriter(replacements, factories, session_name)
    # the rewriter acts only on those names: a statement without any is left as it is
    out = [
        rewriter.rewrite(n) if not isinstance(n, cst.RemovalSentinel) else n
        for n in nodes
    ]
    return out, rewriter


class DefaultArgumentDropper(ScopedTransformer):
    """Leaves out the arguments of factory calls that equal the factory's defaults.

    ``factories`` maps a factory name to its :class:`FactoryDefaults`; only calls passing
    ``session`` first are looked at (the factories' new shape), and not where a nested
    function or lambda rebinds the factory's name. An argument with a comment stays.
    """

    def __init__(
        self, factories: dict[str, FactoryDefaults], session_name: str
    ) -> None:
        super().__init__()
        self.factories = factories
        self.session_name = session_name

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        func = updated_node.func
        if not isinstance(func, cst.Name) or self._shadowed(func.value):
            return updated_node
        signature = self.factories.get(func.value)
        args = list(updated_node.args)
        if (
            signature is None
            or not args
            or args[0].keyword is not None
            or args[0].star
            or not matches(args[0].value, m.Name(self.session_name))
        ):
            return updated_node
        rest = args[1:]
        drop = {i for i in signature.droppable(rest) if not _has_comment(rest[i].comma)}
        # a positional argument goes only with every positional one after it
        positional = [i for i, a in enumerate(rest) if a.keyword is None]
        for place, i in enumerate(positional):
            if i in drop and any(j not in drop for j in positional[place + 1 :]):
                drop.discard(i)
        if not drop:
            return updated_node
        kept = [args[0], *(a for i, a in enumerate(rest) if i not in drop)]
        if not any(_has_comment(a.comma) for a in kept):
            # what is left goes on one line (the formatter splits it again if too long)
            last = len(kept) - 1
            kept = [
                a.with_changes(
                    comma=cst.MaybeSentinel.DEFAULT
                    if i == last
                    else cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")),
                    whitespace_after_arg=cst.SimpleWhitespace(""),
                )
                for i, a in enumerate(kept)
            ]
            return updated_node.with_changes(
                args=kept, whitespace_before_args=cst.SimpleWhitespace("")
            )
        end = args[-1].comma  # the call keeps its end (a trailing comma, a line break)
        last_comma = kept[-1].comma
        if _has_comment(last_comma):  # ... and the comment of the argument now last
            if isinstance(end, cst.Comma) and isinstance(
                end.whitespace_after, cst.ParenthesizedWhitespace
            ):
                end = last_comma.with_changes(
                    whitespace_after=last_comma.whitespace_after.with_changes(
                        last_line=end.whitespace_after.last_line
                    )
                )
            else:
                end = last_comma
        kept[-1] = kept[-1].with_changes(comma=end)
        return updated_node.with_changes(args=kept)


def drop_default_arguments(
    nodes: Sequence[cst.BaseStatement],
    factories: dict[str, FactoryDefaults],
    session_name: str,
    memo: ScanMemo | None = None,
) -> list[cst.BaseStatement]:
    """``nodes`` with :class:`DefaultArgumentDropper` applied (a statement without a call of
    one of ``factories`` is returned as it is). ``memo``: scans of the statements already
    made (:func:`refactor_tool.model.fixtures.scan`); the names a statement reads tell
    whether it calls a factory, and reading is cheaper than rebuilding."""
    if not factories:
        return list(nodes)
    dropper = DefaultArgumentDropper(factories, session_name)
    return [
        cst.ensure_type(n.visit(dropper), cst.BaseStatement)
        if not factories.keys().isdisjoint(scan([n], memo=memo).used)
        else n
        for n in nodes
    ]


LOG_CALL = m.Call(
    func=m.Attribute(value=m.Name(m.MatchRegex(r"(?i).*(log|logger|logging)$")))
    | m.Attribute(value=m.Attribute(attr=m.Name(m.MatchRegex(r"(?i).*(log|logger)$"))))
    | m.Name("print")
)
LOG_ONLY_STATEMENT = m.SimpleStatementLine(
    body=[m.OneOf(m.Expr(value=LOG_CALL), m.Pass())]
)


class SessionCallCleaner(Transformer):
    """Drops ``<session>.merge`` and refreshes of relationship collections.

    * ``x = session.merge(x)`` / ``session.merge(x)`` disappear, ``return session.merge(x)``
      becomes ``return x``, ``y = session.merge(x)`` becomes ``y = x``;
    * ``session.refresh(obj, attribute_names=[...])`` loses the collection names (a refresh
      of a collection right after creating its parent freezes it: see the README); with
      none left, the statement goes;
    * a ``try:`` whose body became empty and whose handlers only log goes too, and so does a
      ``for``/``if``/``with`` whose body became empty;
    * a refresh naming an attribute whose kind cannot be told is kept and reported.
    """

    def __init__(self, session_name: str, attribute_kind: Any) -> None:
        super().__init__()
        self.session_name = session_name
        self.attribute_kind = attribute_kind
        self.unknown: list[tuple[cst.CSTNode, str]] = []
        self.changed = False
        # keyed by id(), holding the node: an id stays unique only while its node lives
        self._emptied: dict[int, cst.CSTNode] = {}
        # expressions whose statement is to go
        self._leftovers: dict[int, cst.CSTNode] = {}
        # the collections the refreshes of the current statement no longer name
        self._unrefreshed: set[str] = set()

    def _session_method(self, node: cst.CSTNode, method: str) -> bool:
        return matches(node, call_on(self.session_name, method))

    # ---- merge
    def leave_Call(
        self, original_node: cst.Call, updated_node: cst.Call
    ) -> cst.BaseExpression:
        if (
            self._session_method(updated_node, "merge")
            and len(updated_node.args) == 1
            and not updated_node.args[0].keyword
        ):
            self.changed = True
            value = updated_node.args[0].value
            self._leftovers[id(value)] = value
            return value
        if self._session_method(updated_node, "refresh"):
            return self._refresh(original_node, updated_node)
        return updated_node

    def _refresh(self, original_node: cst.Call, call: cst.Call) -> cst.BaseExpression:
        args = list(call.args)
        index = next(
            (
                i
                for i, a in enumerate(args)
                if a.keyword is not None and a.keyword.value == "attribute_names"
            ),
            1 if len(args) > 1 and args[1].keyword is None else None,
        )
        if index is None:
            return call
        names = args[index].value
        if not isinstance(names, (cst.List, cst.Tuple, cst.Set)):
            return call
        keep = []
        dropped = False
        for element in names.elements:
            value = element.value
            text = (
                value.evaluated_value if isinstance(value, cst.SimpleString) else None
            )
            kind = self.attribute_kind(text) if isinstance(text, str) else "unknown"
            if kind == "collection":
                dropped = True
                self._unrefreshed.add(str(text))
                continue
            if kind == "unknown":
                self.unknown.append((original_node, str(text)))
            keep.append(element)
        if not dropped:
            return call
        self.changed = True
        if not keep:
            self._leftovers[id(call)] = call
            return call
        keep[-1] = keep[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        args[index] = args[index].with_changes(value=names.with_changes(elements=keep))
        return call.with_changes(args=args)

    # ---- statements
    def leave_SimpleStatementLine(
        self,
        original_node: cst.SimpleStatementLine,
        updated_node: cst.SimpleStatementLine,
    ) -> cst.SimpleStatementLine | cst.RemovalSentinel:
        unrefreshed, self._unrefreshed = self._unrefreshed, set()
        if unrefreshed:
            # a comment above a refresh that names a collection it no longer loads
            # explains that load (the workaround the rewrite removes): it goes with it
            mentions = re.compile(
                r"\b(?:" + "|".join(map(re.escape, sorted(unrefreshed))) + r")\b"
            )
            updated_node = updated_node.with_changes(
                leading_lines=[
                    line
                    for line in updated_node.leading_lines
                    if line.comment is None or not mentions.search(line.comment.value)
                ]
            )
        body = []
        for small in updated_node.body:
            if isinstance(small, cst.Expr) and id(small.value) in self._leftovers:
                continue  # ``session.merge(x)`` left ``x``; a refresh with nothing left
            if (
                isinstance(small, cst.Assign)
                and id(small.value) in self._leftovers
                and matches(
                    small,
                    m.Assign(targets=[m.AssignTarget(target=m.Name())], value=m.Name()),
                )
            ):
                assign = cst.ensure_type(small, cst.Assign)
                if (
                    cst.ensure_type(assign.targets[0].target, cst.Name).value
                    == cst.ensure_type(assign.value, cst.Name).value
                ):
                    continue  # ``x = session.merge(x)``
            body.append(small)
        if not body:
            return cst.RemoveFromParent()
        if len(body) != len(updated_node.body):
            body[-1] = body[-1].with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
            return updated_node.with_changes(body=body)
        return updated_node

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        if original_node.body and not updated_node.body:
            self._emptied[id(updated_node)] = updated_node
        return updated_node

    def _is_emptied(self, block: cst.BaseSuite) -> bool:
        return id(block) in self._emptied

    def leave_Try(
        self, original_node: cst.Try, updated_node: cst.Try
    ) -> cst.BaseStatement | cst.RemovalSentinel:
        if not self._is_emptied(updated_node.body):
            return updated_node
        log_only = all(
            all(matches(s, LOG_ONLY_STATEMENT) for s in h.body.body)
            for h in updated_node.handlers
        )
        if log_only and updated_node.orelse is None and updated_node.finalbody is None:
            return cst.RemoveFromParent()
        return updated_node.with_changes(
            body=updated_node.body.with_changes(
                body=[cst.SimpleStatementLine([cst.Pass()])]
            )
        )

    def leave_For(
        self, original_node: cst.For, updated_node: cst.For
    ) -> cst.BaseStatement | cst.RemovalSentinel:
        if self._is_emptied(updated_node.body) and updated_node.orelse is None:
            return cst.RemoveFromParent()
        return updated_node

    def leave_If(
        self, original_node: cst.If, updated_node: cst.If
    ) -> cst.BaseStatement | cst.RemovalSentinel:
        if self._is_emptied(updated_node.body) and updated_node.orelse is None:
            return cst.RemoveFromParent()
        return updated_node

    def leave_With(
        self, original_node: cst.With, updated_node: cst.With
    ) -> cst.BaseStatement | cst.RemovalSentinel:
        if self._is_emptied(updated_node.body):
            return cst.RemoveFromParent()
        return updated_node


def clean_statements(
    stmts: Sequence[cst.BaseStatement], session_name: str, attribute_kind: Any
) -> tuple[list[cst.BaseStatement], SessionCallCleaner]:
    """Run :class:`SessionCallCleaner` over a statement list (empty blocks filled by ``pass``)."""
    cleaner = SessionCallCleaner(session_name, attribute_kind)
    wrapper = cst.Module(body=list(stmts))
    cleaned = cst.ensure_type(wrapper.visit(cleaner), cst.Module)
    return list(cleaned.body), cleaner


# ------------------------------------------------------------------------------- parameters


def _strip_comment(ws: Any) -> Any:
    if (
        isinstance(ws, cst.ParenthesizedWhitespace)
        and ws.first_line.comment is not None
    ):
        return ws.with_changes(
            first_line=ws.first_line.with_changes(
                comment=None, whitespace=cst.SimpleWhitespace("")
            )
        )
    return ws


def _comma_without_comment(comma: Any) -> Any:
    if isinstance(comma, cst.Comma):
        return comma.with_changes(
            whitespace_after=_strip_comment(comma.whitespace_after)
        )
    return comma


def _has_comment(comma: Any) -> bool:
    return (
        isinstance(comma, cst.Comma)
        and isinstance(comma.whitespace_after, cst.ParenthesizedWhitespace)
        and comma.whitespace_after.first_line.comment is not None
    )


def edit_params(
    params: cst.Parameters,
    remove: Iterable[str] = (),
    insert: Sequence[cst.Param] = (),
    at: int | None = None,
) -> cst.Parameters:
    """Remove named positional parameters and insert new ones, keeping the layout.

    New parameters go where the first removed one was (or at index ``at``, or at the end).
    A removed parameter takes its trailing comment (``db_session,  # Inject db_session``)
    with it; the others keep theirs; a trailing comma stays a trailing comma.
    """
    remove = set(remove)
    old = list(params.params)
    if not any(p.name.value in remove for p in old) and not insert:
        return params
    more_after = (
        isinstance(params.star_arg, (cst.Param, cst.ParamStar))
        or bool(params.kwonly_params)
        or params.star_kwarg is not None
    )
    separators = [p.comma for p in old[:-1] if isinstance(p.comma, cst.Comma)]
    sep = (
        _comma_without_comment(separators[0])
        if separators
        else cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    )
    new_params = [p.with_changes(comma=sep) for p in insert]
    out: list[cst.Param] = []
    inserted = not new_params
    for i, param in enumerate(old):
        if at is not None and i == at and not inserted:
            out.extend(new_params)
            inserted = True
        if param.name.value in remove:
            if not inserted and at is None:
                out.extend(new_params)
                inserted = True
            continue
        out.append(param)
    if not inserted:
        out.extend(new_params)
    if not old:
        last_comma: Any = cst.MaybeSentinel.DEFAULT
        last_ws: Any = cst.SimpleWhitespace("")
    else:
        last_comma = _comma_without_comment(old[-1].comma)
        last_ws = _strip_comment(old[-1].whitespace_after_param)
    for j, param in enumerate(out):
        if j < len(out) - 1 or more_after:
            if not isinstance(param.comma, cst.Comma):
                param = param.with_changes(comma=sep)
            if old and param is old[-1] and j < len(out) - 1:
                param = param.with_changes(
                    whitespace_after_param=cst.SimpleWhitespace("")
                )
        elif not (old and param is old[-1]):
            if isinstance(last_comma, cst.Comma) or not _has_comment(param.comma):
                param = param.with_changes(comma=last_comma)
            param = param.with_changes(whitespace_after_param=last_ws)
        out[j] = param
    return params.with_changes(params=out)


def new_param(name: str, annotation: cst.BaseExpression | None = None) -> cst.Param:
    return cst.Param(
        name=cst.Name(name),
        annotation=cst.Annotation(annotation=annotation)
        if annotation is not None
        else None,
    )


# ------------------------------------------------------------------------------- statements


_BANNER_RULE = re.compile(r"^#\s*([-=*#~_+])\1{2,}\s*$")


# a one-line section title between rules: ``# -- services -----``, ``# === Models ===``
_BANNER_TITLE = re.compile(r"^#\s*([-=*#~_+])\1+\s+\w[^\n]*?\s+\1{3,}\s*$")


def _is_banner(lines: Sequence[cst.EmptyLine]) -> bool:
    """A section banner: a title between two rule lines, or a title ruled on one line."""
    comments = [line.comment.value for line in lines if line.comment is not None]
    if len(comments) == 1:
        return bool(_BANNER_TITLE.match(comments[0]))
    return (
        len(comments) >= 2
        and bool(_BANNER_RULE.match(comments[0]))
        and bool(_BANNER_RULE.match(comments[-1]))
    )


def _split_leading(
    lines: Sequence[cst.EmptyLine],
) -> tuple[list[cst.EmptyLine], list[cst.EmptyLine]]:
    """(detached part, attached comments): comments right above a definition belong to it."""
    lines = list(lines)
    last_blank = max(
        (i for i, line in enumerate(lines) if line.comment is None), default=-1
    )
    return lines[: last_blank + 1], lines[last_blank + 1 :]


def _comment_blocks(lines: Sequence[cst.EmptyLine]) -> list[list[cst.EmptyLine]]:
    blocks: list[list[cst.EmptyLine]] = []
    current: list[cst.EmptyLine] = []
    for line in lines:
        if line.comment is None:
            if current:
                blocks.append(current)
                current = []
        else:
            current.append(line)
    if current:
        blocks.append(current)
    return blocks


class _DropMentioningComments(Transformer):
    def __init__(self, pattern: re.Pattern[str]) -> None:
        super().__init__()
        self.pattern = pattern

    def _mentions(self, comment: cst.Comment | None) -> bool:
        return comment is not None and self.pattern.search(comment.value) is not None

    def on_leave(self, original_node: Any, updated_node: Any) -> Any:
        updated_node = super().on_leave(original_node, updated_node)
        if isinstance(updated_node, cst.TrailingWhitespace) and self._mentions(
            updated_node.comment
        ):
            return updated_node.with_changes(
                whitespace=cst.SimpleWhitespace(""), comment=None
            )
        lines = getattr(updated_node, "leading_lines", None)
        if isinstance(updated_node, cst.CSTNode) and lines:
            doomed = {
                id(line)
                for block in _comment_blocks(lines)
                if any(self._mentions(line.comment) for line in block)
                for line in block
            }
            if doomed:
                return updated_node.with_changes(
                    leading_lines=[line for line in lines if id(line) not in doomed]
                )
        return updated_node


def drop_comments(body: Sequence[cst.BaseStatement]) -> list[cst.BaseStatement]:
    """``body`` without its comments (the lines of comment above a statement and the
    end-of-line ones); the statements themselves are unchanged."""
    if not any("#" in cst.Module(body=[stmt]).code for stmt in body):
        return list(body)
    dropper = _DropMentioningComments(re.compile(""))
    return [cst.ensure_type(stmt.visit(dropper), cst.BaseStatement) for stmt in body]


def drop_comments_mentioning(
    body: Sequence[cst.BaseStatement], names: Iterable[str]
) -> list[cst.BaseStatement]:
    """``body`` without the comments that mention one of ``names`` as a word: a paragraph
    of comment lines goes as a whole, an end-of-line comment alone. The statements
    themselves are unchanged (the same objects where nothing was dropped)."""
    words = sorted(set(names), key=lambda n: (-len(n), n))
    if not words:
        return list(body)
    pattern = re.compile(r"(?<!\w)(?:%s)(?!\w)" % "|".join(map(re.escape, words)))
    if not any(pattern.search(cst.Module(body=[stmt]).code) for stmt in body):
        return list(body)
    dropper = _DropMentioningComments(pattern)
    return [cst.ensure_type(stmt.visit(dropper), cst.BaseStatement) for stmt in body]


def remove_statements(
    body: Sequence[cst.BaseStatement],
    doomed: set[int],
    footer: Sequence[cst.EmptyLine] = (),
) -> tuple[list[cst.BaseStatement], list[cst.EmptyLine]]:
    """Remove the statements at the indices in ``doomed``, keeping detached comments.

    Comments directly above a removed definition go with it. Comment blocks separated from
    it by a blank line (commented-out old code, section banners) move to the next statement
    that stays, except a banner that another banner follows before that statement (the
    section it headed is gone).
    """
    out: list[cst.BaseStatement] = []
    carried: list[list[cst.EmptyLine]] = []

    def surviving(
        blocks: list[list[cst.EmptyLine]], after: list[list[cst.EmptyLine]]
    ) -> list[list[cst.EmptyLine]]:
        everything = blocks + after
        return [
            block
            for k, block in enumerate(blocks)
            if not (
                _is_banner(block) and any(_is_banner(b) for b in everything[k + 1 :])
            )
        ]

    for i, stmt in enumerate(body):
        leading = list(getattr(stmt, "leading_lines", ()))
        if i in doomed:
            detached, _ = _split_leading(leading)
            carried.extend(_comment_blocks(detached))
            continue
        if carried:
            prefix: list[cst.EmptyLine] = []
            for block in surviving(carried, _comment_blocks(leading)):
                if out or prefix:
                    prefix.extend([cst.EmptyLine(), cst.EmptyLine()])
                prefix.extend(block)
            if prefix:
                stmt = stmt.with_changes(leading_lines=prefix + leading)
            carried = []
        out.append(stmt)
    new_footer = list(footer)
    if carried:
        extra: list[cst.EmptyLine] = []
        for block in surviving(carried, []):
            if not _is_banner(block):
                extra.extend([cst.EmptyLine(), cst.EmptyLine(), *block])
        new_footer = extra + new_footer
    return out, new_footer


def _expression(literal: str) -> bool:
    """Whether the string literal ``literal`` holds a Python expression (a string annotation
    does; ``"Manager."``, a one-word docstring, does not)."""
    try:
        value = ast.literal_eval(literal)
        if isinstance(value, str):
            ast.parse(value, mode="eval")
    except (SyntaxError, ValueError):
        return False
    return True


def unused_names(module: cst.Module, candidates: Iterable[str]) -> set[str]:
    """Those of ``candidates`` that ``module`` mentions nowhere outside its import
    statements: neither as a name nor in a string without whitespace that holds an
    expression (a string annotation, an ``__all__`` entry; not prose). Most candidates
    stay in use: the walk stops at the first mention of the last of them."""
    remaining = set(candidates)
    if not remaining:
        return remaining
    texts: list[str] = []
    for stmt in module.body:  # statement by statement: the first uses end the walk
        for leaf in names_below(stmt, outside_imports=True, strings=True):
            if type(leaf) is cst.Name:
                remaining.discard(leaf.value)
                if not remaining:
                    return remaining
            elif not re.search(r"\s", leaf.value):
                texts.append(leaf.value)

    def mentioned(name: str) -> bool:
        word = re.compile(rf"\b{re.escape(name)}\b")
        return any(word.search(text) and _expression(text) for text in texts)

    return {name for name in remaining if not mentioned(name)}


def drop_imports_made_unused(original: cst.Module, updated: cst.Module) -> cst.Module:
    """``updated`` without the module-level imports of names ``original`` used and
    ``updated`` no longer does (the annotation of a parameter the rewrite removed, the class
    of a fixture it deleted). An import nothing used before stays as it was: it may be
    there for its side effects, or for another module's sake."""
    imported = {
        name
        for name, binding in top_level_bindings(original).items()
        if binding is not None
    }
    unused_now = unused_names(updated, imported)  # most imports stay in use: one walk
    if not unused_now:
        return updated
    made_unused = unused_now - unused_names(original, unused_now)
    return _without_imports_of(updated, made_unused)


def remove_unused_imports(module: cst.Module, candidates: Iterable[str]) -> cst.Module:
    """Drop module-level imports of ``candidates`` that nothing in the module uses any more.

    The codemods know which names the code they deleted used; one cheap pass over what is
    left decides (a name still mentioned anywhere, even in a string, keeps its import).
    ``RemoveImportsVisitor`` would decide the same through a full scope analysis, which
    costs seconds on a large conftest, for every step that deletes something.
    """
    return _without_imports_of(module, unused_names(module, candidates))


def _without_imports_of(module: cst.Module, unused: set[str]) -> cst.Module:
    """``module`` without its module-level imports of the names in ``unused``."""
    if not unused:
        return module

    def local(alias: cst.ImportAlias) -> str:
        if alias.asname is not None:
            return get_full_name_for_node(alias.asname.name) or ""
        return (get_full_name_for_node(alias.name) or "").split(".")[0]

    body: list[cst.BaseStatement] = []
    carried: list[cst.EmptyLine] = []
    for stmt in module.body:
        if matches(stmt, ONE_IMPORT_LINE):
            line = cst.ensure_type(stmt, cst.SimpleStatementLine)
            small = line.body[0]
            names = small.names  # type: ignore[union-attr]
            if not isinstance(names, cst.ImportStar):
                keep = [a for a in names if local(a) not in unused]
                if not keep:
                    carried = carried or list(line.leading_lines)
                    continue
                if len(keep) != len(names):
                    trailing = (
                        names[-1].comma
                        if small.__class__ is cst.ImportFrom and small.rpar is not None
                        else cst.MaybeSentinel.DEFAULT
                    )  # type: ignore[union-attr]
                    keep[-1] = keep[-1].with_changes(comma=trailing)
                    stmt = line.with_changes(body=[small.with_changes(names=keep)])
        if carried:
            if not getattr(stmt, "leading_lines", None):
                stmt = stmt.with_changes(leading_lines=carried)
            carried = []
        body.append(stmt)
    return module.with_changes(body=body)


# ------------------------------------------------------------------------------- unread names


def _effect_free(node: cst.BaseExpression) -> bool:
    """Names and literals (and displays of them): evaluating them does nothing."""
    if isinstance(node, (cst.Name, cst.BaseNumber, cst.SimpleString, cst.Ellipsis)):
        return True
    if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
        return all(
            isinstance(e, cst.Element) and _effect_free(e.value) for e in node.elements
        )
    if isinstance(node, cst.Dict):
        return all(
            isinstance(e, cst.DictElement) and _effect_free(e.key) and _effect_free(e.value)
            for e in node.elements
        )
    return False


def _display_parts(value: cst.BaseExpression) -> list[cst.BaseExpression]:
    """What evaluating ``value`` evaluates, in order, where that is all it does: the elements
    of a tuple or list display, the values of a dict display whose keys are names or
    literals (nothing to evaluate, and hashing them does nothing); else ``value`` itself."""
    if isinstance(value, (cst.Tuple, cst.List)) and all(
        isinstance(e, cst.Element) for e in value.elements
    ):
        return [e.value for e in value.elements]
    if isinstance(value, cst.Dict) and all(
        isinstance(e, cst.DictElement) and _effect_free(e.key) for e in value.elements
    ):
        return [cst.ensure_type(e, cst.DictElement).value for e in value.elements]
    return [value]


def _bound_names(stmt: cst.BaseStatement) -> tuple[list[str], cst.BaseExpression] | None:
    """``a = <value>`` or ``a, b = <value>`` (one target, names only): names and value."""
    if not (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Assign)
        and len(stmt.body[0].targets) == 1
    ):
        return None
    target = stmt.body[0].targets[0].target
    elements = (
        [e.value for e in target.elements]
        if isinstance(target, (cst.Tuple, cst.List))
        else [target]
    )
    if not all(isinstance(e, cst.Name) for e in elements):
        return None
    return [cst.ensure_type(e, cst.Name).value for e in elements], stmt.body[0].value


def _evaluated(
    stmt: cst.SimpleStatementLine, value: cst.BaseExpression
) -> list[cst.BaseStatement]:
    """What is left of ``stmt`` when the names it binds are not needed: its value as an
    expression statement, the elements of a display (the values of a dict display) one by
    one, nothing of what has no effect. The first keeps the statement's leading lines (and the last its comment)."""
    parts = [p for p in _display_parts(value) if not _effect_free(p)]
    out: list[cst.BaseStatement] = [
        cst.SimpleStatementLine(body=[cst.Expr(p.with_changes(lpar=[], rpar=[]))])
        for p in parts
    ]
    if out:
        out[0] = out[0].with_changes(leading_lines=stmt.leading_lines)
        out[-1] = out[-1].with_changes(trailing_whitespace=stmt.trailing_whitespace)
    return out


def drop_unread_bindings(
    stmts: Sequence[cst.BaseStatement],
    droppable: Callable[[cst.BaseStatement], bool],
    memo: Any = None,
) -> list[cst.BaseStatement]:
    """``stmts`` (a function's body, straight-line) where each ``droppable`` assignment whose
    names nothing else in ``stmts`` reads keeps only what evaluating its value does
    (:func:`_evaluated`): a call stays as a statement of its own, a name or a literal goes.
    Repeated until every such assignment is read (a binding that goes may leave another
    one unread). The leading lines of a statement that goes entirely pass to the next."""
    out = list(stmts)
    changed = True
    while changed:
        changed = False
        for index in range(len(out) - 1, -1, -1):
            stmt = out[index]
            bound = _bound_names(stmt) if droppable(stmt) else None
            if bound is None:
                continue
            names, value = bound
            others = [*out[:index], *out[index + 1 :]]
            if set(names) & set(scan(others, memo=memo).used):
                continue
            line = cst.ensure_type(stmt, cst.SimpleStatementLine)
            replacement = _evaluated(line, value)
            if not replacement and index + 1 < len(out):
                following = out[index + 1]
                if not getattr(following, "leading_lines", True):
                    out[index + 1] = following.with_changes(leading_lines=line.leading_lines)
            out[index : index + 1] = replacement
            changed = True
    return out


def _single_name_assignment(stmt: cst.BaseStatement) -> tuple[str, cst.Assign] | None:
    """``x = <value>`` (one target, a bare name): the name and the assignment."""
    if not (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Assign)
        and len(stmt.body[0].targets) == 1
        and isinstance(stmt.body[0].targets[0].target, cst.Name)
    ):
        return None
    assign = stmt.body[0]
    return cst.ensure_type(assign.targets[0].target, cst.Name).value, assign


def collapse_aliases(
    stmts: Sequence[cst.BaseStatement],
    collapsible: Callable[[cst.BaseStatement], bool],
    memo: Any = None,
    around: Sequence[cst.CSTNode] = (),
) -> list[cst.BaseStatement]:
    """``stmts`` (a block of a function's body; ``around``: the rest of the function) where a ``collapsible`` ``x = <value>`` right before
    ``<targets> = x``, with ``x`` mentioned nowhere else, becomes ``<targets> = <value>``
    (``x = make(session)`` then ``game, scenes = x``: ``game, scenes = make(session)``).
    The merged statement keeps the first one's leading lines; the blank lines before the
    second pass to the statement after it if it has none (a comment before the second
    keeps it as is)."""
    out = list(stmts)
    index = 0
    while index + 1 < len(out):
        first, second = out[index], out[index + 1]
        head = _single_name_assignment(first) if collapsible(first) else None
        alias = second if isinstance(second, cst.SimpleStatementLine) else None
        if (
            head is None
            or alias is None
            or len(alias.body) != 1
            or not isinstance(alias.body[0], cst.Assign)
            or not m.matches(alias.body[0].value, m.Name(head[0]))
            or any(line.comment is not None for line in alias.leading_lines)
        ):
            index += 1
            continue
        name, assign = head
        assignment = cst.ensure_type(alias.body[0], cst.Assign)
        targets = scan([t.target for t in assignment.targets], memo=memo).used
        if name in targets or scan([*out, *around], memo=memo).used.count(name) != 2:
            index += 1
            continue
        merged = cst.ensure_type(first, cst.SimpleStatementLine).with_changes(
            body=[assignment.with_changes(value=assign.value)],
            trailing_whitespace=alias.trailing_whitespace,
        )
        out[index : index + 2] = [merged]
        if index + 1 < len(out) and alias.leading_lines:
            following = out[index + 1]
            if getattr(following, "leading_lines", True) == []:  # blank lines, not doubled
                out[index + 1] = following.with_changes(leading_lines=alias.leading_lines)
    return out


def with_fixture_request(fn: cst.FunctionDef, name: str) -> cst.FunctionDef | None:
    """``fn`` asking pytest for one more fixture, ``name``, as its last parameter; ``None``
    where a parameter could not simply be appended (defaults, ``*args``, keyword-only
    parameters or ``**kwargs``)."""
    params = fn.params
    if (
        params.star_arg is not cst.MaybeSentinel.DEFAULT
        or any(p.default is not None for p in params.params)
        or params.kwonly_params
        or params.star_kwarg is not None
    ):
        return None
    return fn.with_changes(
        params=params.with_changes(params=[*params.params, cst.Param(cst.Name(name))])
    )


_NOQA = re.compile(r"#\s*noqa\s*:\s*(?P<codes>[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)(?P<rest>.*)$")


def _without_code(comment: cst.Comment | None, rule: str) -> cst.Comment | None:
    """``comment`` without ``rule`` in its ``# noqa:`` list: gone with the text after it when
    that was the only code, else the list without it (``None``: no comment left)."""
    if comment is None:
        return None
    found = _NOQA.match(comment.value)
    if found is None:
        return comment
    codes = [c.strip() for c in found.group("codes").split(",")]
    if rule not in codes:
        return comment
    kept = [c for c in codes if c != rule]
    if not kept:
        return None
    return cst.Comment(f"# noqa: {', '.join(kept)}{found.group('rest')}")


def without_noqa(fn: cst.FunctionDef, rule: str) -> cst.FunctionDef:
    """``fn`` whose decorator and ``def`` lines no longer silence ``rule`` (a ``# noqa``
    made stale by a change elsewhere, such as the deleted earlier definition F811 was about)."""

    def trailing(ws: cst.TrailingWhitespace) -> cst.TrailingWhitespace:
        comment = _without_code(ws.comment, rule)
        if comment is ws.comment:
            return ws
        if comment is None:
            return ws.with_changes(whitespace=cst.SimpleWhitespace(""), comment=None)
        return ws.with_changes(comment=comment)

    decorators = [d.with_changes(trailing_whitespace=trailing(d.trailing_whitespace)) for d in fn.decorators]
    body = fn.body
    if isinstance(body, cst.IndentedBlock):
        body = body.with_changes(header=trailing(body.header))
    new = fn.with_changes(decorators=decorators, body=body)
    return fn if new.deep_equals(fn) else new
