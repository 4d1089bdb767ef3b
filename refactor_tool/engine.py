"""Run a phase's codemods over a target and write the result safely.

``run_phase`` computes, in memory, what a phase would change: it asks the phase for the files
it needs (a text prefilter, no parsing), builds the phase's cross-file analysis once, parses
each candidate once, sends the parsed module through every selected step's codemod in order,
and collects a :class:`FileChange` per file whose bytes differ. Nothing is written there.

``write_changes`` writes a phase's changes all-or-nothing: every target is checked first
(symlinks leaving the target, read-only files), each file is replaced atomically (temporary
file in the same directory, then ``os.replace``), and if anything fails midway every file
already written is put back.
"""

from __future__ import annotations

import difflib
import multiprocessing
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from libcst.codemod import CodemodContext, SkipFile

from codemods.base import PhaseSpec, StepSpec

from .project import InputError, Project


@dataclass(frozen=True)
class Note:
    """A manual-attention item: something the codemods saw and would not guess at."""

    path: str
    line: int | None
    step: str
    message: str

    def __str__(self) -> str:
        where = self.path if not self.line else f"{self.path}:{self.line}"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "step": self.step, "message": self.message}


@dataclass
class FileChange:
    path: str
    old: bytes | None  # None: the file is created
    new: bytes | None  # None: the file is deleted

    @property
    def kind(self) -> str:
        if self.old is None:
            return "create"
        if self.new is None:
            return "delete"
        return "modify"

    def diff(self) -> str:
        return unified_diff(self.path, self.old, self.new)


@dataclass
class PhaseResult:
    phase: PhaseSpec
    changes: list[FileChange] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    candidates: int = 0
    parsed: int = 0

    @property
    def changed_paths(self) -> list[str]:
        return [c.path for c in self.changes]

    def diff(self) -> str:
        return "".join(c.diff() for c in self.changes)


