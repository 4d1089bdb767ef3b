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

import ast
import base64
import difflib
import hashlib
import json
import multiprocessing
import os
import stat
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Sequence

from libcst.codemod import CodemodContext, SkipFile

from codemods.base import Note, PhaseSpec, StepSpec

from .model.changes import FileChange
from .model.project import InputError, Project
from .model.syntax import line_map


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


def transform_file(
    project: Project, rel: str, steps: Sequence[StepSpec], analysis: Any
) -> tuple[bytes, bytes, list[Note], Any]:
    """Send one file through the codemods of ``steps``: (old bytes, new bytes, notes, the
    new tree when it prints exactly the new bytes, else None)."""
    old = project.read_bytes(rel)
    original = tree = project.parse(rel)
    notes: list[Note] = []
    #: line -> (index in ``notes``, the step that reported it)
    places: dict[int, tuple[int, str]] = {}
    try:
        for step in steps:
            for codemod_class in step.codemods:
                context = CodemodContext(
                    filename=project.path_str(rel),
                    full_module_name=project.module_name(rel),
                )
                codemod = codemod_class(context, analysis)
                given = tree
                try:
                    tree = codemod.transform_module(given)
                except SkipFile:
                    pass
                if not codemod.notes:
                    continue
                # a codemod after one that changed the file reports lines of the changed
                # tree: they are taken back to the file's own lines
                back = None if given is original else line_map(original.code, given.code)
                for index, note in enumerate(codemod.notes):
                    line = note.line
                    if back is not None and line is not None and index in codemod.tree_lines:
                        line = back(line)
                    step_id = note.step or step.id
                    if line is not None and line in places:
                        # one place, one note: an earlier step's note stands for it; a
                        # step's own notes at one line become one
                        index, by = places[line]
                        if by == step_id and note.message not in notes[index].message:
                            first = notes[index]
                            notes[index] = Note(rel, line, by, f"{first.message}; {note.message}")
                        continue
                    if line is not None:
                        places[line] = (len(notes), step_id)
                    notes.append(Note(rel, line, step_id, note.message))
        if tree is original:  # no codemod changed a node: nothing to print
            return old, old, notes, None
        printed = tree.bytes
        if printed == old:
            return old, old, notes, None
        # libcst reprints almost every file exactly; a tree an earlier phase printed does
        printed_original = old if project.prints_exactly(original) else original.bytes
        new = keep_untouched_lines(old, printed_original, printed)
    except RecursionError:
        raise InputError(
            rel, None, "nested too deeply for libcst to walk; leave it out of the run or rewrite by hand"
        ) from None
    return old, new, notes, (tree if new == printed else None)


