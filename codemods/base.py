"""What every refactor-tool codemod shares.

Each step of the plan is a :class:`RefactorCodemod`: a libcst ``CodemodCommand`` that is a
plain ``CSTTransformer`` (:class:`refactor_tool.model.syntax.Transformer`: the shape of
libcst's ``VisitorBasedCodemodCommand``, without the matcher-decorator dispatch no codemod
here uses, which costs more than the transform itself) and takes the cross-file analysis of its phase as a constructor argument. The engine builds
that analysis once per phase and hands it in; when the codemod is run by libcst's own runner
(``python -m libcst.tool codemod phase1.RemoveSessionApis sologm``), the analysis is built on
first use from the project that contains the file being transformed.

A codemod reports what it will not rewrite with :meth:`RefactorCodemod.report`: a typed
:class:`Note` (path, line, step, message) for the engine, and the same text in libcst's
``context.warnings`` for libcst's runner.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodCommand, CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

from codemods import imports
from refactor_tool.model.config import Config
from refactor_tool.model.project import Project, first_party, location
from refactor_tool.model.syntax import Lines, Transformer

_ANALYSIS_CACHE: dict[tuple[str, str], Any] = {}
_IMPORT_LINE = m.SimpleStatementLine(
    body=[m.ZeroOrMore(), m.Import() | m.ImportFrom(), m.ZeroOrMore()]
)


@dataclass(frozen=True)
class Note:
    """A manual-attention item: something a codemod saw and would not guess at."""

    path: str
    line: int | None
    step: str
    message: str

    def __str__(self) -> str:
        return f"{location(self.path, self.line)}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "step": self.step, "message": self.message}


def find_project_root(filename: str | None) -> Path:
    """The nearest directory above ``filename`` holding a ``pyproject.toml`` (else the cwd)."""
    if filename:
        here = Path(filename).resolve().parent
        for candidate in (here, *here.parents):
            if (candidate / "pyproject.toml").is_file():
                return candidate
    return Path.cwd().resolve()


class RefactorCodemod(CodemodCommand, Transformer):
    """Base class: the step it implements, its analysis, and file:line reports."""

    STEP: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""
    #: module-level function ``analyze(project) -> analysis`` of the codemod's phase
    ANALYZE: ClassVar[Any] = None

    def __init__(self, context: CodemodContext, analysis: Any = None) -> None:
        CodemodCommand.__init__(self, context)
        Transformer.__init__(self)
        self._analysis = analysis
        self._lines: Lines | None = None
        #: what this codemod reported, in the order it reported it
        self.notes: list[Note] = []
        #: the notes (by index) whose line is a line of the tree this codemod was given,
        #: which an earlier step may have changed; the others name lines of the file
        self.tree_lines: set[int] = set()

    # ------------------------------------------------------------ analysis
    @property
    def analysis(self) -> Any:
        if self._analysis is None:
            analyze = type(self).ANALYZE
            root = find_project_root(self.context.filename)
            key = (type(self).__module__, str(root))
            if key not in _ANALYSIS_CACHE:
                _ANALYSIS_CACHE[key] = analyze(Project(root)) if analyze else None
            self._analysis = _ANALYSIS_CACHE[key]
        return self._analysis

    @property
    def config(self) -> Config:
        config = getattr(self.analysis, "config", None)
        return config if isinstance(config, Config) else Config()

    @property
    def path(self) -> str:
        """The file being transformed, relative to the project root where it is inside it."""
        filename = self.context.filename or ""
        root = find_project_root(filename)
        try:
            return Path(filename).resolve().relative_to(root).as_posix()
        except ValueError:
            return filename

    # ------------------------------------------------------------ reports
    def report(self, node: cst.CSTNode, message: str) -> None:
        """Record a manual-attention item at ``node``'s line.

        ``node`` must be a node of the tree this codemod was given (an ``original_node``);
        its position is read with libcst's ``PositionProvider``, resolved on the first
        report of a file only.
        """
        self.tree_lines.add(len(self.notes))
        self.report_at(self._lines.of(node) if self._lines is not None else None, message)

    def report_at(self, line: int | None, message: str) -> None:
        """Record a manual-attention item at a known line of the file as it was before the
        phase."""
        self.notes.append(Note(self.path, line, self.STEP, message))
        self.context.warnings.append(f"line {line or '?'}: {message}")

    # ------------------------------------------------------------ running
    def transform_module(self, tree: cst.Module) -> cst.Module:
        """libcst's entry point. A codemod that declares no metadata dependency works on
        the tree it is given: libcst's ``Codemod.transform_module`` would first copy the
        whole module for a ``MetadataWrapper`` nothing here reads. The imports a codemod
        scheduled are then added and removed by libcst's own visitors, as
        ``CodemodCommand`` does (``RemoveImportsVisitor`` with its scope metadata)."""
        if self.get_inherited_dependencies():
            return super().transform_module(tree)
        tree = self.transform_module_impl(tree)
        if AddImportsVisitor.CONTEXT_KEY in self.context.scratch:
            tree = self._add_imports(tree)
        if RemoveImportsVisitor.CONTEXT_KEY in self.context.scratch:
            tree = RemoveImportsVisitor(self.context).transform_module(tree)
        return tree

    def _add_imports(self, tree: cst.Module) -> cst.Module:
        """The scheduled imports: where an import sorter would put them when the module's
        import block is in its order (:func:`codemods.imports.add_imports`), else added by
        ``AddImportsVisitor`` to the module's leading block of statements up to its last
        top-level import: the visitor reads the existing imports and inserts beside them,
        and the rest of a long test module cannot change where it inserts (walking it would
        cost more than the whole codemod)."""
        scheduled = self.context.scratch.get(AddImportsVisitor.CONTEXT_KEY, [])
        filename = self.context.filename or ""
        wanted = [
            imports.in_house_form(
                tree,
                imports.Wanted(item.module_name, item.obj_name, item.alias, item.relative),
                self.context.full_module_name or "",
                filename.endswith("__init__.py"),
            )
            for item in scheduled
        ]
        if wanted:
            own = first_party(
                find_project_root(self.context.filename), self.context.full_module_name or ""
            )
            done = imports.add_imports(tree, wanted, own)
            if done is not None:
                del self.context.scratch[AddImportsVisitor.CONTEXT_KEY]
                return done
        last = max(
            (i for i, stmt in enumerate(tree.body) if m.matches(stmt, _IMPORT_LINE)), default=-1
        )
        if last < 0:
            return AddImportsVisitor(self.context).transform_module_impl(tree)
        head = tree.with_changes(body=tree.body[: last + 1], footer=())
        done = AddImportsVisitor(self.context).transform_module_impl(head)
        return tree.with_changes(header=done.header, body=[*done.body, *tree.body[last + 1 :]])

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        """The walked tree; ``tree`` itself when no handler edited a node (libcst rebuilds
        every node it walks: the copy would print the same, so later steps and the engine
        can see by identity that nothing changed). A class that replaces ``on_leave`` may
        change any node without a handler: its walk counts as an edit."""
        self._lines = Lines(tree)
        self.edited = type(self).on_leave is not Transformer.on_leave
        walked = tree.visit(self)
        return walked if self.edited else tree


# ---------------------------------------------------------------------------------------
# Phase and step descriptions: each codemods/phaseN.py exports one PHASE built from these,
# and refactor_tool.phases collects them into the registry.


class StepSpec:
    """One step of docs/plan.md: its number, title and the codemods that carry it out."""

    def __init__(
        self,
        id: str,
        title: str,
        codemods: tuple[type[RefactorCodemod], ...] = (),
        *,
        generates: bool = False,
        note: str = "",
    ) -> None:
        self.id = id
        self.title = title
        self.codemods = codemods
        self.generates = generates  # carried out by the phase's ``generate`` (new files)
        self.note = note  # how the tool carries out a step that is not a codemod

    @property
    def mechanical(self) -> bool:
        return bool(self.codemods) or self.generates

    def __repr__(self) -> str:
        return f"StepSpec({self.id!r}, {self.title!r})"


class PhaseSpec:
    """A phase: steps, the files it needs, its analysis and (optionally) generated files.

    ``files(project, analysis)`` returns the relative paths the phase may change, already
    narrowed by a cheap text prefilter; only those are parsed and transformed.
    ``generate(project, analysis, step_ids)`` returns whole files to create or replace
    (relpath -> bytes, or None to delete) and runs after the codemods.
    ``postprocess(project, changes, notes)`` may rewrite the phase's output (phase 6: ruff
    format) and add to its notes.
    """

    def __init__(
        self,
        number: int,
        title: str,
        goal: str,
        steps: tuple[StepSpec, ...],
        *,
        files: Any,
        analyze: Any,
        generate: Any = None,
        postprocess: Any = None,
        verification: str = "",
    ) -> None:
        self.number = number
        self.title = title
        self.goal = goal
        self.steps = steps
        self.files = files
        self.analyze = analyze
        self.generate = generate
        self.postprocess = postprocess
        self.verification = verification

    def step(self, step_id: str) -> StepSpec:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def __repr__(self) -> str:
        return f"PhaseSpec({self.number}, {self.title!r})"
