"""The ``refactor-tool`` command line.

Exit codes: 0 done and every gate as expected; 1 a gate or check failed; 2 bad input (unknown
phase or step, missing target, a target not of the expected shape, a file that does not parse, a
read-only file or a symlink leading outside the target, a dirty git tree without
``--allow-dirty``); bad input always names the file (and line) and nothing at all is written.
3 is an internal error of the tool itself (the traceback is shown).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.rule import Rule
from rich.table import Table

from . import gitops
from .dangling import (
    dangling_fixture_requests,
    dangling_names,
    sessionless_manager_calls,
)
from .engine import (
    JOURNAL,
    FileChange,
    _check_writable,
    check_parses,
    recover_interrupted,
    run_phase,
    selected_steps,
    write_changes,
)
from .model.config import ConfigError, found_in_code, keep_layout, load_config
from .model.project import InputError, Project
from .model.state import (
    GATE_FAILED,
    GATE_NOT_VERIFIED,
    GATE_PASSED,
    load_state,
    save_state,
    state_of,
)
from .phases import PHASES
from .report import PhaseRecord, Reporter, RunReport, summary_line
from .gates import (
    Baseline,
    EnvironmentProblem,
    GateResult,
    check_as_dict,
    default_python,
    load_baseline,
    keep_baseline,
    record_baseline,
    run_gate,
)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


class BadInput(Exception):
    """Bad input that is not about a particular file line (unknown phase, missing target...)."""


# ----------------------------------------------------------------------------- help texts


def phases_epilog() -> str:
    """The phase list for every ``--help``, read from the registry."""
    lines = ["\b", "Phases (docs/plan.md; from the phase registry):"]
    if not PHASES:
        lines.append("  (no phase is installed)")
    for number in sorted(PHASES):
        phase = PHASES[number]
        lines.append(f"  {number}  {phase.title}")
        for step in phase.steps:
            how = (
                "codemod"
                if step.codemods
                else "generated"
                if step.generates
                else "procedural"
            )
            lines.append(f"       {step.id}  {step.title}  [{how}]")
    lines += [
        "",
        "\b",
        "Exit codes: 0 done, every gate as expected; 1 a gate or check failed;",
        "2 bad input (names file and line; nothing written); 3 internal error.",
    ]
    return "\n".join(lines)


EPILOG = phases_epilog()


def _phase_numbers() -> str:
    return ", ".join(str(n) for n in sorted(PHASES)) or "none installed"


# ----------------------------------------------------------------------------- error handling


def handle_errors(func: Callable[..., int]) -> Callable[..., None]:
    """Map the tool's exceptions to exit codes and actionable messages."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        rep = Reporter()
        try:
            code = func(rep, *args, **kwargs)
        except (InputError, ConfigError, BadInput, EnvironmentProblem) as exc:
            rep.error(str(exc))
            if rep.wrote:
                rep.err.print(
                    "phases before this one were written (see above); the rest was not."
                )
            else:
                rep.err.print("nothing was written.")
            code = EXIT_BAD_INPUT
        except gitops.GitError as exc:
            rep.error(str(exc))
            code = EXIT_FAILED
        except KeyboardInterrupt:
            rep.error(
                "interrupted"
                + (
                    "; files already written stay written (see above)"
                    if rep.wrote
                    else "; nothing was written"
                )
            )
            code = 130
        except (click.exceptions.Exit, click.ClickException):
            raise
        except Exception:  # noqa: BLE001 - a bug in the tool: show it, with a distinct code
            rep.err.print_exception(show_locals=False)
            rep.error(
                "internal error in refactor-tool (a bug: the traceback above says where)"
            )
            code = EXIT_INTERNAL
        sys.exit(code)

    return wrapper


def resolve_target(target: str | None) -> Path:
    path = Path(target) if target else Path.cwd()
    if not path.exists():
        raise BadInput(f"{path}: target directory does not exist")
    if not path.is_dir():
        raise BadInput(f"{path}: target is not a directory")
    return path.resolve()


def open_project(target: str | None) -> Project:
    root = resolve_target(target)
    config = load_config(root)
    project = Project(root, config)
    package = root / config.package_dir
    if not package.is_dir():
        raise InputError(
            f"{config.package_dir}/",
            None,
            f"expected the application package {config.package_dotted!r} in {root}: no "
            f"top-level package defines {config.database_manager_class}, none is named like "
            "the project and there is more than one (is --target right? name it in "
            "[tool.refactor-tool] package in pyproject.toml)",
        )
    return project


def resolve_python(root: Path, python: str | None) -> str:
    chosen = python or default_python(root)
    if os.sep in chosen or (os.altsep and os.altsep in chosen):
        if not Path(chosen).exists():
            raise BadInput(f"--python {chosen}: no such interpreter")
        return chosen
    found = shutil.which(chosen)
    if not found:
        raise BadInput(f"--python {chosen}: not found on PATH")
    return found


# ----------------------------------------------------------------------------- progress


@contextmanager
def file_progress(rep: Reporter, text: str) -> Iterator[Callable[[str], None]]:
    if not rep.err.is_terminal:
        yield lambda rel: None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=rep.err,
        transient=True,
    ) as progress:
        task = progress.add_task(text, total=None)
        yield lambda rel: progress.update(task, advance=1, description=f"{text} {rel}")


# ----------------------------------------------------------------------------- the apply path


@dataclass
class ApplyOptions:
    dry_run: bool = False
    verify: bool = True
    python: str | None = None
    commit: bool = False
    allow_dirty: bool = False
    json_path: str | None = None
    jobs: int = 1
    test_jobs: int | None = None  # None: as the baseline ran, else one per CPU
    show_diff: bool = False
    new_baseline: bool = False
    only: tuple[str, ...] = ()
    command: str = "apply"


