"""Phase 6 of docs/plan.md: final cleanup and review.

* 6.1 :class:`RemoveStaleComments` removes commented-out code that uses a removed session
  API or fixture, migration notes (``# TODO: ...``) that name one, and trailing comments that
  name one (``session_context,  # Inject db_session``). "Commented-out code" is decided by
  parsing the uncommented text, never by a list: a comment block that parses as Python, has a
  real statement in it (an assignment, a call, a ``def``...) and mentions a removed name goes.
  Prose comments stay; a prose comment that still names a removed API is reported.
* 6.2 :class:`UpdateDocstrings` rewrites docstrings that describe removed APIs: the sentences
  that describe a removed function, method or fixture, or (where ``session`` is now a
  required parameter) the optional-session fallback, are deleted; ``scoped_session`` becomes
  ``sessionmaker``; "an optional session" becomes "a session". What it cannot fix safely (a
  summary line or a parameter description that would become empty, a code example) is
  reported with its line.
* 6.3 :func:`format_changed` (the phase's ``postprocess``) runs ``ruff format`` over the
  lines the refactoring changed in the Python files it changed, and over nothing else (see
  :func:`refactored_files` for how those files are found).
* 6.4 is the gate: ``refactor-tool check`` (:mod:`refactor_tool.check`) must pass.

A name counts as *removed* when it is one of ``Config.removed_session_apis``,
``Config.get_session_method`` or ``Config.session_fixture`` and no code in the target uses it
any more (comments, strings and docstrings do not count). While some code still uses a name,
nothing that mentions it is touched: the phase only tidies what the earlier phases finished.
"""

from __future__ import annotations

import ast
import configparser
import dataclasses
import difflib
import functools
import io
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import tokenize
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Optional, Sequence

import libcst as cst
import libcst.matchers as m
from libcst.codemod import SkipFile
from libcst.matchers import matches

from codemods.base import Note, PhaseSpec, RefactorCodemod, StepSpec
from refactor_tool.model.changes import FileChange
from refactor_tool.model.config import Config
from refactor_tool.model.managers import own_init, relpath_for
from refactor_tool.model.project import Project
from refactor_tool.model.state import state_of
from refactor_tool.model.syntax import findall, names_below

logger = logging.getLogger(__name__)

#: what ``scoped_session`` becomes in prose
SESSIONMAKER = "sessionmaker"
SCOPED = "scoped_session"

# ------------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class CleanupAnalysis:
    config: Config
    root: Path
    #: every name the refactoring removes
    removed: frozenset[str]
    #: the removed names that no code in the target uses any more
    dead: frozenset[str]
    #: files whose text mentions a dead name (in comments, strings or docstrings)
    mentions: frozenset[str]
    #: those of them with a ``#`` before a mention on the same line: step 6.1's files
    comment_mentions: frozenset[str] = frozenset()
    #: files with a docstring that may need step 6.2 (a superset, from a text search)
    docstring_files: frozenset[str] = frozenset()
    #: the base manager's execute method exists and no longer commits or rolls back
    execute_commits_gone: bool = False

    def pattern(self) -> Optional[re.Pattern[str]]:
        return _word_pattern(self.dead)


def removed_names(config: Config) -> frozenset[str]:
    return config.removed_names


def _word_pattern(names: Iterable[str]) -> Optional[re.Pattern[str]]:
    return _word_pattern_of(frozenset(names))


@functools.lru_cache(maxsize=64)
def _word_pattern_of(names: frozenset[str]) -> Optional[re.Pattern[str]]:
    names = sorted(names, key=lambda n: (-len(n), n))
    if not names:
        return None
    return re.compile(r"(?<!\w)(?:%s)(?!\w)" % "|".join(re.escape(n) for n in names))


def code_names(
    source: bytes, names: frozenset[str], tree: Optional[cst.Module] = None
) -> Optional[set[str]]:
    """Which of ``names`` the code of ``source`` uses (identifiers and exact string entries,
    as in ``__all__``); comments and docstrings do not count. None if it does not tokenize.

    With ``tree`` (libcst's tree of ``source``, when it is parsed already) the answer is
    read off the tree: its ``Name`` nodes are the NAME tokens and its ``SimpleString``
    nodes the STRING tokens (an f-string is never an entry), and the names and strings
    inside f-string replacement fields count too, as Python 3.12's tokenizer reports them."""
    if tree is not None:
        return _tree_names(source, names, tree)
    found: set[str] = set()
    try:
        for tok in tokenize.tokenize(io.BytesIO(source).readline):
            if tok.type == tokenize.NAME:
                if tok.string in names:
                    found.add(tok.string)
            elif tok.type == tokenize.STRING and len(tok.string) < 80:
                stripped = tok.string.strip("'\"")
                if stripped in names and tok.string[-1] in "'\"" and "\n" not in tok.string:
                    found.add(stripped)
    except (tokenize.TokenError, SyntaxError, UnicodeDecodeError, LookupError):
        return None
    return found


def _tree_names(source: bytes, names: frozenset[str], tree: cst.Module) -> set[str]:
    found = {n.value for n in names_below(tree) if n.value in names}
    quoted = [n for n in names - found if any(f"{q}{n}{q}".encode() in source for q in "'\"")]
    if quoted:  # a string entry can only be where the text has the name in quotes
        for node in findall(tree, m.SimpleString()):
            text = cst.ensure_type(node, cst.SimpleString).value
            if len(text) < 80 and "\n" not in text and text.strip("'\"") in names:
                found.add(text.strip("'\""))
    return found


def analyze(project: Project) -> CleanupAnalysis:
    config = project.config
    removed = removed_names(config)
    every = project.python_files()
    hits = project.grep(every, *sorted(removed)) if removed else []
    live: set[str] = set()
    for rel in hits:
        source = project.read_bytes(rel)
        used = code_names(source, removed, project.parse(rel) if project.is_parsed(rel) else None)
        if used is None:  # cannot tell: treat every name the file mentions as in use
            used = {n for n in removed if n.encode() in source}
        live |= used
    dead = removed - live
    pattern = _word_pattern(dead)
    mentions = frozenset(
        rel for rel in hits if pattern is not None and pattern.search(project.read_text(rel))
    )
    in_comment = None if pattern is None else re.compile(r"#[^\n]*?" + pattern.pattern)
    comment_mentions = frozenset(
        rel for rel in mentions if in_comment is not None and in_comment.search(project.read_text(rel))
    )
    commits_gone = _execute_commits_gone(project)
    optional = _OptionalText(config.session_variable)
    execute = config.execute_method.encode()
    docstring_files = set(mentions)
    for rel in every:
        if rel in docstring_files:
            continue
        data = project.read_bytes(rel)
        if optional.search(data) or (commits_gone and execute in data and _COMMIT_BYTES.search(data)):
            docstring_files.add(rel)
    return CleanupAnalysis(
        config=config,
        root=project.root,
        removed=removed,
        dead=frozenset(dead),
        mentions=mentions,
        comment_mentions=comment_mentions,
        docstring_files=frozenset(docstring_files),
        execute_commits_gone=commits_gone,
    )


class _OptionalText:
    """The text prefilter for step 6.2's optional-session rules (bytes, case-insensitive):
    ``search(data)`` is true where any of them could apply. Each rule's pattern runs only
    on text holding its literal word (a case-insensitive pattern is scanned character by
    character, and every module has an ``if``)."""

    def __init__(self, session: str) -> None:
        s = re.escape(session.encode())
        self.session = session.lower().encode()
        self.rules: list[tuple[tuple[bytes, ...], re.Pattern[bytes]]] = [
            ((b"optional",), re.compile(rb"(?i)optional\s+(?:\S+\s+){0,2}`{0,2}\w*" + s)),
            ((b"(optional)",), re.compile(rb"(?i)" + s + rb"\b[^\n]*\((?:optional)\)")),
            (
                (b"provided", b"given", b"passed", b"supplied", b"specified"),
                re.compile(
                    rb"(?i)\b(?:if|when|unless)\b[^\n.;]*\b(?:not|no|none|omitted|missing)\b[^\n.;]*"
                    rb"\b(?:provided|given|passed|supplied|specified)\b"
                ),
            ),
            ((b"default",), re.compile(rb"(?i)defaults?\s+to\s+`{0,2}None")),
            ((b"own",), re.compile(rb"(?i)own\s+" + s)),
            ((b"thread",), re.compile(rb"(?i)thread(?:'s|-local)\s+" + s)),
        ]

    def search(self, data: bytes) -> bool:
        lowered = data.lower()
        return any(
            any(word in lowered for word in words) and pattern.search(data) is not None
            for words, pattern in self.rules
        )