def _decode(data: bytes) -> str:
    for encoding in ("utf-8", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")  # pragma: no cover


def unified_diff(path: str, old: bytes | None, new: bytes | None) -> str:
    """A unified diff ``git apply`` accepts (handles creation, deletion, missing final EOL)."""
    a = _decode(old).splitlines(keepends=True) if old is not None else []
    b = _decode(new).splitlines(keepends=True) if new is not None else []
    fromfile = f"a/{path}" if old is not None else "/dev/null"
    tofile = f"b/{path}" if new is not None else "/dev/null"
    out: list[str] = []
    for line in difflib.unified_diff(a, b, fromfile=fromfile, tofile=tofile):
        if line.startswith(("---", "+++")):
            out.append(line)
        elif not line.endswith("\n"):
            out.append(line + "\n\\ No newline at end of file\n")
        else:
            out.append(line)
    if not out:
        return ""
    header = f"diff --git a/{path} b/{path}\n"
    if old is None:
        header += "new file mode 100644\n"
    elif new is None:
        header += "deleted file mode 100644\n"
    return header + "".join(out)


# ------------------------------------------------------------------------------- running


def selected_steps(phase: PhaseSpec, step_ids: Sequence[str] | None) -> list[StepSpec]:
    if not step_ids:
        return list(phase.steps)
    known = {s.id for s in phase.steps}
    unknown = [s for s in step_ids if s not in known]
    if unknown:
        raise InputError(
            "<command line>",
            None,
            f"phase {phase.number} has no step {', '.join(unknown)} (steps: {', '.join(sorted(known))})",
        )
    return [s for s in phase.steps if s.id in step_ids]


def _parse_notes(rel: str, warnings: Iterable[str], default_step: str) -> list[Note]:
    notes = []
    for warning in warnings:
        parts = warning.split("\t", 2)
        if len(parts) == 3 and parts[0].isdigit():
            notes.append(Note(rel, int(parts[0]) or None, parts[1] or default_step, parts[2]))
        else:
            notes.append(Note(rel, None, default_step, warning))
    return notes


def transform_file(
    project: Project, rel: str, steps: Sequence[StepSpec], analysis: Any
) -> tuple[bytes, bytes, list[Note]]:
    """Send one file through the codemods of ``steps``: (old bytes, new bytes, notes)."""
    old = project.read_bytes(rel)
    tree = project.parse(rel)
    notes: list[Note] = []
    for step in steps:
        for codemod_class in step.codemods:
            context = CodemodContext(
                filename=str(project.path(rel)),
                full_module_name=project.module_name(rel),
            )
            codemod = codemod_class(context, analysis)
            try:
                tree = codemod.transform_module(tree)
            except SkipFile:
                pass
            notes.extend(_parse_notes(rel, context.warnings, step.id))
    new = tree.bytes
    return old, new, notes


# state handed to forked workers (set just before the pool starts)
_WORKER: dict[str, Any] = {}


def _work(rel: str) -> tuple[str, bytes, bytes, list[Note], InputError | None]:
    try:
        old, new, notes = transform_file(
            _WORKER["project"], rel, _WORKER["steps"], _WORKER["analysis"]
        )
        return rel, old, new, notes, None
    except InputError as exc:
        return rel, b"", b"", [], exc


def run_phase(
    project: Project,
    phase: PhaseSpec,
    step_ids: Sequence[str] | None = None,
    *,
    only: Sequence[str] | None = None,
    jobs: int = 1,
    progress: Callable[[str], None] | None = None,
) -> PhaseResult:
    """Compute a phase's changes in memory. Raises InputError for unparsable input."""
    steps = selected_steps(phase, step_ids)
    result = PhaseResult(phase)
    parses_before = project.parse_count
    analysis = phase.analyze(project)
    candidates = list(only) if only is not None else list(phase.files(project, analysis))
    result.candidates = len(candidates)
    if any(s.codemods for s in steps):
        outcomes: Iterable[tuple[str, bytes, bytes, list[Note], InputError | None]]
        if jobs > 1 and len(candidates) >= 2 * jobs and "fork" in multiprocessing.get_all_start_methods():
            _WORKER.update(project=project, steps=steps, analysis=analysis)
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(jobs) as pool:
                outcomes = pool.map(_work, candidates, chunksize=max(1, len(candidates) // (jobs * 4)))
            _WORKER.clear()
        else:
            outcomes = map(_work_local(project, steps, analysis), candidates)
        for rel, old, new, notes, error in outcomes:
            if error is not None:
                raise error
            if progress:
                progress(rel)
            result.notes.extend(notes)
            if new != old:
                result.changes.append(FileChange(rel, old, new))
    if phase.generate is not None and any(s.generates for s in steps):
        overlay = Project(project.root, project.config, dict(project.overlay))
        overlay.apply(result.changes)
        generated = phase.generate(overlay, analysis, [s.id for s in steps])
        by_path = {c.path: c for c in result.changes}
        for rel, content in generated.items():
            old = project.read_bytes(rel) if project.exists(rel) else None
            if content == old:
                continue
            if rel in by_path:
                by_path[rel].new = content
            else:
                result.changes.append(FileChange(rel, old, content))
        result.changes = [c for c in result.changes if c.old != c.new]
    if phase.postprocess is not None:
        result.changes = phase.postprocess(project, result.changes)
    result.changes.sort(key=lambda c: c.path)
    result.parsed = project.parse_count - parses_before
    return result


def _work_local(project: Project, steps: Sequence[StepSpec], analysis: Any) -> Callable[[str], Any]:
    def work(rel: str) -> tuple[str, bytes, bytes, list[Note], InputError | None]:
        old, new, notes = transform_file(project, rel, steps, analysis)
        return rel, old, new, notes, None

    return work


def check_parses(project: Project, rels: Iterable[str]) -> None:
    """Parse every file in ``rels`` (cached); the first failure raises InputError."""
    for rel in rels:
        project.parse(rel)


# ------------------------------------------------------------------------------- writing


def _check_writable(project: Project, change: FileChange) -> None:
    path = project.path(change.path)
    root = project.root
    if path.is_symlink():
        real = Path(os.path.realpath(path))
        if root != real and root not in real.parents:
            raise InputError(change.path, None, f"is a symlink to {real}, outside the target; refusing to write through it")
    parent = path.parent
    if parent.exists() and Path(os.path.realpath(parent)) != root and root not in Path(os.path.realpath(parent)).parents:
        raise InputError(change.path, None, "its directory leads outside the target (symlink); refusing to write")
    if change.old is not None and path.exists():
        mode = path.stat().st_mode
        if not mode & stat.S_IWUSR:
            raise InputError(change.path, None, "is read-only; make it writable or leave it out of the run")
        if path.read_bytes() != change.old:
            raise InputError(change.path, None, "changed on disk since it was read; run again")
    elif change.old is None and path.exists():
        raise InputError(change.path, None, "already exists; it would be overwritten")


def _atomic_write(path: Path, data: bytes) -> None:
    mode = None
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".refactor-tool.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_changes(
    project: Project,
    changes: Sequence[FileChange],
    *,
    _write: Callable[[Path, bytes], None] = _atomic_write,
) -> None:
    """Write all of ``changes`` or none: on any failure the files already written are restored."""
    for change in changes:
        _check_writable(project, change)
    done: list[FileChange] = []
    try:
        for change in changes:
            path = project.path(change.path)
            if change.new is None:
                path.unlink()
            else:
                _write(path, change.new)
            done.append(change)
    except BaseException:
        for change in reversed(done):
            path = project.path(change.path)
            if change.old is None:
                path.unlink(missing_ok=True)
            else:
                _atomic_write(path, change.old)
        raise