def compute(
    rep: Reporter,
    project: Project,
    selection: Sequence[tuple[Any, list[str] | None]],
    jobs: int,
    only: Sequence[str] = (),
) -> list[PhaseRecord]:
    """Every selected phase in memory, each on the previous one's output; nothing is written.

    Before a phase runs, every file it needs is parsed (a file that does not parse is bad input
    with file and line, raised here before anything is written).
    """
    records = []
    for phase, step_ids in selection:
        with file_progress(rep, f"phase {phase.number}:") as tick:
            started = time.perf_counter()
            analysis = phase.analyze(project)
            analysed = time.perf_counter()
            files = list(phase.files(project, analysis))
            if only:
                files = [rel for rel in files if rel in only]
            chosen = selected_steps(phase, step_ids)
            if jobs > 1 or not any(step.codemods for step in chosen):
                # with one process the phase's codemods parse each file themselves, in this
                # order, before anything is written; otherwise a file that does not parse is
                # found here first, with its line
                check_parses(project, files)
            result = run_phase(
                project,
                phase,
                step_ids,
                analysis=analysis,
                only=files if only else None,
                jobs=jobs,
                progress=tick,
            )
            seconds = {
                "analysis": analysed - started,
                "files": time.perf_counter() - analysed,
            }
        project.apply(result.changes)
        # phase 6 formats exactly the files the refactoring changed (codemods/phase6.py)
        state = state_of(project)
        state.changed_files = sorted(
            set(state.changed_files) | {c.path for c in result.changes if c.new is not None}
        )
        steps = step_ids or [s.id for s in phase.steps]
        records.append(
            PhaseRecord(
                phase.number,
                phase.title,
                list(steps),
                result.changes,
                result.notes,
                seconds=seconds,
            )
        )
    return records


def combined_changes(records: Sequence[PhaseRecord]) -> list[FileChange]:
    """One change per file, from its bytes before the first phase to after the last."""
    first: dict[str, bytes | None] = {}
    last: dict[str, bytes | None] = {}
    for record in records:
        for change in record.changes:
            first.setdefault(change.path, change.old)
            last[change.path] = change.new
    return [
        FileChange(p, first[p], last[p]) for p in sorted(first) if first[p] != last[p]
    ]


def _phase_header(rep: Reporter, record: PhaseRecord, to_err: bool = False) -> None:
    console = rep.err if to_err else rep.out
    steps = ", ".join(record.steps)
    console.print(
        Rule(
            f"[bold]Phase {record.number}: {escape(record.title)}[/] [dim](steps {steps})[/]",
            align="left",
        )
    )
    phase = PHASES.get(record.number)
    if phase is not None:
        for step in phase.steps:
            if step.id in record.steps and step.note:
                console.print(
                    f"  [dim]{step.id} {escape(step.title)}: {escape(step.note)}[/]"
                )


def default_test_jobs() -> int:
    return os.cpu_count() or 1


def get_baseline(
    rep: Reporter,
    project: Project,
    python: str,
    *,
    new: bool,
    before_write: bool,
    test_jobs: int | None = None,
) -> Baseline:
    baseline = None if new else load_baseline(project.root)
    if baseline is not None:
        rep.info(
            f"[dim]baseline: {len(baseline.suite.tests)} tests, recorded {baseline.taken_at} "
            f"({escape(baseline.suite.how)}; .refactor-tool/baseline.json)[/]"
        )
        if test_jobs is not None and test_jobs != baseline.suite.jobs:
            rep.warn(
                f"the baseline ran the suite in {baseline.suite.how}; the gates now run it with "
                f"--test-jobs {test_jobs} (a test that fails only in a parallel run is run "
                "again alone before it is judged)"
            )
        return baseline
    if not before_write:
        rep.warn(
            "no baseline was recorded before the refactor started; recording one now from the tree as "
            "it is, so failures already present count as pre-existing"
        )
    gitops.ensure_excluded(project.root)
    with rep.gate_progress(
        "recording the baseline: running the target's tests before anything is written"
    ) as (update, progress):
        on_disk = Project(project.root, project.config)
        on_disk.share_caches(project)
        on_disk.refresh()
        baseline = record_baseline(
            on_disk,
            python,
            jobs=test_jobs or default_test_jobs(),
            on_step=update,
            progress=lambda state: progress("baseline", state),
        )
    _baseline_recorded(rep, baseline)
    return baseline


class BackgroundBaseline:
    """The baseline recorded while the phases are computed in memory.

    The baseline runs the target's suite on the tree as it is on disk, which nothing changes
    before the first write; the codemods meanwhile work on their own copy in memory. Started
    only when a baseline has to be recorded; cancelled (its processes stopped) when the run
    ends before writing."""

    def __init__(self, project: Project, python: str, jobs: int) -> None:
        self._cancel = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=1)
        # a project of its own: the run's caches stay the compute's alone
        self._project = Project(project.root, project.config)
        self._future = self._pool.submit(
            record_baseline,
            self._project,
            python,
            jobs=jobs,
            cancel=self._cancel,
            keep=False,  # written only once the run is about to write
        )

    def result(self) -> Baseline:
        """The baseline, kept in ``.refactor-tool/`` from now on."""
        try:
            baseline = self._future.result()
        finally:
            self._pool.shutdown(wait=False)
        gitops.ensure_excluded(self._project.root)
        keep_baseline(self._project, baseline)
        return baseline

    def cancel(self) -> None:
        self._cancel.set()
        try:
            self._future.result()
        except BaseException:  # noqa: BLE001 - cancelled or failed: nobody needs it now
            pass
        self._pool.shutdown(wait=True)