_COMMIT_BYTES = re.compile(rb"(?i)commit|roll(?:s|ed|ing)?\s+back|rollback")


def _execute_commits_gone(project: Project) -> bool:
    config = project.config
    rel = config.base_manager_module
    if not project.exists(rel) or config.execute_method.encode() not in project.read_bytes(rel):
        return False
    for stmt in project.parse(rel).body:
        if matches(stmt, m.ClassDef(name=m.Name(config.base_manager_class))):
            for method in stmt.body.body:  # type: ignore[attr-defined]
                if matches(method, m.FunctionDef(name=m.Name(config.execute_method))):
                    verbs = findall(method, m.Call(func=m.Attribute(attr=m.Name("commit") | m.Name("rollback"))))
                    return not verbs
    return False


def files(project: Project, analysis: CleanupAnalysis) -> list[str]:
    """Files with a comment or docstring to look at (found by :func:`analyze`'s text search):
    those that mention a removed name, those that may describe a session as optional, and
    those that may say the execute method commits."""
    return sorted(analysis.mentions | analysis.docstring_files)


# ------------------------------------------------------------------------------- 6.1 comments

#: directive comments are never commented-out code
_DIRECTIVE = re.compile(
    r"^#(?:!|:|\s*(?:-\*-|type:|noqa|pragma|fmt:|pylint:|mypy:|pyright:|isort:|ruff:|nosec|coding[:=]))"
)
#: a migration note: "TODO: ...", "FIXME(...)", "XXX ...", "HACK: ..."
_NOTE = re.compile(r"^\s*(?:TODO|FIXME|XXX|HACK)\b", re.IGNORECASE)
_TYPE_LIKE = (ast.Name, ast.Attribute, ast.Subscript, ast.Constant)
_PROSE_EXPR = (ast.Name, ast.Attribute, ast.Constant, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp)


def uncomment(comment: str) -> Optional[str]:
    """``#     session = x`` -> ``    session = x``; None for directives."""
    if not comment.startswith("#") or _DIRECTIVE.match(comment):
        return None
    return comment[1:]


def parse_code(lines: Sequence[str]) -> Optional[ast.Module]:
    """The uncommented lines as Python, if they are Python with at least one real statement."""
    text = textwrap.dedent("\n".join(lines)) + "\n"
    try:
        with warnings.catch_warnings():  # "invalid escape sequence" and the like: not ours
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    return tree if _is_code(tree, text) else None


def _type_like(node: ast.expr) -> bool:
    if isinstance(node, ast.BinOp):
        return isinstance(node.op, ast.BitOr) and _type_like(node.left) and _type_like(node.right)
    return isinstance(node, _TYPE_LIKE)


def _is_code(tree: ast.Module, text: str) -> bool:
    """Prose can parse too ("Note: get_session is gone" is an annotation, "TODO" a name):
    only statements that prose does not produce make a comment code."""
    if not tree.body:
        return False
    for stmt in tree.body:
        if isinstance(stmt, ast.Expr):
            value = stmt.value
            if isinstance(value, ast.Tuple):
                if text.rstrip().endswith(","):  # a commented-out argument: ``db_session,``
                    return True
                continue
            if isinstance(value, _PROSE_EXPR):
                continue
            return True
        if isinstance(stmt, ast.AnnAssign) and stmt.value is None:
            target = stmt.target
            if isinstance(target, ast.Name) and not target.id[:1].isupper() and _type_like(stmt.annotation):
                return True
            continue
        return True
    return False


def code_identifiers(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.keyword) and node.arg:
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.update(node.name.split("."))
            if node.asname:
                names.add(node.asname)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update(node.module.split("."))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)
    return names


@dataclass
class BlockPlan:
    """What to do with one block of consecutive comment lines."""

    remove: set[int] = dataclasses.field(default_factory=set)
    reports: list[tuple[int, str]] = dataclasses.field(default_factory=list)


def _units(tree: ast.Module, start: int, end: int) -> list[tuple[int, int, set[str]]]:
    """Split a commented-out code segment (block lines ``start``..``end``) into units that
    go or stay together: each ``def``/``class`` is a unit, so is each run of other
    statements. Returns (first, end, names) in block line indices; lines between units (blank
    lines, comments inside the commented-out code) belong to the unit that follows them."""
    spans: list[list[Any]] = []
    previous_compound = True
    for stmt in tree.body:
        first = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])])
        last = stmt.end_lineno or stmt.lineno
        compound = isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        if compound or previous_compound:
            spans.append([start + first - 1, start + last, code_identifiers(stmt)])
        else:
            spans[-1][1] = start + last
            spans[-1][2] |= code_identifiers(stmt)
        previous_compound = compound
    units: list[tuple[int, int, set[str]]] = []
    lo = start
    for k, (_, hi, names) in enumerate(spans):
        if k == len(spans) - 1:
            hi = end
        units.append((lo, hi, names))
        lo = hi
    return units


def plan_block(comments: Sequence[str], dead: frozenset[str], pattern: re.Pattern[str]) -> BlockPlan:
    """Decide, for a block of consecutive comment lines, which lines go and what to report."""
    plan = BlockPlan()
    bodies = [uncomment(c) for c in comments]
    n = len(comments)
    blank = [b is not None and not b.strip() for b in bodies]
    # segments: (start, end, kind, names) with kind in code / prose / blank
    segments: list[tuple[int, int, str, set[str]]] = []
    i = 0
    while i < n:
        body = bodies[i]
        if blank[i]:
            segments.append((i, i + 1, "blank", set()))
            i += 1
            continue
        found = False
        if body is not None:
            for j in range(n, i, -1):
                if blank[j - 1] or any(b is None for b in bodies[i:j]):
                    continue
                tree = parse_code([b for b in bodies[i:j] if b is not None])
                if tree is not None:
                    for lo, hi, names in _units(tree, i, j):
                        segments.append((lo, hi, "code", names & dead))
                    i = j
                    found = True
                    break
        if not found:
            names = set(pattern.findall(comments[i]))
            if segments and segments[-1][2] == "prose" and segments[-1][1] == i and not _NOTE.match(body or ""):
                lo, _, _, prev = segments.pop()
                segments.append((lo, i + 1, "prose", prev | names))
            else:
                segments.append((i, i + 1, "prose", names))
            i += 1

    removed_code = [s for s in segments if s[2] == "code" and s[3]]
    for lo, hi, _, _ in removed_code:
        plan.remove.update(range(lo, hi))

    def next_to_removed(lo: int, hi: int) -> bool:
        k = lo - 1
        while k >= 0 and blank[k]:
            k -= 1
        if k >= 0 and k in plan.remove:
            return True
        k = hi
        while k < n and blank[k]:
            k += 1
        return k < n and k in plan.remove

    for lo, hi, kind, names in segments:
        if kind != "prose":
            continue
        first = bodies[lo] or ""
        if names:
            if _NOTE.match(first) or (removed_code and next_to_removed(lo, hi)):
                plan.remove.update(range(lo, hi))
            else:
                plan.reports.append(
                    (lo, f"comment mentions removed {_names(names)}; update or delete it by hand")
                )
        elif removed_code and next_to_removed(lo, hi):
            plan.reports.append(
                (lo, "comment sat next to commented-out code that was removed; check it still applies")
            )
    if plan.remove:
        # blank comment lines ("#") that only separated removed lines, or now sit at an edge
        kept = [k for k in range(n) if k not in plan.remove]
        while kept and blank[kept[0]]:
            plan.remove.add(kept.pop(0))
        while kept and blank[kept[-1]]:
            plan.remove.add(kept.pop())
        previous_blank = False
        for k in list(kept):
            if blank[k] and previous_blank:
                plan.remove.add(k)
            previous_blank = blank[k]
    return plan


