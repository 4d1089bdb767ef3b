"""What every refactor-tool codemod shares.

Each step of PLAN.md is a :class:`RefactorCodemod`: a libcst ``VisitorBasedCodemodCommand``
that takes the cross-file analysis of its phase as a constructor argument. The engine builds
that analysis once per phase and hands it in; when the codemod is run by libcst's own runner
(``python -m libcst.tool codemod phase1.RemoveSessionApis sologm``), the analysis is built on
first use from the project that contains the file being transformed.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Generator

import libcst as cst
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.metadata import MetadataWrapper, PositionProvider

from refactor_tool.config import Config
from refactor_tool.project import Project

_ANALYSIS_CACHE: dict[tuple[str, str], Any] = {}


def find_project_root(filename: str | None) -> Path:
    """The nearest directory above ``filename`` holding a ``pyproject.toml`` (else the cwd)."""
    if filename:
        here = Path(filename).resolve().parent
        for candidate in (here, *here.parents):
            if (candidate / "pyproject.toml").is_file():
                return candidate
    return Path.cwd().resolve()


class RefactorCodemod(VisitorBasedCodemodCommand):
    """Base class: the step it implements, its analysis, and file:line reports."""

    STEP: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""
    #: module-level function ``analyze(project) -> analysis`` of the codemod's phase
    ANALYZE: ClassVar[Any] = None

    def __init__(self, context: CodemodContext, analysis: Any = None) -> None:
        super().__init__(context)
        self._analysis = analysis
        self._positions: Any = None
        self._tree: cst.Module | None = None

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

    # ------------------------------------------------------------ reports
    def report(self, node: cst.CSTNode, message: str) -> None:
        """Record a manual-attention item as ``line N: message`` (the engine adds the path).

        ``node`` must be a node of the tree this codemod was given (an ``original_node``).
        Positions are computed only when something is reported.
        """
        line = None
        if self._tree is not None:
            if self._positions is None:
                wrapper = MetadataWrapper(self._tree, unsafe_skip_copy=True)
                self._positions = wrapper.resolve(PositionProvider)
            pos = self._positions.get(node)
            line = pos.start.line if pos is not None else None
        self.context.warnings.append(f"{line or 0}\t{self.STEP}\t{message}")

    # ------------------------------------------------------------ libcst plumbing
    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        self._tree = tree
        self._positions = None
        return super().transform_module_impl(tree)

    @contextmanager
    def _handle_metadata_reference(self, module: cst.Module) -> Generator[cst.Module, None, None]:
        # libcst's default deep-copies the module for every codemod so metadata keys are
        # unique; trees that come out of parse_module already are, and the engine never
        # shares one between threads, so the copy is skipped.
        oldwrapper = self.context.wrapper
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        with self.resolve(wrapper):
            self.context = replace(self.context, wrapper=wrapper)
            try:
                yield wrapper.module
            finally:
                self.context = replace(self.context, wrapper=oldwrapper)


# ---------------------------------------------------------------------------------------
# Phase and step descriptions: each codemods/phaseN.py exports one PHASE built from these,
# and refactor_tool.phases collects them into the registry.


class StepSpec:
    """One step of PLAN.md: its number, title and the codemods that carry it out."""

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
    ``postprocess(project, changes)`` may rewrite the phase's output (phase 6: ruff format).
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