def _baseline_recorded(rep: Reporter, baseline: Baseline) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(baseline.suite.counts().items()))
    rep.info(
        f"baseline recorded: {len(baseline.suite.tests)} tests ({counts}; "
        f"{escape(baseline.suite.how)}); smoke: {baseline.smoke.status}"
    )


def _end_state_checks() -> Callable[[Project], list[Any]] | None:
    if importlib.util.find_spec(f"{__package__}.check") is None:
        return None
    return importlib.import_module(f"{__package__}.check").run_checks


def gate_for(
    rep: Reporter,
    project: Project,
    number: int,
    baseline: Baseline,
    python: str,
    *,
    test_jobs: int | None = None,
    changes: Sequence[FileChange] | None = None,
) -> GateResult:
    phase = PHASES.get(number)
    title = phase.title if phase else f"phase {number}"
    # the tree on disk, parsed through the run's cache (a file the phases left as it was, or
    # wrote as they computed it, is not parsed again)
    on_disk = Project(project.root, project.config)
    on_disk.share_caches(project)
    on_disk.refresh()
    with rep.gate_progress(f"phase {number}: verifying") as (update, progress):
        return run_gate(
            on_disk,
            number,
            title,
            baseline,
            python,
            jobs=test_jobs or baseline.suite.jobs or default_test_jobs(),
            changes=changes,
            checks=_end_state_checks(),
            on_step=update,
            progress=progress,
        )


def _listed(paths: Sequence[str], limit: int = 5) -> str:
    return ", ".join(paths[:limit]) + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def gate_reason(gate: GateResult) -> str:
    """Why a gate failed, in one line ("" for a gate that passed)."""
    if gate.ok:
        return ""
    if not gate.problems:
        return "the gate failed"
    first = " ".join(gate.problems[0].split())
    more = len(gate.problems) - 1
    return first + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def run_apply(
    rep: Reporter,
    project: Project,
    selection: Sequence[tuple[Any, list[str] | None]],
    opts: ApplyOptions,
) -> int:
    root = project.root
    report = RunReport(
        opts.command, str(root), dry_run=opts.dry_run, verify=opts.verify
    )
    repo = gitops.repo_root(root)
    journal = root / Project.STATE_DIR / JOURNAL
    if journal.is_file():
        if opts.dry_run:
            rep.warn(
                f"{journal}: a run was interrupted while writing a phase; the next "
                "`apply` puts its files back first (this dry run shows the tree as it is)"
            )
        else:
            restored = recover_interrupted(root)
            project.refresh()
            shown = ", ".join(restored[:5]) + (" …" if len(restored) > 5 else "")
            rep.warn(
                "a run was interrupted while writing a phase; its files were put back"
                + (f": {shown}" if restored else " (none had been written yet)")
            )
    if not opts.dry_run:
        if opts.commit and repo is None:
            raise BadInput(
                f"{root}: --commit needs a git repository (run `git init` there, or leave out --commit)"
            )
        if repo is not None and not opts.allow_dirty:
            dirty = gitops.dirty_files(root)
            if dirty:
                shown = "\n  ".join(dirty[:10]) + ("\n  …" if len(dirty) > 10 else "")
                raise BadInput(
                    f"{root}: the git tree has uncommitted changes; commit or stash them, or pass "
                    f"--allow-dirty:\n  {shown}"
                )
    # what the tree held uncommitted before the run (with --allow-dirty): never committed
    # with a phase, unless the phase writes that very file
    leftovers: set[str] = set()
    if opts.commit and not opts.dry_run and repo is not None:
        leftovers = gitops.changed_paths(root)
    if opts.dry_run and opts.commit:
        rep.warn("--commit does nothing with --dry-run")
    python = (
        resolve_python(root, opts.python) if opts.verify and not opts.dry_run else None
    )
    report.python = python

    written_files = set(state_of(project).changed_files)
    state = state_of(project)
    if (
        repo is not None
        and state.base_commit is None
        and not written_files
        and not gitops.dirty_files(root)
    ):
        # the commit the refactoring starts from: phase 6 formats only the lines changed since
        state.base_commit = gitops.head(root)
    background = None
    if (
        opts.verify
        and not opts.dry_run
        and python
        and (opts.new_baseline or load_baseline(root) is None)
    ):
        rep.info(
            "[dim]recording the baseline in the background: the target's tests run on the "
            "tree as it is while the phases are computed in memory[/]"
        )
        background = BackgroundBaseline(
            project, python, opts.test_jobs or default_test_jobs()
        )
    try:
        code = _compute_and_write(
            rep,
            project,
            selection,
            opts,
            report,
            python,
            written_files,
            background,
            leftovers,
        )
    except BaseException:
        if background is not None:
            background.cancel()
        raise
    return code