def _names(names: Iterable[str]) -> str:
    return ", ".join(f"`{n}`" for n in sorted(names))


_LINE_HOLDERS = ("leading_lines", "lines_after_decorators", "header", "footer", "empty_lines")
_HOLDER_FIELDS: dict[type, tuple[str, ...]] = {}


def _holder_fields(node_type: type) -> tuple[str, ...]:
    fields = _HOLDER_FIELDS.get(node_type)
    if fields is None:
        names = {f.name for f in dataclasses.fields(node_type)}
        fields = tuple(f for f in _LINE_HOLDERS if f in names)
        _HOLDER_FIELDS[node_type] = fields
    return fields


class RemoveStaleComments(RefactorCodemod):
    STEP = "6.1"
    DESCRIPTION = (
        "Remove commented-out code that uses a removed session API or fixture, TODO notes "
        "and trailing comments that name one; report other comments that still name one."
    )

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        pattern = self.analysis.pattern()
        if pattern is None:
            raise SkipFile("no removed name is unused yet")
        rel = relpath_for(self.context.filename, self.analysis.root)
        if rel is not None and rel not in self.analysis.comment_mentions:
            raise SkipFile("no comment can name a removed API here")
        self._pattern = pattern
        self._dead: frozenset[str] = self.analysis.dead
        # every change and report starts from a comment that names a removed API: only the
        # paths down to those comments are visited
        return super().transform_module_impl(tree)

    def leave_TrailingWhitespace(
        self, original_node: cst.TrailingWhitespace, updated_node: cst.TrailingWhitespace
    ) -> cst.TrailingWhitespace:
        comment = updated_node.comment
        if comment is None or _DIRECTIVE.match(comment.value) or not self._pattern.search(comment.value):
            return updated_node
        return updated_node.with_changes(whitespace=cst.SimpleWhitespace(""), comment=None)

    def on_leave(self, original_node: cst.CSTNode, updated_node: Any) -> Any:
        updated = super().on_leave(original_node, updated_node)
        if not isinstance(updated, cst.CSTNode) or type(updated) is not type(original_node):
            return updated
        changes: dict[str, Any] = {}
        for name in _holder_fields(type(original_node)):
            original_lines = getattr(original_node, name)
            if not isinstance(original_lines, (list, tuple)) or not original_lines:
                continue
            new_lines = self._clean(original_lines, getattr(updated, name))
            if new_lines is not None:
                changes[name] = new_lines
        return updated.with_changes(**changes) if changes else updated

    def _clean(
        self, original: Sequence[cst.EmptyLine], updated: Sequence[cst.EmptyLine]
    ) -> Optional[list[cst.EmptyLine]]:
        if len(original) != len(updated) or not all(isinstance(line, cst.EmptyLine) for line in original):
            return None
        remove: set[int] = set()
        i, n = 0, len(original)
        while i < n:
            if original[i].comment is None:
                i += 1
                continue
            j = i
            while j < n and original[j].comment is not None:
                j += 1
            comments = [line.comment.value for line in original[i:j]]  # type: ignore[union-attr]
            if any(self._pattern.search(c) for c in comments):
                plan = plan_block(comments, self._dead, self._pattern)
                remove.update(i + k for k in plan.remove)
                for k, message in plan.reports:
                    self.report(original[i + k], message)
                if plan.remove and len(plan.remove) == j - i:
                    remove.update(_extra_blank_lines(original, i, j))
            i = j
        if not remove:
            return None
        return [line for k, line in enumerate(updated) if k not in remove]


def _extra_blank_lines(lines: Sequence[cst.EmptyLine], start: int, end: int) -> set[int]:
    """A whole comment block [start, end) goes: keep as many blank lines around the gap as
    the larger of the two runs that surrounded it, not their sum."""
    before = 0
    k = start - 1
    while k >= 0 and lines[k].comment is None:
        before += 1
        k -= 1
    after = 0
    k = end
    while k < len(lines) and lines[k].comment is None:
        after += 1
        k += 1
    if not before or not after:
        return set()
    surplus = before + after - max(before, after)
    return set(range(end, end + surplus))


# ------------------------------------------------------------------------------- 6.2 docstrings

_STRING = re.compile(r"^(?P<prefix>[rRuU]?)(?P<quote>\"\"\"|'''|\"|')", re.S)
#: start of a docstring entry: ``name: ...``, ``name (type): ...``, ``Args:``, bullets, doctest
_ENTRY = re.compile(r"^\s*(?:[-*+]\s|>>>|(?P<head>[\w.*]+\s*(?:\([^)]*\))?\s*:)(?:\s|$))")
_HEAD = re.compile(r"^(?P<head>\s*(?P<name>\*{0,2}[\w.]+)\s*(?:\([^)]*\))?\s*:)(?=\s|$)")
_SENTENCE_END = re.compile(r"[.!?][)\]\"'`]*(?=\s+[A-Z`\"'(\[*]|\s*$)")
_FALLBACK = re.compile(
    r"\b(?:if|when|unless|otherwise)\b[^.;]*?\b(?:no|not|none|omitted|missing)\b[^.;]*?"
    r"\b(?:provided|given|passed|supplied|specified|set)\b"
    r"|\b(?:if|when)\s+`{0,2}\w*session\w*`{0,2}\s+is\s+`{0,2}None\b"
    r"|\bdefaults?\s+to\s+`{0,2}None\b"
    r"|\b(?:creates?|opens?|fetch(?:es)?|gets?|uses?)\b[^.;]*\bown\s+session\b"
    r"|\b(?:fetch(?:es)?|gets?|uses?|takes?)\b[^.;]*\bthread(?:'s|-local)\s+session\b",
    re.IGNORECASE,
)
_OPTIONAL_ARTICLE = re.compile(r"\b([Aa])n\s+optional\s+(?=(?:[\w`.]+\s+){0,2}`{0,2}\w*session)")
_OPTIONAL = re.compile(r"(?<![Aa]n )\b([Oo])ptional\s+(?=(?:[\w`.]+\s+){0,2}`{0,2}\w*session)(\S)")
#: a parenthetical aside in a sentence, with the space before it
_ASIDE = re.compile(r"\s*\([^()]*\)")
_OPTIONAL_MARK = re.compile(r"\s*\(\s*optional\s*\)", re.IGNORECASE)


@dataclass
class DocContext:
    dead: frozenset[str]
    #: the docstring belongs to a function (or class) whose ``session`` parameter is required
    session_required: bool
    session_name: str = "session"
    #: the execute method no longer commits: text saying it does is stale
    execute_method: Optional[str] = None
    #: the docstring is the execute method's own
    in_execute_method: bool = False


@dataclass
class DocResult:
    body: str
    problems: list[str]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _literal_lines(lines: list[str]) -> list[bool]:
    """Lines of ``::`` literal blocks and doctests: examples, never rewritten."""
    literal = [False] * len(lines)
    block_indent: Optional[int] = None
    in_doctest = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if block_indent is not None:
            if not stripped or _indent(line) > block_indent:
                literal[i] = True
                continue
            block_indent = None
        if stripped.startswith(">>>") or (in_doctest and stripped):
            literal[i] = True
            in_doctest = True
            continue
        in_doctest = False
        if stripped.endswith("::"):
            block_indent = _indent(line) if i else 0
    return literal


def _beyond_every_rule(body: str, ctx: DocContext) -> bool:
    """Whether no rule of :func:`rewrite_docstring_body` can change ``body`` or report on
    it: each rule needs one of these in the text (checked on the raw text, where a line
    break is whitespace as the space that joins the lines of an entry is)."""
    if "optional" in body.lower():  # the optional-session wordings and ``(optional)`` marks
        return False
    dead = _word_pattern(ctx.dead)
    if dead is not None and dead.search(body):  # a removed API: deleted, or reported
        return False
    if SCOPED in ctx.dead and SCOPED in body:
        return False
    if ctx.session_required and _FALLBACK.search(body):
        return False
    return not (ctx.execute_method and _COMMITS.search(body))


