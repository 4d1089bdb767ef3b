"""Run every phase's codemods over a large corpus of code they were not written for.

Default corpus: every ``.py`` file of the installed Python standard library (found with
``sysconfig``). None of those files holds the patterns the phases rewrite, so a correct codemod
leaves every one byte-for-byte unchanged and never crashes. Each file is parsed once and sent
through the codemods of each phase exactly as the engine does (``engine.transform_file``),
deliberately without the phases' own file selection, which would skip nearly all of it.

The codemods get the analyses of the bundled target project (built on a temporary copy, each
phase on the in-memory output of the phases before it), so the names they look for
(``DatabaseManager``, ``BaseManager``, the manager classes, the fixtures) are all "known":
the harshest setting, since a codemod that matched on names alone would fire here.

Files libcst cannot parse (test data with deliberate syntax errors or bad encodings) are
counted as "unparsable (skipped)", not as crashes. The first offenders are printed with the
phase, the codemod and the exception or a diff excerpt; the last line is
``N files, X changed, Y crashed``. Exit status 0 when nothing changed or crashed, else 1.

    python bench/corpus_noop.py [--jobs N] [--limit N] [--phases 1,2] [DIR ...]
"""

from __future__ import annotations

import argparse
import difflib
import multiprocessing
import os
import shutil
import sys
import sysconfig
import tempfile
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from libcst.codemod import CodemodContext, SkipFile

from refactor_tool.engine import run_phase, transform_file
from refactor_tool.phases import PHASES
from refactor_tool.model.project import InputError, Project

TARGET = REPO / "target_project"
SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__"}


# ------------------------------------------------------------------------------ analyses


@dataclass
class PhaseUnderTest:
    number: int
    steps: Sequence[Any]
    analysis: Any
    source: str  # where the analysis came from


def build_analyses(
    target: Path = TARGET, phases: Iterable[int] | None = None, log=print
) -> list[PhaseUnderTest]:
    """Each phase's analysis of a copy of ``target``, phase N on the output of phases < N."""
    wanted = sorted(PHASES) if phases is None else sorted(phases)
    out: list[PhaseUnderTest] = []
    with tempfile.TemporaryDirectory(prefix="corpus-noop-") as tmp:
        copy = Path(tmp) / "target"
        shutil.copytree(
            target, copy, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache")
        )
        project = Project(copy)
        for number in sorted(PHASES):
            phase = PHASES[number]
            try:
                analysis = phase.analyze(project)
                source = "target copy" + (
                    f" after phases 1-{number - 1}" if number > 1 else ""
                )
            except Exception as exc:  # noqa: BLE001 - report and go on with the other phases
                analysis, source = None, f"none ({type(exc).__name__}: {exc})"
            if number in wanted:
                if analysis is None and source.startswith("none"):
                    log(
                        f"phase {number}: no analysis of the target ({source}); phase skipped"
                    )
                else:
                    out.append(
                        PhaseUnderTest(number, tuple(phase.steps), analysis, source)
                    )
            try:  # advance the in-memory target to this phase's output for the next analysis
                project.apply(run_phase(project, phase).changes)
            except Exception as exc:  # noqa: BLE001
                log(
                    f"phase {number}: could not run on the target copy ({type(exc).__name__}: {exc})"
                )
    return out


# ------------------------------------------------------------------------------ checking


@dataclass
class Outcome:
    path: str
    status: str  # ok | unparsable | changed | crashed
    detail: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _culprit(project: Project, rel: str, phase: PhaseUnderTest) -> str:
    """Re-run a phase codemod by codemod to name the one that changed the file."""
    tree = project.parse(rel)
    for step in phase.steps:
        for codemod_class in step.codemods:
            context = CodemodContext(
                filename=str(project.path(rel)),
                full_module_name=project.module_name(rel),
            )
            try:
                new_tree = codemod_class(context, phase.analysis).transform_module(tree)
            except SkipFile:
                continue
            if new_tree.code != tree.code:
                return f"{step.id} {codemod_class.__name__}"
            tree = new_tree
    return "?"


def _printable(project: Project, rel: str) -> bool:
    """Whether libcst itself can print the file back (a few are nested too deeply)."""
    try:
        _ = project.parse(rel).bytes
    except RecursionError:
        return False
    return True