def _compute_and_write(
    rep: Reporter,
    project: Project,
    selection: Sequence[tuple[Any, list[str] | None]],
    opts: ApplyOptions,
    report: RunReport,
    python: str | None,
    written_files: set[str],
    background: BackgroundBaseline | None,
    leftovers: set[str],
) -> int:
    root = project.root
    repo = gitops.repo_root(root)
    records = compute(rep, project, selection, opts.jobs, opts.only)
    report.phases = records
    combined = combined_changes(records)

    # a phase never writes a dangling name: a rule that produced one is a bug, and the run
    # stops here, before anything is written, with each name's file:line
    before_run = Project(root, project.config)
    before_run.share_caches(project)
    by_phase = [(r.number, r.changes) for r in records]
    dangling = [
        *dangling_names(by_phase),
        *dangling_fixture_requests(before_run, by_phase),
        *sessionless_manager_calls(before_run, by_phase),
    ]
    if dangling:
        for item in dangling:
            rep.error(str(item))
            report.messages.append(str(item))
        rep.err.print(
            f"{len(dangling)} dangling reference(s): a rule of the tool produced code that "
            "cannot run. Nothing was written; please report it with the lines above."
        )
        report.exit_code = EXIT_FAILED
        if opts.json_path:
            report.write(Path(opts.json_path))
        if background is not None:
            background.cancel()
        return EXIT_FAILED

    if opts.dry_run:
        rep.diff(combined)
        for record in records:
            rep.err.print(
                f"phase {record.number} ({escape(record.title)}): "
                + summary_line(record.changes, record.notes, dry_run=True)
            )
            rep.notes(record.notes, to_err=True)
        if len(records) > 1:
            rep.err.print(
                "[bold]total:[/] "
                + summary_line(
                    combined, [n for r in records for n in r.notes], dry_run=True
                )
            )
        rep.err.print("[dim]dry run: nothing was written[/]")
        if opts.json_path:
            report.write(Path(opts.json_path))
        return EXIT_OK

    # nothing is written unless every file of every phase can be written
    check_project = Project(root, project.config)
    for change in combined:
        _check_writable(check_project, change)

    baseline = None
    if background is not None:
        with rep.gate_progress("waiting for the baseline's run of the target's tests") as _:
            baseline = background.result()
        _baseline_recorded(rep, baseline)
        report.baseline = baseline.as_dict() | {"suite": None, "touches_db": None}
    elif opts.verify:
        baseline = get_baseline(
            rep,
            project,
            python or "",
            new=opts.new_baseline,
            before_write=True,
            test_jobs=opts.test_jobs,
        )
        report.baseline = baseline.as_dict() | {"suite": None, "touches_db": None}
    else:
        rep.info("[dim]--no-verify: no gates run[/]")

    exit_code = EXIT_OK
    committed_any = False
    gitops.ensure_excluded(
        root
    )  # .refactor-tool/ (baseline, state) never shows in git status
    # what the code said about the layout before anything was written holds for the rest of
    # the refactoring (phase 4 deletes the session fixture it names, for one)
    keep_layout(root)
    for record in records:
        _phase_header(rep, record)
        rep.wrote = True
        write_changes(Project(root, project.config), record.changes)
        record.written = True
        record.status = "written"
        written_files.update(c.path for c in record.changes if c.new is not None)
        state_of(project).changed_files = sorted(written_files)
        # `status` tells from this record a phase whose work left nothing for its codemods to
        # find (applied) from one that never had anything to do (n/a); a phase that changed
        # nothing keeps the record it has (its gate's verdict below updates it)
        if record.changes:
            state_of(project).record_applied(
                record.number, record.steps, [(n.path, n.message) for n in record.notes]
            )
        save_state(project.root, state_of(project))  # phases 4-6 keep facts there that later phases need
        if record.changes:
            rep.info(summary_line(record.changes, record.notes, dry_run=False) + ":")
            rep.changed_files(record.changes)
        else:
            rep.info("nothing to change: the code already has this phase")
        if opts.show_diff:
            rep.diff(record.changes, plain_stdout=not rep.stdout_is_terminal)
        rep.notes(record.notes)
        if baseline is not None and not record.changes:
            # nothing written: what the tree does is what the last gate saw, and the
            # baseline's expectations for this phase no longer describe it
            rep.info("[dim]no gate: this run wrote nothing for the phase[/]")
        elif baseline is not None:
            gate = gate_for(
                rep,
                project,
                record.number,
                baseline,
                python or "",
                test_jobs=opts.test_jobs,
                changes=record.changes,
            )
            record.gate = gate
            rep.gate(gate)
            state_of(project).record_gate(record.number, gate.ok, gate_reason(gate))
            save_state(project.root, state_of(project))
            if not gate.ok:
                record.status = "failed"
                exit_code = EXIT_FAILED
                rep.error(
                    f"phase {record.number}'s gate failed; its changes are in the working tree"
                    + (" (not committed)" if opts.commit else "")
                    + (
                        f". Inspect them (git -C {root} diff), fix the cause or undo them "
                        f"(git -C {root} checkout -- .), then run again."
                        if repo is not None
                        else ". The files listed above were changed; fix the cause or restore "
                        "them from your copy, then run again."
                    )
                )
                break
            record.status = "verified"
        if opts.commit:
            if record.changes:
                kind = (
                    "step " + record.steps[0]
                    if len(selection) == 1 and selection[0][1]
                    else f"phase {record.number}"
                )
                title = record.title
                if kind.startswith("step"):
                    phase = PHASES[record.number]
                    title = phase.step(record.steps[0]).title
                message = f"refactor-tool: {kind} - {title}"
                paths = [c.path for c in record.changes]
                # exactly the files the phase wrote are staged and committed
                sha = gitops.commit(root, paths, message)
                record.commit = sha
                committed_any = True
                rep.info(f"committed [bold]{sha[:10]}[/] {escape(message)}")
                mixed = sorted(leftovers.intersection(paths))
                if mixed:
                    rep.warn(
                        f"{_listed(mixed)}: had uncommitted changes before this run and phase "
                        f"{record.number} rewrote {'them' if len(mixed) > 1 else 'it'}; the "
                        "whole content, those earlier changes included, is in this commit"
                    )
                leftovers.difference_update(paths)
            else:
                rep.info("[dim]nothing to commit for this phase[/]")

    if committed_any and leftovers:
        rep.info(
            f"left uncommitted: {len(leftovers)} file(s) with changes from before this run, "
            f"in no commit of it: {escape(_listed(sorted(leftovers)))}"
        )
    done = [r for r in records if r.written]
    if exit_code == EXIT_OK:
        phases = ", ".join(str(r.number) for r in done)
        rep.info(
            f"[bold green]done:[/] phase{'s' if len(done) != 1 else ''} {phases} applied"
            + (", every gate as expected" if opts.verify else " (not verified)")
        )
    else:
        skipped = [r for r in records if not r.written]
        for r in skipped:
            r.status = "skipped"
        if skipped:
            rep.info(
                f"not applied: phase(s) {', '.join(str(r.number) for r in skipped)}"
            )
    report.exit_code = exit_code
    if opts.json_path:
        report.write(Path(opts.json_path))
        rep.info(f"[dim]report written to {escape(opts.json_path)}[/]")
    return exit_code