def rewrite_docstring_body(body: str, ctx: DocContext) -> DocResult:
    """Rewrite the text of a docstring (between the quotes); see :class:`UpdateDocstrings`."""
    if _beyond_every_rule(body, ctx):
        return DocResult(body, [])
    return _rewrite_docstring_body(body, ctx)


def _rewrite_docstring_body(body: str, ctx: DocContext) -> DocResult:
    newline = "\r\n" if "\r\n" in body else "\n"
    lines = body.split(newline)
    problems: list[str] = []
    dead_pattern = _word_pattern(ctx.dead)
    deletable = _word_pattern(ctx.dead - {SCOPED})
    scoped = SCOPED in ctx.dead
    literal = _literal_lines(lines)

    # entries: runs of lines that belong together (a paragraph, an ``Args:`` item)
    entries: list[list[int]] = []
    current: Optional[list[int]] = None
    for i, line in enumerate(lines):
        if literal[i] or not line.strip():
            current = None
            continue
        if (
            current is None
            or _ENTRY.match(line)
            or _indent(line) < _indent(lines[current[-1]]) and current[-1] != 0
        ):
            current = [i]
            entries.append(current)
        else:
            current.append(i)

    edits: dict[int, list[tuple[int, int, str]]] = {}
    dropped: set[int] = set()
    for n, entry in enumerate(entries):
        result = _rewrite_entry(lines, entry, ctx, deletable, scoped, is_summary=n == 0)
        if result is None:
            continue
        entry_edits, entry_dropped, problem = result
        if problem:
            problems.append(problem)
            continue
        for li, edit in entry_edits:
            edits.setdefault(li, []).append(edit)
        dropped |= entry_dropped

    new_lines: list[Optional[str]] = []
    for i, line in enumerate(lines):
        if i in dropped:
            new_lines.append(None)
            continue
        if i in edits:
            indent = _indent(line)
            at_start = any(c0 <= indent < c1 for c0, c1, _ in edits[i])
            for c0, c1, text in sorted(edits[i], reverse=True):
                line = line[:c0] + text + line[c1:]
            if at_start:  # the line's text now starts later: keep its indentation
                line = lines[i][:indent] + line[indent:].lstrip(" ")
            if not line.strip() and lines[i].strip():
                new_lines.append(None)
                continue
            line = line.rstrip()
        new_lines.append(line)
    for entry in entries:
        if any(i in edits or i in dropped for i in entry):
            _reflow(entry, lines, new_lines)
    # blank lines left doubled (or hanging before the closing quotes) by a removed paragraph
    result_lines: list[str] = []
    removed_since = False
    last = len(new_lines) - 1
    for i, line in enumerate(new_lines):
        if line is None:
            removed_since = True
            continue
        is_blank = not line.strip()
        previous_blank = bool(result_lines) and not result_lines[-1].strip()
        if i == last and is_blank:  # the closing quotes' indentation
            if removed_since and previous_blank and len(result_lines) > 1:
                result_lines.pop()
        elif is_blank and removed_since and previous_blank:
            continue
        if not is_blank:
            removed_since = False
        result_lines.append(line)
    if new_lines and new_lines[-1] is None:  # the text ran up to the closing quotes
        while len(result_lines) > 1 and not result_lines[-1].strip():
            result_lines.pop()
    if (
        dropped
        and len(result_lines) > 1
        and result_lines[0].strip()
        and not any(line.strip() for line in result_lines[1:])
    ):  # only the summary is left: a one-line docstring
        result_lines = [result_lines[0]]
    new_body = newline.join(result_lines)

    # what is left that still names a removed API: examples, or text the rules could not fix
    if dead_pattern is not None:
        flagged = bool(problems)  # an entry already reported: the docstring needs a look anyway
        for line in new_body.split(newline):
            found = sorted(set(dead_pattern.findall(line)))
            if found:
                where = "example" if any(literal) and _is_literal_text(line, lines, literal) else "text"
                if flagged and where == "text":
                    continue
                problems.append(
                    f"docstring {where} still mentions removed {_names(found)}; update it by hand"
                )
    return DocResult(new_body, _dedupe(problems))


def _reflow(entry: list[int], lines: list[str], new_lines: list[Optional[str]]) -> None:
    """A paragraph the rewrite shortened, wrapped again as it was written: at the width of
    its longest line, with its lines' indentation. Only a plain paragraph of two lines or
    more below the summary line, all indented alike (not an ``Args:`` item, a list, the
    introduction of an example)."""
    kept = [i for i in entry if new_lines[i] is not None]
    if len(entry) < 2 or not kept or entry[0] == 0:
        return
    prefix = lines[entry[0]][: _indent(lines[entry[0]])]
    if any(lines[i][: len(prefix)] != prefix or _indent(lines[i]) != len(prefix) for i in entry):
        return
    if any(_ENTRY.match(lines[i]) or lines[i].rstrip().endswith("::") for i in entry):
        return  # a list, or a line introducing a literal block, keeps its lines
    wrapped = textwrap.wrap(
        " ".join((new_lines[i] or "").strip() for i in kept),
        width=max(len(lines[i]) for i in entry),
        initial_indent=prefix,
        subsequent_indent=prefix,
        break_long_words=False,
        break_on_hyphens=False,
    )
    if not wrapped or len(wrapped) > len(kept):
        return
    for position, i in enumerate(kept):
        new_lines[i] = wrapped[position] if position < len(wrapped) else None


def _is_literal_text(line: str, lines: list[str], literal: list[bool]) -> bool:
    return any(lit and old == line for old, lit in zip(lines, literal))


def _dedupe(items: list[str]) -> list[str]:
    seen: set[str] = set()
    return [x for x in items if not (x in seen or seen.add(x))]  # type: ignore[func-returns-value]