def check_file(root: Path, rel: str, phases: Sequence[PhaseUnderTest]) -> Outcome:
    """Parse ``root/rel`` once and send it through every phase; it must come out unchanged."""
    project = Project(
        root,
        phases[0].analysis.config
        if phases and hasattr(phases[0].analysis, "config")
        else None,
        {},
    )
    try:
        project.parse(rel)
    except InputError as exc:
        return Outcome(rel, "unparsable", str(exc))
    except Exception as exc:  # noqa: BLE001 - a parser crash is still "cannot parse"
        return Outcome(rel, "unparsable", f"{rel}: {type(exc).__name__}: {exc}")
    notes: list[str] = []
    for phase in phases:
        try:
            old, new, phase_notes, _tree = transform_file(
                project, rel, phase.steps, phase.analysis
            )
        except Exception:  # noqa: BLE001 - any exception is what we are looking for
            if not _printable(project, rel):
                return Outcome(
                    rel,
                    "unparsable",
                    f"{rel}: libcst cannot print it back (RecursionError)",
                )
            tb = traceback.format_exc(limit=-3).strip().splitlines()
            return Outcome(
                rel, "crashed", f"phase {phase.number}: " + " | ".join(tb[-4:])
            )
        notes.extend(f"phase {phase.number}: {n}" for n in phase_notes)
        if new != old:
            diff = difflib.unified_diff(
                old.decode("utf-8", "replace").splitlines(),
                new.decode("utf-8", "replace").splitlines(),
                lineterm="",
                n=0,
            )
            excerpt = "\n      ".join(list(diff)[2:10])
            culprit = _culprit(project, rel, phase)
            return Outcome(
                rel,
                "changed",
                f"phase {phase.number} ({culprit}):\n      {excerpt}",
                notes,
            )
    return Outcome(rel, "ok", notes=notes)


def corpus_files(roots: Sequence[Path]) -> list[tuple[Path, str]]:
    files = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            for name in sorted(filenames):
                if name.endswith(".py"):
                    path = Path(dirpath) / name
                    if path.is_file():
                        files.append((root, path.relative_to(root).as_posix()))
    return files


_PHASES: list[PhaseUnderTest] = []


def _check(item: tuple[Path, str]) -> Outcome:
    start = time.process_time()
    outcome = check_file(item[0], item[1], _PHASES)
    outcome.seconds = time.process_time() - start
    return outcome


def run(
    files: Sequence[tuple[Path, str]], phases: list[PhaseUnderTest], jobs: int
) -> Iterable[Outcome]:
    _PHASES[:] = phases
    if jobs > 1 and "fork" in multiprocessing.get_all_start_methods():
        with multiprocessing.get_context("fork").Pool(
            jobs, maxtasksperchild=200
        ) as pool:
            yield from pool.imap_unordered(_check, files, chunksize=4)
    else:
        yield from map(_check, files)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "roots", nargs="*", type=Path, help="corpus directories (default: the stdlib)"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--limit", type=int, default=0, help="check only the first N files"
    )
    parser.add_argument(
        "--phases", default="", help="comma-separated phase numbers (default: all)"
    )
    parser.add_argument("--show", type=int, default=10, help="offenders to print")
    args = parser.parse_args(argv)

    roots = [r.resolve() for r in args.roots] or [Path(sysconfig.get_paths()["stdlib"])]
    wanted = [int(p) for p in args.phases.split(",") if p] or None
    phases = build_analyses(phases=wanted)
    if not phases:
        print("no phase to check")
        return 1
    for phase in phases:
        codemods = [c.__name__ for s in phase.steps for c in s.codemods]
        print(
            f"phase {phase.number}: {len(codemods)} codemods ({', '.join(codemods) or '-'}); analysis: {phase.source}"
        )
    files = corpus_files(roots)
    if args.limit:
        files = files[: args.limit]
    print(
        f"corpus: {', '.join(map(str, roots))}: {len(files)} .py files, {args.jobs} process(es)"
    )

    start = time.perf_counter()
    counts = {"ok": 0, "unparsable": 0, "changed": 0, "crashed": 0}
    offenders: list[Outcome] = []
    unparsable: list[Outcome] = []
    noted: list[str] = []
    outcomes: list[Outcome] = []
    step = max(1, len(files) // 20)
    for done, outcome in enumerate(run(files, phases, args.jobs), 1):
        if done % step == 0:
            print(
                f"  {done}/{len(files)} files, {time.perf_counter() - start:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        counts[outcome.status] += 1
        outcomes.append(outcome)
        if outcome.status in ("changed", "crashed"):
            offenders.append(outcome)
        elif outcome.status == "unparsable":
            unparsable.append(outcome)
        noted.extend(f"{outcome.path}: {n}" for n in outcome.notes)
    elapsed = time.perf_counter() - start

    for outcome in sorted(offenders, key=lambda o: o.path)[: args.show]:
        print(f"{outcome.status.upper()} {outcome.path}: {outcome.detail}")
    if len(offenders) > args.show:
        print(f"... and {len(offenders) - args.show} more")
    if noted:
        print(
            f"manual-attention notes on the corpus (codemods that fired on foreign code): {len(noted)}"
        )
        for note in noted[: args.show]:
            print(f"  {note}")
    if unparsable:
        first = min(unparsable, key=lambda o: o.path)
        print(f"unparsable (skipped): {len(unparsable)}, e.g. {first.detail}")
    slowest = sorted(outcomes, key=lambda o: -o.seconds)[:3]
    print("slowest: " + ", ".join(f"{o.path} {o.seconds:.1f} s" for o in slowest))
    checked = len(files) - counts["unparsable"]
    print(
        f"time: {elapsed:.1f} s for {checked} files x {len(phases)} phases with {args.jobs} process(es)"
    )
    print(f"{checked} files, {counts['changed']} changed, {counts['crashed']} crashed")
    return 0 if not offenders else 1


if __name__ == "__main__":
    sys.exit(main())