# ----------------------------------------------------------------------------- commands

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT, epilog=EPILOG)
@click.version_option(package_name="refactor-tool", prog_name="refactor-tool")
def main() -> None:
    """Carry out docs/plan.md's session-management refactoring on a SQLAlchemy app, phase by phase.

    Every phase is a set of libcst codemods; after each applied phase the app's own test suite
    runs as a verification gate and is compared with a baseline taken before anything was
    written. Start with `refactor-tool demo`, then `refactor-tool status --target DIR`.
    """


_target_option = click.option(
    "--target",
    metavar="DIR",
    default=None,
    help="The project to refactor (default: the current directory).",
)
_python_option = click.option(
    "--python",
    "python",
    metavar="PY",
    default=None,
    help="Interpreter that runs the target's tests (default: the target's own virtual environment, else this tool's).",
)
_json_option = click.option(
    "--json",
    "json_path",
    metavar="FILE",
    default=None,
    help="Write a machine-readable report to FILE.",
)
_test_jobs_option = click.option(
    "--test-jobs",
    "test_jobs",
    type=click.IntRange(min=1),
    default=None,
    show_default="as the baseline ran, else the CPU count",
    help="Processes for the target's test suite (pytest-xdist if the target has it, else "
    "split by test module).",
)
_jobs_option = click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=os.cpu_count() or 1,
    show_default="CPU count",
    help="Processes for the codemods.",
)


def _check_order(rep: Reporter, project: Project, number: int, jobs: int) -> None:
    """Refuse a phase whose predecessors still have work to do: the plan's phases build on
    each other (phase 5's tests call phase 3's factory, phase 2's managers need phase 1's
    sessions), and a later phase over code an earlier one has not changed writes code that
    cannot run. An earlier phase counts as done when `apply` recorded it, or when its
    codemods find nothing left to change in the code (done by hand)."""
    applied = load_state(project.root).applied
    earlier_phases = sorted(n for n in PHASES if n < number and n not in applied)
    if earlier_phases:
        PHASES[number].analyze(project)  # what is wrong with the phase asked for comes first
    for earlier in earlier_phases:
        phase = PHASES[earlier]
        with file_progress(rep, f"phase {earlier}: is it done?") as tick:
            result = run_phase(
                project, phase, jobs=jobs, progress=tick, analysis=phase.analyze(project)
            )
        if result.changes:
            raise BadInput(
                f"{project.root}: phase {number} comes after phase {earlier}, which still has "
                f"work to do here (it would change {_listed([c.path for c in result.changes])}). "
                f"Apply the phases in order (`refactor-tool apply --phase {earlier}`, or "
                "`apply --all`), or pass --out-of-order; `refactor-tool status` shows where "
                "each phase stands"
            )


def _selection(
    phase: int | None, all_: bool, step: str | None
) -> list[tuple[Any, list[str] | None]]:
    given = sum(1 for x in (phase is not None, all_, step is not None) if x)
    if given != 1:
        raise click.UsageError("give exactly one of --phase N, --all or --step N.M")
    if all_:
        if not PHASES:
            raise BadInput("no phase is installed")
        return [(PHASES[n], None) for n in sorted(PHASES)]
    if step is not None:
        number, _, _rest = step.partition(".")
        if not number.isdigit() or int(number) not in PHASES:
            raise BadInput(
                f"<command line>: unknown step {step!r} (phases: {_phase_numbers()}; steps look like 1.2)"
            )
        found = PHASES[int(number)]
        try:
            chosen = found.step(step)
        except KeyError:
            steps = ", ".join(s.id for s in found.steps)
            raise BadInput(
                f"<command line>: phase {number} has no step {step} (steps: {steps})"
            ) from None
        return [(found, [chosen.id])]
    assert phase is not None
    if phase not in PHASES:
        raise BadInput(
            f"<command line>: unknown phase {phase} (phases: {_phase_numbers()})"
        )
    return [(PHASES[phase], None)]