def _rewrite_entry(
    lines: list[str],
    entry: list[int],
    ctx: DocContext,
    deletable: Optional[re.Pattern[str]],
    scoped: bool,
    is_summary: bool = False,
) -> Optional[tuple[list[tuple[int, tuple[int, int, str]]], set[int], Optional[str]]]:
    """Edits for one entry: ([(line, (col0, col1, text))], dropped lines, problem)."""
    # the entry's text, with a map back to (line, column)
    first = lines[entry[0]]
    head = None if is_summary else _HEAD.match(first)
    head_name = head.group("name").lstrip("*") if head else None
    text_chars: list[str] = []
    where: list[Optional[tuple[int, int]]] = []
    for li in entry:
        line = lines[li]
        start = head.end() if (head and li == entry[0]) else _indent(line)
        while start < len(line) and line[start] == " ":
            start += 1
        content_end = len(line.rstrip())
        if text_chars and start < content_end:
            text_chars.append(" ")
            where.append(None)
        for col in range(start, content_end):
            text_chars.append(line[col])
            where.append((li, col))
    text = "".join(text_chars)
    is_session_entry = head_name == ctx.session_name
    session_context = ctx.session_required and (is_session_entry or head is None)

    deletions: list[tuple[int, int, str]] = []
    replacements: list[tuple[int, int, str]] = []
    sentences = _sentences(text)
    for s0, s1 in sentences:
        sentence = text[s0:s1]
        mentions_session = is_session_entry or "session" in sentence.lower()

        def stale(part: str, mentions_session: bool = mentions_session) -> bool:
            return (
                bool(deletable and deletable.search(part))
                or (session_context and mentions_session and bool(_FALLBACK.search(part)))
                or _stale_commit(part, ctx)
            )

        keep_end = s1
        asides = [a for a in _ASIDE.finditer(sentence) if stale(a.group())]
        rest = _ASIDE.sub(lambda a: "" if stale(a.group()) else a.group(), sentence)
        if asides and rest.strip(" .") and not stale(rest):
            # "A manager on ``session`` (instead of ``_get_session``)." loses its stale aside
            deletions.extend((s0 + a.start(), s0 + a.end(), "") for a in asides)
        elif stale(sentence):
            # "Optional session; if not provided, uses get_session()." keeps its first clause
            # "Run the operation and commit." keeps what comes before its stale "and ..."
            semi = _clause_break(sentence)
            if not (semi > 0 and not stale(sentence[:semi])):
                semi = _stale_conjunct(sentence, stale, ctx)
            if semi > 0 and not stale(sentence[:semi]):
                stop = sentence.rstrip()[-1] if sentence.rstrip()[-1] in ".!?" else "."
                deletions.append((s0 + semi, s1, stop))
                keep_end = s0 + semi
            else:
                deletions.append((s0, _after_sentence(text, s1), ""))
                continue
        kept = text[s0:keep_end]
        if scoped:
            for mt in re.finditer(r"(?:thread[- ]local\s+)?(`{0,2})scoped_session\1(?:\s+registry\b)?", kept):
                quote = mt.group(1)
                replacements.append((s0 + mt.start(), s0 + mt.end(), f"{quote}{SESSIONMAKER}{quote}"))
        if session_context and mentions_session:
            for mt in _OPTIONAL_ARTICLE.finditer(kept):
                replacements.append((s0 + mt.start(), s0 + mt.end(), f"{mt.group(1)} "))
            for mt in _OPTIONAL.finditer(kept):
                nxt = mt.group(2)
                if mt.group(1) == "O":
                    nxt = nxt.upper()
                replacements.append((s0 + mt.start(), s0 + mt.end(), nxt))
    head_edit: Optional[tuple[int, tuple[int, int, str]]] = None
    if head is not None and ctx.session_required and is_session_entry:
        mark = _OPTIONAL_MARK.search(head.group("head"))
        if mark:
            head_edit = (entry[0], (mark.start(), mark.end(), ""))
    if not deletions and not replacements and head_edit is None:
        return None

    remaining = _remaining(text, deletions)
    if deletions and not remaining.strip(" .;"):
        if is_summary:
            return [], set(), "docstring summary describes a removed API; rewrite it by hand"
        if head is not None and first[head.end():].strip():
            return [], set(), (
                f"docstring entry `{head_name}` only describes a removed API; rewrite it by hand"
            )
        return [], set(entry), None

    edits: list[tuple[int, tuple[int, int, str]]] = []
    if head_edit:
        edits.append(head_edit)
    for c0, c1, new in deletions:
        edits.extend(_map_span(where, c0, c1, new))
    for c0, c1, new in replacements:
        if any(d0 <= c0 < d1 for d0, d1, _ in deletions):
            continue
        mapped = _map_span(where, c0, c1, new)
        if len(mapped) == 1:  # never rewrite across a line break
            edits.extend(mapped)
    return edits, set(), None


#: ``and commits``, ``, and then rolls back``: a conjunct saying something commits
_AND_COMMITS = re.compile(
    r",?\s+and\s+(?:then\s+)?(?=commit|roll(?:s|ed|ing)?\s+back)", re.IGNORECASE
)
_COMMITS = re.compile(r"\b(?:commit(?:s|ted|ting)?|roll(?:s|ed|ing)?\s+back|rollbacks?)\b", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:never|not|no longer|without|nor|neither)\b|n't\b", re.IGNORECASE)


def _stale_commit(part: str, ctx: DocContext) -> bool:
    """Text saying the execute method commits or rolls back, once it no longer does."""
    if not ctx.execute_method or not _COMMITS.search(part) or _NEGATION.search(part):
        return False
    return ctx.in_execute_method or re.search(rf"(?<!\w){re.escape(ctx.execute_method)}(?!\w)", part) is not None


def _stale_conjunct(sentence: str, stale: Callable[[str], bool], ctx: DocContext) -> int:
    """Where a sentence's last ``and <commit or roll back> ...`` starts when it says the
    execute method commits and what comes before it is not stale (``Run the operation
    and commit.``), or -1."""
    for found in reversed(list(_AND_COMMITS.finditer(sentence))):
        conjunct = sentence[found.start() :]
        if _stale_commit(conjunct, ctx) and not stale(sentence[: found.start()]):
            return found.start()
    return -1


def _clause_break(sentence: str) -> int:
    """Where a sentence's trailing clause starts (``; ...`` or ``, which ...``), or -1."""
    found = [i for i in (sentence.find(";"), sentence.find(", which ")) if i > 0]
    return min(found) if found else -1