def keep_untouched_lines(old: bytes, printed: bytes, new: bytes) -> bytes:
    """Undo libcst's few printing losses on lines the codemods did not touch.

    libcst reproduces almost every file byte for byte, but not all (libcst 1.9 drops the
    space in ``except E :``). ``printed`` is libcst's output for the unchanged tree: where it
    equals the codemods' output nothing was changed and the file is left as it was; otherwise
    every line the codemods left alone is taken from the original bytes.
    """
    if printed == old:
        return new
    if new == printed:
        return old
    old_lines = old.splitlines(keepends=True)
    printed_lines = printed.splitlines(keepends=True)
    if len(old_lines) != len(printed_lines):  # pragma: no cover - no such loss known
        return new
    new_lines = new.splitlines(keepends=True)
    out: list[bytes] = []
    matcher = difflib.SequenceMatcher(None, printed_lines, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        out.extend(old_lines[i1:i2] if tag == "equal" else new_lines[j1:j2])
    return b"".join(out)


# state handed to forked workers (set just before the pool starts)
#: below this much source a phase runs in this process: starting workers costs more than
#: they save, and only this process can hand its trees on to the next phase
PARALLEL_BYTES = 256 * 1024
_WORKER: dict[str, Any] = {}


def _work(rel: str) -> tuple[str, bytes, bytes, list[Note], Any, InputError | None]:
    try:
        old, new, notes, _tree = transform_file(
            _WORKER["project"], rel, _WORKER["steps"], _WORKER["analysis"]
        )
        # trees do not travel back from worker processes; the next phase parses again
        return rel, old, new, notes, None, None
    except InputError as exc:
        return rel, b"", b"", [], None, exc


def run_phase(
    project: Project,
    phase: PhaseSpec,
    step_ids: Sequence[str] | None = None,
    *,
    only: Sequence[str] | None = None,
    jobs: int = 1,
    progress: Callable[[str], None] | None = None,
    analysis: Any = None,
) -> PhaseResult:
    """Compute a phase's changes in memory. Raises InputError for unparsable input.

    ``analysis``: the phase's analysis of ``project`` if the caller already built it (it is
    built here otherwise).
    """
    steps = selected_steps(phase, step_ids)
    result = PhaseResult(phase)
    parses_before = project.parse_count
    if analysis is None:
        analysis = phase.analyze(project)
    candidates = list(only) if only is not None else list(phase.files(project, analysis))
    result.candidates = len(candidates)
    if any(s.codemods for s in steps):
        outcomes: Iterable[tuple[str, bytes, bytes, list[Note], Any, InputError | None]]
        if (
            jobs > 1
            and len(candidates) >= 2 * jobs
            and "fork" in multiprocessing.get_all_start_methods()
            and sum(len(project.read_bytes(rel)) for rel in candidates) >= PARALLEL_BYTES
        ):
            _WORKER.update(project=project, steps=steps, analysis=analysis)
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(jobs) as pool:
                outcomes = pool.map(_work, candidates, chunksize=max(1, len(candidates) // (jobs * 4)))
            _WORKER.clear()
        else:
            outcomes = map(_work_local(project, steps, analysis), candidates)
        for rel, old, new, notes, tree, error in outcomes:
            if error is not None:
                raise error
            if progress:
                progress(rel)
            result.notes.extend(notes)
            if new != old:
                result.changes.append(
                    FileChange(rel, old, new, tree, new if tree is not None else None)
                )
    if phase.generate is not None and any(s.generates for s in steps):
        overlay = Project(project.root, project.config, dict(project.overlay))
        overlay.share_caches(project)
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
        result.changes = phase.postprocess(project, result.changes, result.notes)
    result.changes.sort(key=lambda c: c.path)
    result.parsed = project.parse_count - parses_before
    return result


def _work_local(project: Project, steps: Sequence[StepSpec], analysis: Any) -> Callable[[str], Any]:
    def work(rel: str) -> tuple[str, bytes, bytes, list[Note], Any, InputError | None]:
        old, new, notes, tree = transform_file(project, rel, steps, analysis)
        return rel, old, new, notes, tree, None

    return work


def check_parses(project: Project, rels: Iterable[str]) -> None:
    """Check that every file in ``rels`` parses; the first failure raises InputError.

    A file already parsed (cached) is fine. Any other is checked with the interpreter's own
    parser, many times faster than libcst's, so that the libcst parse itself happens where
    the file is transformed (in the worker processes with ``jobs > 1``). Only when that check
    fails is libcst asked (it knows newer syntax than an older interpreter), and its error,
    with file and line, is the one raised.
    """
    for rel in rels:
        if project.is_parsed(rel):
            continue
        source = project.read_bytes(rel)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escape sequences and the like
                ast.parse(source, filename=rel)
        except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError):
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


TEMP_SUFFIX = ".refactor-tool.tmp"
JOURNAL = "journal.json"


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically: readers see the old bytes or the new, never a mix."""
    mode = None
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------ journal and recovery
#
# Before the first file of a phase is replaced, the old bytes of every file the phase changes
# are saved in ``.refactor-tool/journal.json`` (written atomically). The journal is removed
# once every file is written, or once a failed write has been rolled back. A journal that is
# still there means a run was killed midway (SIGKILL, power loss): ``recover_interrupted``
# puts the old bytes back, so a phase is all-or-nothing even across a kill.


def _journal_path(root: Path) -> Path:
    return root / Project.STATE_DIR / JOURNAL


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_journal(project: Project, changes: Sequence[FileChange]) -> Path:
    entries = [
        {
            "path": c.path,
            "old": None if c.old is None else base64.b64encode(c.old).decode("ascii"),
            "new": None if c.new is None else _digest(c.new),
        }
        for c in changes
    ]
    journal = _journal_path(project.root)
    journal.parent.mkdir(exist_ok=True)
    _atomic_write(journal, json.dumps({"version": 1, "files": entries}).encode("utf-8"))
    return journal


def _remove_journal(journal: Path) -> None:
    journal.unlink(missing_ok=True)
    try:
        journal.parent.rmdir()  # only if the tool keeps nothing else there
    except OSError:
        pass


def remove_stale_temp_files(root: Path, rels: Iterable[str] = ()) -> list[Path]:
    """Delete temporary files a killed run left (``.<name>.*.refactor-tool.tmp``).

    Looks in the directories of ``rels`` and in the tool's state directory; returns what it
    removed.
    """
    root = Path(root)
    directories = {root / Project.STATE_DIR}
    directories.update((root / rel).parent for rel in rels)
    removed = []
    for directory in sorted(directories):
        if not directory.is_dir():
            continue
        for path in directory.iterdir():
            if path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def recover_interrupted(root: Path) -> list[str]:
    """Roll back a phase whose writing was interrupted; returns the paths put back.

    Only files that still hold either the journal's old bytes or the phase's new bytes are
    touched; a file edited by hand since the interruption raises :class:`InputError` and the
    journal is kept, so nothing is lost.
    """
    root = Path(root).resolve()
    journal = _journal_path(root)
    if not journal.is_file():
        remove_stale_temp_files(root)
        return []
    try:
        entries = json.loads(journal.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError) as exc:
        rel = journal.relative_to(root).as_posix()
        raise InputError(rel, None, f"unreadable journal of an interrupted run ({exc}); delete it after checking the files") from None
    plan: list[tuple[str, bytes | None]] = []
    for entry in entries:
        rel = entry["path"]
        old = None if entry["old"] is None else base64.b64decode(entry["old"])
        path = root / PurePosixPath(rel)
        current = path.read_bytes() if path.is_file() else None
        if current == old:
            continue
        if (current is None and entry["new"] is None) or (
            current is not None and entry["new"] == _digest(current)
        ):
            plan.append((rel, old))
            continue
        raise InputError(
            rel,
            None,
            "changed since an interrupted run wrote it; compare it with "
            f"{journal.relative_to(root).as_posix()} and restore it by hand",
        )
    for rel, old in plan:
        path = root / PurePosixPath(rel)
        if old is None:
            path.unlink(missing_ok=True)
        else:
            _atomic_write(path, old)
    remove_stale_temp_files(root, [e["path"] for e in entries])
    _remove_journal(journal)
    return [rel for rel, _ in plan]


def write_changes(
    project: Project,
    changes: Sequence[FileChange],
    *,
    _write: Callable[[Path, bytes], None] = _atomic_write,
) -> None:
    """Write all of ``changes`` or none: on any failure the files already written are restored.

    Every target is checked before the first write (symlinks leaving the target, read-only
    files, files changed on disk since they were read). Each file is replaced atomically, and
    a journal of the old bytes is kept while the phase is being written, so that even a killed
    run is rolled back by the next one (:func:`recover_interrupted`).
    """
    changes = [c for c in changes if c.old != c.new]
    if not changes:
        return
    restored = recover_interrupted(project.root)
    if restored:
        # these changes were computed on a half-written tree: write none of them
        shown = ", ".join(restored[:5]) + (" ..." if len(restored) > 5 else "")
        raise InputError(
            restored[0],
            None,
            f"an interrupted run had written part of a phase; it was rolled back ({shown}); run again",
        )
    for change in changes:
        _check_writable(project, change)
    journal = _write_journal(project, changes)
    created_dirs: list[Path] = []
    done: list[FileChange] = []
    try:
        for change in changes:
            path = project.path(change.path)
            if change.new is None:
                path.unlink()
            else:
                created_dirs.extend(_missing_dirs(path.parent, project.root))
                _write(path, change.new)
            done.append(change)
    except BaseException:
        for change in reversed(done):
            path = project.path(change.path)
            if change.old is None:
                path.unlink(missing_ok=True)
            else:
                _atomic_write(path, change.old)
        for directory in reversed(created_dirs):
            try:
                directory.rmdir()
            except OSError:
                pass
        remove_stale_temp_files(project.root, [c.path for c in changes])
        _remove_journal(journal)
        raise
    _remove_journal(journal)


def _missing_dirs(directory: Path, root: Path) -> list[Path]:
    """Directories between ``root`` and ``directory`` that do not exist yet (outermost first)."""
    missing = []
    while directory != root and not directory.exists() and root in directory.parents:
        missing.append(directory)
        directory = directory.parent
    return list(reversed(missing))