@main.command(context_settings=CONTEXT, epilog=EPILOG)
@click.option("--phase", type=int, metavar="N", default=None, help="Apply phase N.")
@click.option(
    "--all",
    "all_",
    is_flag=True,
    help="Apply every phase in order, each gated; stop at the first unexpected result.",
)
@click.option(
    "--step",
    metavar="N.M",
    default=None,
    help="Apply one step of a phase alone (docs/plan.md's numbering).",
)
@_target_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="Write nothing; print the diff (a plain patch for `git apply` when piped).",
)
@click.option("--no-verify", is_flag=True, help="Do not run the verification gates.")
@_python_option
@click.option(
    "--commit",
    is_flag=True,
    help="Commit each phase (`refactor-tool: phase N - <title>`) once its gate passes.",
)
@click.option(
    "--allow-dirty",
    is_flag=True,
    help="Run even if the git tree has uncommitted changes.",
)
@_json_option
@_jobs_option
@_test_jobs_option
@click.option(
    "--diff",
    "show_diff",
    is_flag=True,
    help="Also print each phase's diff as it is written.",
)
@click.option(
    "--new-baseline",
    is_flag=True,
    help="Discard the recorded baseline and take a new one first.",
)
@click.option(
    "--only",
    "only",
    metavar="PATH",
    multiple=True,
    help="Restrict the codemods to these files (repeatable), e.g. to go module by module in phase 5.",
)
@click.option(
    "--out-of-order",
    is_flag=True,
    help="Apply a phase even though an earlier one still has work to do in the code.",
)
@handle_errors
def apply(
    rep: Reporter,
    phase: int | None,
    all_: bool,
    step: str | None,
    target: str | None,
    dry_run: bool,
    no_verify: bool,
    python: str | None,
    commit: bool,
    allow_dirty: bool,
    json_path: str | None,
    jobs: int,
    test_jobs: int | None,
    show_diff: bool,
    new_baseline: bool,
    only: tuple[str, ...],
    out_of_order: bool,
) -> int:
    """Apply a phase (--phase N), every phase (--all) or one step (--step N.M).

    Before anything is written every file the selected phases need is parsed and a baseline of
    the target's tests is recorded (.refactor-tool/baseline.json, kept out of git). Each phase
    is then written and verified by its gate; the run stops at the first gate that fails.
    """
    selection = _selection(phase, all_, step)
    project = open_project(target)
    if not all_ and not out_of_order:
        _check_order(rep, project, selection[0][0].number, jobs)
    if all_:
        missing = [n for n in range(1, 7) if n not in PHASES]
        if missing:
            rep.warn(
                f"phase(s) {', '.join(map(str, missing))} are not installed; running {_phase_numbers()}"
            )
    opts = ApplyOptions(
        dry_run=dry_run,
        verify=not no_verify,
        python=python,
        commit=commit,
        allow_dirty=allow_dirty,
        json_path=json_path,
        jobs=jobs,
        test_jobs=test_jobs,
        show_diff=show_diff,
        new_baseline=new_baseline,
        only=tuple(_relative_paths(project, only)),
    )
    return run_apply(rep, project, selection, opts)


def _relative_paths(project: Project, paths: Sequence[str]) -> list[str]:
    """``--only`` paths (relative to the cwd or to the target) as target-relative POSIX paths."""
    result = []
    for raw in paths:
        candidates = [Path(raw), project.root / raw]
        found = next((c.resolve() for c in candidates if c.is_file()), None)
        if found is None:
            raise BadInput(f"{raw}: --only names no file (relative to the current directory or the target)")
        try:
            result.append(found.relative_to(project.root).as_posix())
        except ValueError:
            raise BadInput(f"{raw}: --only names a file outside the target {project.root}") from None
    return result


@main.command(context_settings=CONTEXT, epilog=EPILOG)
@_target_option
@_jobs_option
def status(target: str | None, jobs: int) -> None:
    """Show, per phase and step, whether the code is applied, pending, waiting or not applicable.

    Detected from the code itself: each step's codemods run in memory; a step that would change
    nothing is applied, one that would change something is pending, one that finds nothing to
    work on is n/a. While an earlier phase is still to be applied, a step that finds nothing to
    do is waiting (for that phase), not applied. A phase that `apply` wrote (recorded in
    .refactor-tool/state.json) and that the code shows as n/a or applied is applied, or
    "applied, gate failed" with the gate's reason when its last gate failed; what the code
    shows as pending stays pending. Procedural steps show their phase's state and how the tool
    handles them.
    """
    _status(target, jobs)


@handle_errors
def _status(rep: Reporter, target: str | None, jobs: int) -> int:
    project = open_project(target)
    table = Table(
        title=f"refactor-tool status: {escape(str(project.root))}", title_justify="left"
    )
    table.add_column("step")
    table.add_column("title")
    table.add_column("state")
    table.add_column("detail", overflow="fold")
    style = {
        "applied": "green",
        "pending": "yellow",
        "waiting": "cyan",
        "n/a": "dim",
        "error": "red",
        "applied, gate failed": "red",
    }
    applied = load_state(project.root).applied  # empty when there is no state
    # the first phase that is not applied yet: a later step with nothing to do may only be
    # waiting for it (phase 6 tidies what phase 1 has not removed yet)
    blocked_by: int | None = None
    for number in sorted(PHASES):
        phase = PHASES[number]
        states: dict[str, tuple[str, str]] = {}
        phase_error = None
        mechanical = [s for s in phase.steps if s.mechanical]
        whole = None
        try:
            with file_progress(rep, f"phase {number}:") as tick:
                analysis = phase.analyze(project)
                whole = run_phase(
                    project, phase, jobs=jobs, progress=tick, analysis=analysis
                )
                if not whole.changes:  # the phase is done: no need to ask step by step
                    for step in mechanical:
                        done = whole.candidates or (step.generates and not step.codemods)
                        states[step.id] = (
                            ("applied", "")
                            if done
                            else ("n/a", "nothing in the code for this step")
                        )
                for step in mechanical if whole.changes else []:
                    result = run_phase(
                        project,
                        phase,
                        [step.id],
                        jobs=jobs,
                        progress=tick,
                        analysis=analysis,
                    )
                    if result.changes:
                        files = ", ".join(c.path for c in result.changes[:3]) + (
                            " …" if len(result.changes) > 3 else ""
                        )
                        states[step.id] = ("pending", f"would change {files}")
                    elif result.candidates or (step.generates and not step.codemods):
                        states[step.id] = ("applied", "")
                    else:
                        states[step.id] = ("n/a", "nothing in the code for this step")
        except InputError as exc:
            if "cannot parse" in exc.message:
                raise
            phase_error = str(exc)
            states = {step.id: ("n/a", phase_error) for step in mechanical}
        if phase_error is None:
            # a step that finds nothing to do after a step or phase that is still to be
            # applied is waiting for it: its work may only appear once that one has run
            pending_step = None
            for step in mechanical:
                if step.id not in states:
                    continue
                state, detail = states[step.id]
                if state in ("applied", "n/a"):
                    before = None
                    if blocked_by is not None:
                        before = f"phase {blocked_by}"
                    elif pending_step is not None:
                        before = f"step {pending_step}"
                    if before is not None:
                        states[step.id] = (
                            "waiting",
                            f"{before} is not applied yet; nothing to do here until it is",
                        )
                elif state == "pending" and pending_step is None:
                    pending_step = step.id
        mech = [s for s, _ in states.values()]
        if "pending" in mech or (whole is not None and whole.changes):
            verdict = "pending"
        elif "waiting" in mech:
            verdict = "waiting"
        elif "applied" in mech:
            verdict = "applied"
        else:
            verdict = "n/a"
        if verdict in ("pending", "waiting") and blocked_by is None:
            blocked_by = number
        phase_detail = phase_error or ""
        # the code cannot tell a phase whose work left nothing for its codemods to find (phase
        # 4 removes the fixtures it works on) from one that never had anything to do: the run
        # state records the phases `apply` wrote, and their gate's verdict. What the code still
        # shows as pending or waiting stays so whatever the record says.
        record = applied.get(number)
        if record is not None and phase_error is None and verdict in ("applied", "n/a"):
            verdict, phase_detail = {
                GATE_PASSED: ("applied", ""),
                GATE_FAILED: ("applied, gate failed", f"gate failed: {record.reason}"),
                GATE_NOT_VERIFIED: ("applied", "gate not run: not verified"),
            }[record.gate]
            for step_id in record.steps:
                if states.get(step_id, ("",))[0] == "n/a":
                    states[step_id] = ("applied", "nothing left in the code for this step")
        table.add_row(
            f"[bold]{number}[/]",
            f"[bold]{escape(phase.title)}[/]",
            f"[{style[verdict]}]{verdict}[/]",
            escape(phase_detail),
        )
        for step in phase.steps:
            state, detail = states.get(
                step.id, (verdict, step.note or "procedural step")
            )
            table.add_row(
                f"  {step.id}",
                escape(step.title),
                f"[{style.get(state, '')}]{state}[/]",
                escape(detail),
            )
    rep.out.print(table)
    _layout_line(rep, project)
    return EXIT_OK