def _sentences(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = 0
    for mt in _SENTENCE_END.finditer(text):
        end = mt.end()
        if text[start:end].strip():
            spans.append((start, end))
        start = end
        while start < len(text) and text[start] == " ":
            start += 1
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def _after_sentence(text: str, end: int) -> int:
    while end < len(text) and text[end] == " ":
        end += 1
    return end


def _remaining(text: str, deletions: list[tuple[int, int, str]]) -> str:
    keep = [True] * len(text)
    for c0, c1, _ in deletions:
        for k in range(c0, c1):
            keep[k] = False
    return "".join(ch for ch, k in zip(text, keep) if k)


def _map_span(
    where: list[Optional[tuple[int, int]]], c0: int, c1: int, new: str
) -> list[tuple[int, tuple[int, int, str]]]:
    """A span of the entry text -> one edit per line it covers (the text goes on the first)."""
    per_line: dict[int, list[int]] = {}
    for k in range(c0, min(c1, len(where))):
        pos = where[k]
        if pos is not None:
            per_line.setdefault(pos[0], []).append(pos[1])
    edits = []
    for n, (li, cols) in enumerate(sorted(per_line.items())):
        edits.append((li, (min(cols), max(cols) + 1, new if n == 0 else "")))
    return edits


def _session_required(node: cst.FunctionDef, name: str) -> bool:
    params = node.params
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        if param.name.value == name:
            return param.default is None
    return False


def _classes_require_session(module: cst.Module, name: str) -> bool:
    """Whether the classes of ``module`` whose own ``__init__`` takes the session all require
    it, and there is one: what its docstring says of their session is said of a required
    one."""
    takes = [
        init
        for stmt in module.body
        if isinstance(stmt, cst.ClassDef) and isinstance(stmt.body, cst.IndentedBlock)
        for init in [own_init(stmt)]
        if init is not None
        and any(
            p.name.value == name
            for p in (*init.params.posonly_params, *init.params.params, *init.params.kwonly_params)
        )
    ]
    return bool(takes) and all(_session_required(init, name) for init in takes)


_DOCSTRING = m.SimpleStatementLine(body=[m.Expr(value=m.SimpleString())])


class UpdateDocstrings(RefactorCodemod):
    STEP = "6.2"
    DESCRIPTION = (
        "Rewrite docstrings that describe removed session APIs or an optional session: drop "
        "those sentences, scoped_session -> sessionmaker; report what cannot be fixed safely."
    )

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        self._dead: frozenset[str] = self.analysis.dead
        rel = relpath_for(self.context.filename, self.analysis.root)
        if rel is not None and rel not in self.analysis.docstring_files:
            raise SkipFile("no docstring to update here")
        return super().transform_module_impl(tree)

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> bool:
        return False  # docstrings are read from their function, class or module

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if not updated_node.body or not matches(updated_node.body[0], _DOCSTRING):
            return updated_node
        new_first = self._rewrite(
            original_node.body[0], updated_node.body[0], _classes_require_session(
                original_node, self.config.session_variable
            )
        )
        if new_first is None:
            return updated_node
        return updated_node.with_changes(body=[new_first, *updated_node.body[1:]])

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.ClassDef:
        init = own_init(original_node) if isinstance(original_node.body, cst.IndentedBlock) else None
        required = init is not None and _session_required(init, self.config.session_variable)
        return self._in_block(original_node, updated_node, required)

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        required = _session_required(original_node, self.config.session_variable)
        own = original_node.name.value == self.config.execute_method
        return self._in_block(original_node, updated_node, required, own)

    def _in_block(self, original_node: Any, updated_node: Any, required: bool, own: bool = False) -> Any:
        block = updated_node.body
        if not isinstance(block, cst.IndentedBlock) or not block.body or not matches(block.body[0], _DOCSTRING):
            return updated_node
        new_first = self._rewrite(original_node.body.body[0], block.body[0], required, own)
        if new_first is None:
            return updated_node
        return updated_node.with_changes(body=block.with_changes(body=[new_first, *block.body[1:]]))

    def _rewrite(
        self,
        original: cst.SimpleStatementLine,
        updated: cst.SimpleStatementLine,
        required: bool,
        in_execute_method: bool = False,
    ) -> Optional[cst.SimpleStatementLine]:
        string = cst.ensure_type(cst.ensure_type(updated.body[0], cst.Expr).value, cst.SimpleString)
        original_string = cst.ensure_type(original.body[0], cst.Expr).value
        match = _STRING.match(string.value)
        if match is None:  # bytes or f-string: not a docstring we touch
            return None
        prefix, quote = match.group("prefix"), match.group("quote")
        body = string.value[len(prefix) + len(quote) : -len(quote)]
        ctx = DocContext(
            self._dead,
            required,
            self.config.session_variable,
            self.config.execute_method if self.analysis.execute_commits_gone else None,
            in_execute_method,
        )
        result = rewrite_docstring_body(body, ctx)
        for problem in result.problems:
            self.report(original_string, problem)
        if result.body == body:
            return None
        if result.body.endswith(quote[0]) or (len(quote) == 1 and "\n" in result.body):
            self.report(original_string, "docstring rewrite would break its quoting; update it by hand")
            return None
        new_value = f"{prefix}{quote}{result.body}{quote}"
        return updated.with_changes(body=[updated.body[0].with_changes(value=string.with_changes(value=new_value))])


# ------------------------------------------------------------------------------- 6.3 ruff format


def ruff_command() -> list[str]:
    try:
        from ruff.__main__ import find_ruff_bin  # type: ignore[import-not-found]

        return [find_ruff_bin()]
    except Exception:  # no ruff package: a ruff on PATH, else the module runner
        found = shutil.which("ruff")
        return [found] if found else [sys.executable, "-m", "ruff"]


def _git(root: Any, *args: str) -> Optional[str]:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def refactored_files(project: Project) -> set[str]:
    """The Python files the refactoring has changed so far (before phase 6's own changes).

    1. The target is a git repository and the CLI recorded the commit the refactoring started
       from (``RunState.base_commit``): ``git diff --name-only`` against it, plus the factory
       module if the refactoring created it, plus files an earlier phase changed in memory
       only (a ``--dry-run --all`` run).
    2. Else a list the CLI recorded (``RunState.changed_files``).
    3. Else the files that carry the refactoring's marks: the session module, the base manager
       module, the factory module and every file that calls the factory function. Test modules
       that were already in the new style before the refactoring do not call the factory, so
       they stay untouched.
    """
    config = project.config
    state = state_of(project)
    base = state.base_commit
    if isinstance(base, str) and base:
        diff = _git(project.root, "diff", "--name-only", "--relative", base, "--")
        if diff is not None:
            found = {p for p in diff.splitlines() if p.endswith(".py") and project.exists(p)}
            factory = config.factory_module
            if project.exists(factory) and _git(project.root, "cat-file", "-e", f"{base}:./{factory}") is None:
                found.add(factory)
            for rel, content in project.overlay.items():
                if content is not None and rel.endswith(".py"):
                    path = project.path(rel)
                    if not path.is_file() or path.read_bytes() != content:
                        found.add(rel)
            return found
    if state.changed_files:
        return {p for p in state.changed_files if p.endswith(".py") and project.exists(p)}
    found = {
        rel
        for rel in (config.session_module, config.base_manager_module, config.factory_module)
        if project.exists(rel)
    }
    found.update(project.grep(project.python_files(), f"{config.factory_function}("))
    return found


def ruff_format(
    project: Project,
    rel: str,
    source: bytes,
    command: Optional[list[str]] = None,
    options: Sequence[str] = (),
    strict: bool = False,
) -> Any:
    """``source`` formatted by ruff as if it were ``rel`` in the target (the target's ruff
    configuration applies, and so do its excludes). Unchanged if ruff cannot format it
    (``strict``: None then)."""
    try:
        source.decode("utf-8")
    except UnicodeDecodeError:
        return None if strict else source
    cmd = [
        *(command or ruff_command()),
        "format",
        *options,
        "--force-exclude",
        "--stdin-filename",
        str(project.path(rel)),
        "-",
    ]
    try:
        proc = subprocess.run(cmd, input=source, capture_output=True, cwd=project.root, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("%s: ruff format did not run: %s", rel, exc)
        return None if strict else source
    if proc.returncode != 0:
        logger.warning("%s: ruff format failed: %s", rel, proc.stderr.decode(errors="replace").strip())
        return None if strict else source
    return proc.stdout


_RUFF_CONFIGS = ("pyproject.toml", "ruff.toml", ".ruff.toml")
_EXTEND = re.compile(rb"^\s*extend\s*=", re.M)


def _ruff_config_above(directory: Path) -> bool:
    """Whether ruff could take a configuration from ``directory`` or above it."""
    for folder in (directory, *directory.parents):
        for name in _RUFF_CONFIGS:
            path = folder / name
            try:
                if path.is_file() and (name != "pyproject.toml" or b"[tool.ruff" in path.read_bytes()):
                    return True
            except OSError:
                return True
    return False


def _config_files(project: Project, rels: Iterable[str]) -> set[Path]:
    """The files named like ruff configurations on the way from each of ``rels`` up to the
    target's root."""
    root = project.root
    configs: set[Path] = set()
    for rel in rels:
        folder = project.path(rel).parent
        while True:
            for name in _RUFF_CONFIGS:
                if (folder / name).is_file():
                    configs.add(folder / name)
            if folder == root or root not in folder.parents:
                break
            folder = folder.parent
    return configs


def ruff_format_batch(
    project: Project,
    items: Sequence[tuple[str, bytes]],
    command: list[str],
    options: Sequence[str] = (),
) -> Optional[dict[str, bytes]]:
    """:func:`ruff_format` of many files with one ruff process.

    The files are written to a scratch copy of their part of the tree together with every
    ruff configuration file on their way from the target's root (the target itself is never
    written by a dry run), so each file gets the settings, and the excludes, it would get in
    place. None, and the caller formats file by file, wherever that copy could see other
    settings: a configuration above the target's root or above the scratch directory, or
    one that extends another file.
    """
    root = project.root
    configs = _config_files(project, [rel for rel, _ in items])
    try:
        if any(_EXTEND.search(path.read_bytes()) for path in configs):
            return None
        for _, source in items:
            source.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if _ruff_config_above(root.parent):
        return None
    with tempfile.TemporaryDirectory(prefix="refactor-tool-format-") as scratch:
        base = Path(scratch)
        if _ruff_config_above(base):
            return None
        for rel, data in [
            *((path.relative_to(root).as_posix(), path.read_bytes()) for path in configs),
            *items,
        ]:
            dest = base / PurePosixPath(rel)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        cmd = [*command, "format", *options, "--force-exclude", "--no-cache", "--quiet", *[rel for rel, _ in items]]
        try:
            proc = subprocess.run(cmd, cwd=base, capture_output=True, timeout=300, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        if proc.returncode != 0:
            return None  # one file it cannot format: let each be tried on its own
        return {rel: (base / PurePosixPath(rel)).read_bytes() for rel, _ in items}


#: the line lengths a project without formatter settings is tried at (ruff's default among
#: them), besides its own longest line
LINE_LENGTHS = (79, 88, 99, 100, 110, 119, 120)
#: how many of the untouched files the line length is learned from, at most
SAMPLE_FILES = 200
_BLACK_LINE_LENGTH = re.compile(rb"^\s*line[-_]length\s*=\s*(\d+)", re.M)


def _changed_lines(diff: str) -> int:
    return sum(
        1
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    )


def ruff_configured(project: Project, formatted: Iterable[str]) -> bool:
    """Whether ruff settings of the target (or above it) apply to any of ``formatted``."""
    return _ruff_config_above(project.root) or any(
        path.name != "pyproject.toml" or b"[tool.ruff" in path.read_bytes()
        for path in _config_files(project, formatted)
    )


def style_options(source: bytes) -> list[str]:
    """ruff's options that keep ``source``'s own style where ruff's defaults differ from it,
    as the tokenizer reads it (text inside strings does not count): its indentation, as its
    first indented block has it (tabs, or a number of spaces other than four), and its
    quotes (single where most of its one-line strings that could use either use single
    quotes). None where it cannot be told."""
    indent: str | None = None
    single = double = 0
    try:
        for token in tokenize.tokenize(io.BytesIO(source).readline):
            if token.type == tokenize.INDENT and indent is None:
                indent = token.string
            elif token.type == tokenize.STRING:
                body = token.string.lstrip("rRbBuUfF")
                if body[:3] in ("'''", '"""'):
                    continue
                if body[0] == "'" and '"' not in body:
                    single += 1
                elif body[0] == '"' and "'" not in body:
                    double += 1
    except (tokenize.TokenError, SyntaxError, UnicodeDecodeError, IndexError):
        return []
    options: list[str] = []
    if indent is not None:
        if indent.startswith("\t"):
            options += ["--config", "format.indent-style = 'tab'"]
        elif not indent.strip(" ") and len(indent) != 4:
            options += ["--config", f"indent-width = {len(indent)}"]
    if single > double:
        options += ["--config", "format.quote-style = 'single'"]
    return options


#: where flake8 reads its settings, in its order
_FLAKE8_FILES = (".flake8", "setup.cfg", "tox.ini")


def flake8_line_length(root: Path) -> Optional[int]:
    """The ``max-line-length`` of the target's flake8 settings (``[flake8]`` of ``.flake8``,
    ``setup.cfg`` or ``tox.ini``, the first that has the section), None without one."""
    for name in _FLAKE8_FILES:
        path = root / name
        if not path.is_file():
            continue
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(path.read_text(encoding="utf-8"))
        except (configparser.Error, UnicodeDecodeError):
            continue
        if not parser.has_section("flake8"):
            continue
        for key in ("max-line-length", "max_line_length"):
            value = parser.get("flake8", key, fallback="").strip()
            if value.isdigit():
                return int(value)
        return None
    return None


def house_line_length(project: Project, command: list[str], formatted: set[str]) -> Optional[int]:
    """The line length to format ``formatted`` with when no ruff settings apply to them
    (``None``: the target's own ruff settings apply, or there is nothing to learn from, and
    ruff's default stands).

    A project that configures black gets black's ``line-length``, one that configures flake8
    its ``max-line-length`` (:func:`flake8_line_length`). Any other is formatted at
    the length its own code is written to: of the usual choices and its longest line, the
    one under which ``ruff format`` would change its untouched Python files, and the
    files it formats as they were before the refactoring (where that is known), least (the
    shorter on a tie). So a changed line is wrapped as the code around it was written.
    """
    root = project.root
    if ruff_configured(project, formatted):
        return None
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        data = pyproject.read_bytes()
        start = data.find(b"[tool.black]")
        if start >= 0:
            section = data[start:].split(b"\n[", 1)[0]
            found = _BLACK_LINE_LENGTH.search(section)
            if found:
                return int(found.group(1))
    stated = flake8_line_length(root)
    if stated is not None:
        return stated
    untouched = [
        rel
        for rel in project.python_files()
        if rel not in formatted and rel not in project.overlay
    ][:SAMPLE_FILES]
    before: dict[str, bytes] = {}
    for rel in sorted(formatted)[: max(0, SAMPLE_FILES - len(untouched))]:
        original = _original(project, rel, None)
        if isinstance(original, bytes):
            before[rel] = original
    if not untouched and not before:
        return None
    longest = 0
    for text in [*(project.read_text(rel) for rel in untouched),
                 *(data.decode("utf-8", "replace") for data in before.values())]:
        for line in text.splitlines():
            longest = max(longest, len(line))
    candidates = sorted({*LINE_LENGTHS, min(max(longest, LINE_LENGTHS[0]), 320)})
    best: Optional[tuple[int, int]] = None
    with tempfile.TemporaryDirectory(prefix="refactor-tool-length-") as scratch:
        earlier: list[str] = []
        for number, data in enumerate(before.values()):
            path = Path(scratch) / f"file{number}.py"
            path.write_bytes(data)
            earlier.append(str(path))
        for length in candidates:
            try:
                proc = subprocess.run(
                    [*command, "format", "--diff", "--no-cache", "--quiet", "--isolated",
                     "--line-length", str(length), *untouched, *earlier],
                    cwd=root, capture_output=True, text=True, timeout=300, check=False,
                )
            except (OSError, subprocess.SubprocessError):
                return None
            if proc.returncode not in (0, 1):
                return None  # a file ruff cannot format: nothing to learn here
            changed = _changed_lines(proc.stdout)
            if best is None or changed < best[0]:
                best = (changed, length)
            if not changed:  # written to this length: no longer one changes less
                break
    return best[1] if best is not None else None


#: hunks of changed lines at most this many lines apart are formatted by one ruff call
RANGE_GAP = 2
_UNKNOWN = object()


def _original(project: Project, rel: str, change: Optional[Any]) -> Any:
    """``rel`` as it was before the refactoring: its bytes, ``None`` for a file the refactoring
    created, or ``_UNKNOWN``. From the recorded base commit; else, for a file an earlier phase
    of this run changed in memory, the file on disk; else, for a file phase 6 changes and no
    earlier phase did, the content phase 6 started from."""
    base = state_of(project).base_commit
    if isinstance(base, str) and base:
        try:
            proc = subprocess.run(
                ["git", "show", f"{base}:./{rel}"], cwd=project.root, capture_output=True,
                timeout=60, check=False,
            )
        except (OSError, subprocess.SubprocessError):
            proc = None
        if proc is not None:
            if proc.returncode == 0:
                return proc.stdout
            if _git(project.root, "cat-file", "-e", f"{base}^{{commit}}") is not None:
                return None  # not in the base commit: created by the refactoring
    if rel in project.overlay:
        path = project.path(rel)
        return path.read_bytes() if path.is_file() else None
    if change is not None:
        return change.old
    return _UNKNOWN


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def refactored_lines(original: Optional[bytes], source: bytes) -> set[int]:
    """The lines of ``source`` (0-based) that differ from ``original``: replaced or inserted
    ones (where lines were only deleted, nothing around them changed)."""
    new = _lines(source)
    if original is None:
        return set(range(len(new)))
    matcher = difflib.SequenceMatcher(None, _lines(original), new, autojunk=False)
    changed: set[int] = set()
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "insert"):
            changed.update(range(j1, j2))
    return changed


def whole_statements(source: bytes, lines: set[int]) -> set[int]:
    """``lines`` (0-based) widened to the logical lines they are part of: a statement written
    over several lines (a signature, a call) is one logical line, and the refactoring changed
    it as a whole when it changed one of its lines. A compound statement's body is not part
    of its header's logical line. ``lines`` as they are where ``source`` does not tokenize."""
    widened = set(lines)
    start: Optional[int] = None
    try:
        for token in tokenize.tokenize(io.BytesIO(source).readline):
            if token.type in (tokenize.ENCODING, tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT):
                continue
            if start is None:
                start = token.start[0] - 1
            if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                span = range(start, token.end[0])
                if len(span) > 1 and any(i in lines for i in span):
                    widened.update(span)
                start = None
    except (tokenize.TokenError, SyntaxError):
        return set(lines)
    return widened


def touched_lines(before: bytes, after: bytes) -> set[int]:
    """The lines of ``before`` (0-based) that ``after`` replaces or deletes, and the two
    around a place where it inserts lines."""
    matcher = difflib.SequenceMatcher(None, _lines(before), _lines(after), autojunk=False)
    touched: set[int] = set()
    for tag, i1, i2, _j1, _j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        touched.update(range(i1, i2) if i1 < i2 else (i1 - 1, i1))
    return touched


def changes_only(before: bytes, after: bytes, allowed: set[int]) -> bool:
    """Whether every line ``after`` differs from ``before`` in is one of ``allowed`` (lines of
    ``before``, 0-based); lines inserted count as changing the allowed line beside them."""
    matcher = difflib.SequenceMatcher(None, _lines(before), _lines(after), autojunk=False)
    for tag, i1, i2, _j1, _j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if i1 == i2:
            if i1 - 1 not in allowed and i1 not in allowed:
                return False
        elif any(i not in allowed for i in range(i1, i2)):
            return False
    return True


def line_ranges(lines: set[int], gap: int = RANGE_GAP) -> list[tuple[int, int]]:
    """``lines`` (0-based) as ranges of 1-based line numbers ``(first, last)``, hunks at most
    ``gap`` lines apart merged."""
    ranges: list[list[int]] = []
    for line in sorted(lines):
        if ranges and line - ranges[-1][1] <= gap + 1:
            ranges[-1][1] = line
        else:
            ranges.append([line, line])
    return [(a + 1, b + 1) for a, b in ranges]


def format_ranges(
    project: Project,
    rel: str,
    source: bytes,
    changed: set[int],
    command: list[str],
    options: Sequence[str],
    unformatted: Optional[set[int]] = None,
) -> tuple[Optional[bytes], list[int]]:
    """``source`` with only the lines in ``changed`` formatted: ``ruff format --range`` per
    range of them, the last first so the line numbers of the others stay valid. A range whose
    formatting would change any other line (ruff formats whole statements) is left as it is;
    its first line is returned among the second item. None when a ruff call fails.
    ``unformatted``: the lines formatting the whole file would change (:func:`touched_lines`),
    where known; a range none of whose lines is among them is formatted already."""
    left: list[int] = []
    current = source

    def attempt(first: int, last: int) -> Optional[bytes]:
        out = ruff_format(
            project, rel, current, command, [*options, f"--range={first}-{last + 1}"], strict=True
        )
        return out

    todo = list(reversed(line_ranges(changed)))
    if unformatted is not None:
        todo = [(a, b) for a, b in todo if any(a - 1 <= i <= b - 1 for i in unformatted)]
    while todo:
        first, last = todo.pop(0)
        out = attempt(first, last)
        if out is None:
            return None, left
        if out == current:
            continue
        if changes_only(current, out, changed):
            current = out
            continue
        parts = line_ranges({i for i in changed if first - 1 <= i <= last - 1}, gap=0)
        if len(parts) > 1:
            todo[:0] = list(reversed(parts))
        else:
            left.append(first)
    return current, sorted(left)


def format_changed(
    project: Project, changes: list[Any], notes: Optional[list[Any]] = None
) -> list[Any]:
    """Step 6.3: ``ruff format`` the lines the refactoring changed in every Python file it
    changed (phase 6's own changes and :func:`refactored_files`); untouched files are never
    formatted, and neither is any line the refactoring left as it was (they stay byte for
    byte). A file is formatted whole when that changes only such lines (or the file is new),
    else range by range (``ruff format --range``). Where the content before the refactoring
    is not known, the file is left as it is; where a range call fails, it is formatted whole;
    a note says so in both cases. A
    target without ruff settings is formatted at its own line length
    (:func:`house_line_length`)."""

    notes = notes if notes is not None else []
    by_path = {c.path: c for c in changes}
    todo: dict[str, tuple[bytes, Optional[Any]]] = {}
    for change in changes:
        if change.new is not None and change.path.endswith(".py"):
            todo[change.path] = (change.new, change)
    refactored = refactored_files(project)
    for rel in sorted(refactored):
        if rel not in by_path:
            todo[rel] = (project.read_bytes(rel), None)
    if not todo:
        return changes
    command = ruff_command()
    length = house_line_length(project, command, refactored | set(todo))
    options = ["--line-length", str(length)] if length is not None else []
    items = sorted(todo.items())
    workers = max(1, min(8, os.cpu_count() or 1, len(items)))
    with ThreadPoolExecutor(workers) as pool:
        originals = dict(
            zip(
                (rel for rel, _ in items),
                pool.map(lambda item: _original(project, item[0], item[1][1]), items),
            )
        )
    # a file keeps its own indentation and quotes (as it was before the refactoring) where
    # no ruff settings of the target say how
    house = not ruff_configured(project, todo)
    file_options = {
        rel: [
            *options,
            *style_options(
                originals[rel] if isinstance(originals[rel], bytes) else source
            ),
        ]
        if house
        else options
        for rel, (source, _) in items
    }
    formatted_whole: dict[str, bytes] = {}
    groups: dict[tuple[str, ...], list[tuple[str, bytes]]] = {}
    for rel, (source, _) in items:
        groups.setdefault(tuple(file_options[rel]), []).append((rel, source))
    for group_options, group in groups.items():
        batch = ruff_format_batch(project, group, command, list(group_options)) if len(group) > 1 else None
        if batch is not None:
            formatted_whole.update(batch)
            continue
        with ThreadPoolExecutor(workers) as pool:
            formatted_whole.update(
                zip(
                    (rel for rel, _ in group),
                    pool.map(
                        lambda item: ruff_format(project, item[0], item[1], command, list(group_options)),
                        group,
                    ),
                )
            )
    whole = [formatted_whole[rel] for rel, _ in items]

    def settle(job: tuple[tuple[str, tuple[bytes, Optional[Any]]], bytes]) -> tuple[bytes, list[Any]]:
        (rel, (source, change)), formatted = job
        options = file_options[rel]
        if formatted == source:
            return source, []
        original = originals[rel]
        if original is _UNKNOWN:
            # the lines the refactoring changed cannot be told from the others: formatting
            # the whole file could rewrap lines nobody asked to change
            return source, [Note(rel, None, "6.3", "not formatted: its content before the refactoring is not known (no base commit or list of changed files in .refactor-tool/state.json), so the lines the refactoring changed cannot be told from the others; run ruff format on them by hand")]
        changed = whole_statements(source, refactored_lines(original, source))
        if changes_only(source, formatted, changed):
            return formatted, []
        ranged, left = format_ranges(
            project, rel, source, changed, command, options, touched_lines(source, formatted)
        )
        if ranged is None:
            return formatted, [Note(rel, None, "6.3", "formatted whole: ruff could not format only the lines the refactoring changed (ruff format --range), so lines it did not change may be rewrapped")]
        return ranged, [
            Note(rel, line, "6.3", "left unformatted: ruff would also reformat lines of the statement that the refactoring did not change")
            for line in left
        ]

    with ThreadPoolExecutor(workers) as pool:
        settled = list(pool.map(settle, zip(items, whole)))
    result = list(changes)
    for (rel, (source, change)), (new, file_notes) in zip(items, settled):
        notes.extend(file_notes)
        if new == source:
            continue
        if change is not None:
            change.new = new
        else:
            result.append(FileChange(rel, source, new))
    return [c for c in result if c.old != c.new]


# ------------------------------------------------------------------------------- the phase

for _codemod in (RemoveStaleComments, UpdateDocstrings):
    _codemod.ANALYZE = analyze

PHASE = PhaseSpec(
    6,
    "Final Cleanup and Review",
    "Tidy up the codebase and ensure documentation is consistent.",
    (
        StepSpec("6.1", "Remove Comments", (RemoveStaleComments,)),
        StepSpec("6.2", "Update Docstrings", (UpdateDocstrings,)),
        StepSpec(
            "6.3",
            "Run Linters/Formatters",
            note=(
                "ruff format over the lines the refactoring changed in the Python files it "
                "changed (ruff format --range where formatting the whole file would touch "
                "other lines); untouched files and lines stay byte for byte; the target's own "
                "ruff configuration applies, or else its own line length"
            ),
        ),
        StepSpec(
            "6.4",
            "Review TDD",
            note=(
                "the phase gate runs `refactor-tool check`: the design's invariants 1-6, each "
                "with file:line where the code still differs from it"
            ),
        ),
    ),
    files=files,
    analyze=analyze,
    postprocess=format_changed,
    verification=(
        "Clean codebase: `refactor-tool check` passes (no removed session API, sessionmaker-"
        "based DatabaseManager, SessionContext owning the session, managers that require a "
        "session and never commit, the manager factory, new-style fixtures and tests). All "
        "tests passing: every test that passed at baseline still passes, and the baseline "
        "failures the refactoring fixed are listed. Key CLI commands: the entry point's smoke "
        "command (`game list` by default) runs on an empty database and exits 0."
    ),
)