def _layout_line(rep: Reporter, project: Project) -> None:
    """What the run works with where it is not the plan's default, and where it came from."""
    config = project.config
    found = found_in_code(project.root)
    shown = [
        ("package", config.package),
        ("session module", config.session_module),
        ("base manager", config.base_manager_module),
        ("managers' package", config.core_package),
        ("session fixture", config.session_fixture),
        ("session-context fixture", config.session_context_fixture),
        ("smoke command", " ".join([config.script, *config.smoke_args])),
    ]
    keys = [
        ("package",), ("session_module", "database_manager_class"),
        ("base_manager_module", "base_manager_class"), ("core_package",),
        ("session_fixture",), ("session_context_fixture",), ("script", "smoke_args"),
    ]
    parts = [
        f"{label} {escape(value)}" + (" [dim](from the code)[/]" if any(k in found for k in key) else "")
        for (label, value), key in zip(shown, keys)
    ]
    rep.out.print("layout: " + "; ".join(parts))
    if found:
        rep.out.print(
            "[dim]what the code says stands where pyproject.toml's \\[tool.refactor-tool] is silent; "
            "a key set there wins[/]"
        )


@main.command(context_settings=CONTEXT, epilog=EPILOG)
@click.option(
    "--phase", type=int, metavar="N", required=True, help="The phase whose gate to run."
)
@_target_option
@_python_option
@_json_option
@_test_jobs_option
@click.option(
    "--new-baseline",
    is_flag=True,
    help="Discard the recorded baseline and take a new one first.",
)
def verify(
    phase: int,
    target: str | None,
    python: str | None,
    json_path: str | None,
    test_jobs: int | None,
    new_baseline: bool,
) -> None:
    """Run phase N's verification gate alone, against the recorded baseline."""
    _verify(phase, target, python, json_path, test_jobs, new_baseline)


@handle_errors
def _verify(
    rep: Reporter,
    phase: int,
    target: str | None,
    python: str | None,
    json_path: str | None,
    test_jobs: int | None,
    new_baseline: bool,
) -> int:
    if phase not in PHASES and phase not in range(1, 7):
        raise BadInput(
            f"<command line>: unknown phase {phase} (phases: {_phase_numbers()})"
        )
    project = open_project(target)
    py = resolve_python(project.root, python)
    baseline = get_baseline(
        rep, project, py, new=new_baseline, before_write=False, test_jobs=test_jobs
    )
    gate = gate_for(rep, project, phase, baseline, py, test_jobs=test_jobs)
    rep.gate(gate)
    state = load_state(project.root)
    if phase in state.applied:  # the verdict `status` shows for a phase `apply` wrote
        state.record_gate(phase, gate.ok, gate_reason(gate))
        save_state(project.root, state)
    if json_path:
        report = RunReport("verify", str(project.root), python=py)
        spec = PHASES.get(phase)
        record = PhaseRecord(
            phase,
            spec.title if spec else f"phase {phase}",
            [],
            gate=gate,
            status="verified" if gate.ok else "failed",
        )
        report.phases = [record]
        report.baseline = baseline.as_dict() | {"suite": None, "touches_db": None}
        report.exit_code = EXIT_OK if gate.ok else EXIT_FAILED
        report.write(Path(json_path))
    return EXIT_OK if gate.ok else EXIT_FAILED


def _check_parts(result: Any) -> tuple[str, bool, list[str]]:
    data = check_as_dict(result)
    name = str(
        data.get("title")
        or data.get("name")
        or data.get("description")
        or data.get("id")
        or "invariant"
    )
    if data.get("id") and data.get("id") != name:
        name = f"{data['id']}. {name}"
    failures = (
        data.get("failures", data.get("locations", data.get("problems", []))) or []
    )
    lines = []
    for item in failures:
        if isinstance(item, dict):
            where = item.get("path", "")
            if item.get("line"):
                where = f"{where}:{item['line']}"
            lines.append(f"{where}: {item.get('message', '')}".strip(": "))
        else:
            lines.append(str(item))
    if not data["ok"] and not lines and data.get("message"):
        lines.append(str(data["message"]))
    return name, bool(data["ok"]), lines


@main.command(context_settings=CONTEXT, epilog=EPILOG)
@_target_option
def check(target: str | None) -> None:
    """Check docs/end-state.md's end-state invariants; each failing one is shown with file:line.

    Exits 1 if any invariant fails: it fails on an untouched project and passes after
    `apply --all`, so it can guard CI against an incomplete migration.
    """
    _check(target)


@handle_errors
def _check(rep: Reporter, target: str | None) -> int:
    if importlib.util.find_spec(f"{__package__}.check") is None:
        raise BadInput(
            "`check` is not available in this installation (refactor_tool/check.py is missing)"
        )
    run_checks = importlib.import_module(f"{__package__}.check").run_checks
    project = open_project(target)
    results = run_checks(project)
    failed = 0
    for result in results:
        name, ok, lines = _check_parts(result)
        mark = "[green]✓[/]" if ok else "[red]✗[/]"
        rep.out.print(f"{mark} {escape(name)}")
        if not ok:
            failed += 1
            for line in lines:
                rep.out.print(f"    {escape(line)}", soft_wrap=True)
    if failed:
        rep.out.print(f"[bold red]{failed} of {len(results)} invariant(s) fail[/]")
        return EXIT_FAILED
    rep.out.print(f"[bold green]all {len(results)} invariants hold[/]")
    return EXIT_OK


def own_command() -> str:
    """How to run this tool again from the current directory: ``refactor-tool`` when that
    name on PATH is this installation, else the path of the script (a virtualenv not
    activated, say), else ``python -m refactor_tool``."""
    name = "refactor-tool"
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    on_path = shutil.which(name)
    if argv0 is not None and argv0.name == name and argv0.exists():
        if on_path and Path(on_path).resolve() == argv0.resolve():
            return name
        return shlex.quote(os.path.relpath(argv0) if not argv0.is_absolute() else str(argv0))
    if on_path and Path(on_path).parent == Path(sys.executable).parent:
        return name
    return f"{shlex.quote(sys.executable)} -m refactor_tool"


def bundled_target() -> Path:
    import refactor_tool

    return Path(refactor_tool.__file__).resolve().parent.parent / "target_project"


@main.command(context_settings=CONTEXT, epilog=EPILOG)
@_python_option
@_jobs_option
@_test_jobs_option
@click.option(
    "--dest",
    metavar="DIR",
    default=None,
    help="Where to put the copy (default: a new temporary directory).",
)
@click.option("--no-diff", is_flag=True, help="Do not print the diffs.")
def demo(
    python: str | None, jobs: int, test_jobs: int | None, dest: str | None, no_diff: bool
) -> None:
    """Copy the bundled target_project/ to a scratch git repo and run `apply --all --commit` there."""
    _demo(python, jobs, test_jobs, dest, no_diff)


@handle_errors
def _demo(
    rep: Reporter,
    python: str | None,
    jobs: int,
    test_jobs: int | None,
    dest: str | None,
    no_diff: bool,
) -> int:
    source = bundled_target()
    if not (source / "pyproject.toml").is_file():
        raise BadInput(
            f"{source}: the bundled target_project/ is not here (the demo needs a source checkout of "
            "refactor-tool: git clone it and `pip install -e '.[test]'`)"
        )
    if not gitops.git_available():
        raise BadInput(
            "git: not found on PATH; the demo commits each phase and needs git"
        )
    if dest:
        workdir = Path(dest).resolve()
        if workdir.exists() and any(workdir.iterdir()):
            raise BadInput(f"{workdir}: --dest must be a new or empty directory")
        workdir.parent.mkdir(parents=True, exist_ok=True)
        if workdir.exists():
            workdir.rmdir()
    else:
        workdir = (
            Path(tempfile.mkdtemp(prefix="refactor-tool-demo-")) / "target_project"
        )
    shutil.copytree(
        source,
        workdir,
        ignore=shutil.ignore_patterns(
            "__pycache__",
            ".pytest_cache",
            "*.pyc",
            ".refactor-tool",
            "*.db",
            "*.egg-info",
        ),
    )
    gitops.init_and_commit(workdir, "target_project before the refactoring")
    rep.info(
        f"demo: copied the bundled target_project/ to [bold]{escape(str(workdir))}[/] and committed it"
    )
    project = open_project(str(workdir))
    selection = [(PHASES[n], None) for n in sorted(PHASES)]
    opts = ApplyOptions(
        commit=True,
        jobs=jobs,
        test_jobs=test_jobs,
        python=python,
        show_diff=not no_diff,
        command="demo",
    )
    code = run_apply(rep, project, selection, opts)
    rep.out.print(Rule("[bold]demo result[/]", align="left"))
    for line in gitops.log_oneline(workdir, len(selection) + 1):
        rep.out.print(f"  {escape(line)}")
    rep.out.print(
        f"the refactored project is in [bold]{escape(str(workdir))}[/]; look at it with"
    )
    rep.out.print(f"  git -C {escape(str(workdir))} log --stat")
    tool = own_command()
    rep.out.print(f"  {escape(tool)} status --target {escape(str(workdir))}")
    if code == EXIT_OK:
        rep.out.print(f"  {escape(tool)} check --target {escape(str(workdir))}")
    return code


if __name__ == "__main__":  # pragma: no cover
    main(prog_name="refactor-tool")
