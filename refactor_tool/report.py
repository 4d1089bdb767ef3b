"""What the tool shows and records: rich tables and diffs for people, JSON for machines.

Two consoles: ``out`` (stdout) and ``err`` (stderr). In a terminal, diffs are highlighted with
rich; when stdout is not a terminal a ``--dry-run`` diff is written to stdout byte for byte, so
it can be piped into ``git apply``, and everything else goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.syntax import Syntax
from rich.table import Table

from codemods.base import Note

from .model.changes import FileChange
from .gates import GateResult, SuiteProgress

#: seconds between two plain progress lines when stderr is not a terminal
PLAIN_PROGRESS_EVERY = 5.0

JUDGEMENT_STYLE = {
    "expected": "yellow",
    "accepted": "yellow",
    "pre-existing": "dim",
    "fixed": "green",
    "unexpected": "bold red",
    "regression": "bold red",
    "order-dependent": "magenta",
    "reported": "yellow",
}


def _width() -> int | None:
    # rich uses 80 columns when it cannot ask a terminal; logs and CI read better wider
    if "COLUMNS" in os.environ:
        return None
    return None if sys.stdout.isatty() else 120


class Reporter:
    def __init__(self, *, quiet: bool = False) -> None:
        self.out = Console(width=_width(), highlight=False)
        self.err = Console(stderr=True, width=_width(), highlight=False)
        self.quiet = quiet
        self.wrote = False  # set once anything was written to the target

    @property
    def stdout_is_terminal(self) -> bool:
        return sys.stdout.isatty()

    # ------------------------------------------------------------------ messages
    def info(self, message: str, *, to_err: bool = False) -> None:
        (self.err if to_err else self.out).print(message)

    def error(self, message: str) -> None:
        self.err.print(f"[bold red]error:[/] {escape(message)}")

    def warn(self, message: str, *, to_err: bool = True) -> None:
        (self.err if to_err else self.out).print(
            f"[yellow]warning:[/] {escape(message)}"
        )

    # ------------------------------------------------------------------ diffs
    def diff(
        self, changes: Sequence[FileChange], *, plain_stdout: bool | None = None
    ) -> None:
        """Show a diff: highlighted in a terminal; the exact patch text otherwise."""
        text = "".join(c.diff() for c in changes)
        if not text:
            return
        plain = (not self.stdout_is_terminal) if plain_stdout is None else plain_stdout
        if plain:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            self.out.print(
                Syntax(
                    text,
                    "diff",
                    theme="ansi_dark",
                    background_color="default",
                    word_wrap=False,
                )
            )

    def changed_files(
        self, changes: Sequence[FileChange], *, to_err: bool = False
    ) -> None:
        console = self.err if to_err else self.out
        for change in changes:
            added, removed = diffstat(change)
            mark = {
                "create": "[green]new[/]",
                "delete": "[red]deleted[/]",
                "modify": "changed",
            }[change.kind]
            console.print(
                f"  {mark} {escape(change.path)}  [green]+{added}[/] [red]-{removed}[/]"
            )

    def notes(self, notes: Sequence[Note], *, to_err: bool = False) -> None:
        if not notes:
            return
        console = self.err if to_err else self.out
        console.print(f"[bold yellow]{len(notes)} manual-attention item(s):[/]")
        for note in notes:
            console.print(
                f"  {escape(str(note))}  [dim]({escape(note.step)})[/]", soft_wrap=True
            )

    # ------------------------------------------------------------------ suite progress
    @contextmanager
    def gate_progress(
        self, text: str
    ) -> Iterator[tuple[Callable[[str], None], Callable[[str, SuiteProgress], None]]]:
        """What a gate (or the baseline) is doing, and the target's suite while it runs.

        Yields ``(step, suite)``: ``step(message)`` says what runs now; ``suite(label, state)``
        shows one run of the suite (a gate's, the baseline's, tests run again alone): tests
        done of collected, failures so far, elapsed time. In a terminal: a spinner and a live
        rich bar per run on stderr, gone once the gate ends; otherwise plain lines on stderr, a
        suite's every few seconds and when it ends. Nothing of it goes to stdout or ``--json``.
        """
        if self.err.is_terminal:
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                console=self.err,
                transient=True,
            ) as progress:
                step_task = progress.add_task(escape(text), total=None, counts="")
                tasks: dict[str, TaskID] = {}

                def step(message: str) -> None:
                    progress.update(step_task, description=escape(message))

                def suite(label: str, state: SuiteProgress) -> None:
                    counts = _counts(state)
                    if label not in tasks:
                        tasks[label] = progress.add_task(
                            f"  {escape(label)}: tests", total=state.collected, counts=counts
                        )
                    progress.update(
                        tasks[label], completed=state.done, total=state.collected, counts=counts
                    )

                yield step, suite
            return
        last: dict[str, float] = {}
        self.err.print(f"[dim]{escape(text)}[/]")

        def plain_step(message: str) -> None:
            self.err.print(f"[dim]{escape(message)}[/]")

        def plain_suite(label: str, state: SuiteProgress) -> None:
            now = time.monotonic()
            if not state.finished and now - last.setdefault(label, now) < PLAIN_PROGRESS_EVERY:
                return
            last[label] = now
            verb = "done" if state.finished else "running"
            self.err.print(
                f"[dim]{escape(label)}: tests {verb}: {_counts(state)}, {state.elapsed:.1f} s[/]"
            )

        yield plain_step, plain_suite

    # ------------------------------------------------------------------ gates
    def gate(self, gate: GateResult, *, to_err: bool = False) -> None:
        console = self.err if to_err else self.out
        table = Table(
            title=f"Phase {gate.phase} gate: {escape(gate.title)}",
            title_justify="left",
        )
        table.add_column("outcome / failure kind")
        table.add_column("baseline", justify="right")
        table.add_column("now", justify="right")
        table.add_column("change", justify="right")
        for state, before, now in gate.rows:
            delta = now - before
            style = ""
            if state not in ("passed", "skipped", "total") and delta > 0:
                style = "yellow"
            if state == "passed" and delta < 0:
                style = "yellow"
            table.add_row(
                state,
                str(before),
                str(now),
                f"[{style}]{delta:+d}[/]" if style else f"{delta:+d}",
            )
        console.print(table)
        console.print(f"[dim]expectation: {escape(gate.expectation)}[/]")
        if gate.run:
            console.print(f"[dim]suite: {escape(gate.run)}[/]")
        self.changed_tests(gate, console)

        for command in gate.commands:
            style = {"ok": "green", "failed": "red", "skipped": "yellow"}[
                command.status
            ]
            console.print(
                f"  {command.name}: [{style}]{command.status}[/] {escape(command.message)}"
            )
            if command.status == "failed" and command.output:
                console.print(escape(_indent(command.output)), style="dim")
        if gate.checks:
            failing = [c for c in gate.checks if not c.get("ok")]
            if not failing:
                console.print(
                    f"  check: [green]ok[/] all {len(gate.checks)} end-state invariants hold"
                )
            for check in failing:
                name = (
                    check.get("title")
                    or check.get("name")
                    or check.get("id")
                    or "invariant"
                )
                console.print(f"  check: [red]failed[/] {escape(str(name))}")
                for failure in (check.get("failures") or [])[:5]:
                    if isinstance(failure, dict):
                        where = failure.get("path", "") + (
                            f":{failure['line']}" if failure.get("line") else ""
                        )
                        console.print(
                            f"    {escape(where)}: {escape(str(failure.get('message', '')))}",
                            soft_wrap=True,
                        )
                    else:
                        console.print(f"    {escape(str(failure))}", soft_wrap=True)
        for message in gate.messages:
            console.print(f"  {escape(message)}")
        for problem in gate.problems:
            console.print(f"  [bold red]✗[/] {escape(problem)}")
        verdict = "[bold green]as expected[/]" if gate.ok else "[bold red]FAILED[/]"
        console.print(
            f"Phase {gate.phase} verdict: {verdict} [dim]({gate.duration:.1f} s)[/]\n"
        )

    def changed_tests(
        self, gate: GateResult, console: Console, limit: int = 30
    ) -> None:
        """Tests that changed state: the bad and the fixed one by one, the expected grouped."""
        singles = sorted(
            (
                c
                for c in gate.changes
                if c.bad or c.judgement in ("fixed", "order-dependent")
            ),
            key=lambda c: (not c.bad, c.id),
        )
        groups: dict[tuple[str, str, str, str], list[str]] = {}
        for change in gate.changes:
            if not change.bad and change.judgement not in ("fixed", "order-dependent"):
                key = (change.judgement, change.before, change.after, change.message)
                groups.setdefault(key, []).append(change.id)
        if not singles and not groups:
            return
        table = Table(title="tests that changed state", title_justify="left")
        table.add_column("test", overflow="fold", ratio=3)
        table.add_column("baseline")
        table.add_column("now")
        table.add_column("judgement")
        table.add_column("detail", overflow="fold", ratio=2)
        for change in singles[:limit]:
            style = JUDGEMENT_STYLE.get(change.judgement, "")
            table.add_row(
                escape(change.id),
                change.before,
                change.after,
                f"[{style}]{change.judgement}[/]",
                escape(change.message),
            )
        order = {"accepted": 0, "expected": 1, "pre-existing": 2}
        for (judgement, before, after, message), ids in sorted(
            groups.items(), key=lambda kv: (order.get(kv[0][0], 9), -len(kv[1]))
        ):
            style = JUDGEMENT_STYLE.get(judgement, "")
            label = (
                escape(ids[0])
                if len(ids) == 1
                else f"{len(ids)} tests, e.g. {escape(ids[0])}"
            )
            table.add_row(
                label, before, after, f"[{style}]{judgement}[/]", escape(message)
            )
        console.print(table)
        if len(singles) > limit:
            console.print(
                f"  … and {len(singles) - limit} more (all of them are in the --json report)"
            )


def _counts(state: SuiteProgress) -> str:
    total = "?" if state.collected is None else str(state.collected)
    failed = f"{state.failed} failed"
    return f"{state.done}/{total} tests, {failed}"


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def diffstat(change: FileChange) -> tuple[int, int]:
    added = removed = 0
    for line in change.diff().splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed


# ---------------------------------------------------------------------------- JSON report


@dataclass
class PhaseRecord:
    number: int
    title: str
    steps: list[str]
    changes: list[FileChange] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    written: bool = False
    commit: str | None = None
    gate: GateResult | None = None
    status: str = "computed"  # computed | written | verified | failed | skipped
    #: where computing the phase spent its time, in seconds: ``analysis`` (the phase's
    #: model of the target) and ``files`` (parsing, the step codemods, printing and
    #: post-processing of the files it changes)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.number,
            "title": self.title,
            "steps": self.steps,
            "status": self.status,
            "written": self.written,
            "commit": self.commit,
            "files_changed": [
                {
                    "path": c.path,
                    "change": c.kind,
                    "added": diffstat(c)[0],
                    "removed": diffstat(c)[1],
                }
                for c in self.changes
            ],
            "diff": "".join(c.diff() for c in self.changes),
            "manual_attention": [n.as_dict() | {"text": str(n)} for n in self.notes],
            "gate": self.gate.as_dict() if self.gate else None,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


@dataclass
class RunReport:
    command: str
    target: str
    dry_run: bool = False
    verify: bool = True
    python: str | None = None
    phases: list[PhaseRecord] = field(default_factory=list)
    baseline: dict[str, Any] | None = None
    exit_code: int = 0
    messages: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        files = sorted({c.path for p in self.phases for c in p.changes})
        return {
            "tool": "refactor-tool",
            "version": _version(),
            "command": self.command,
            "target": self.target,
            "dry_run": self.dry_run,
            "verify": self.verify,
            "python": self.python,
            "exit_code": self.exit_code,
            "files_changed": files,
            "manual_attention_count": sum(len(p.notes) for p in self.phases),
            "baseline": self.baseline,
            "phases": [p.as_dict() for p in self.phases],
            "messages": self.messages,
        }

    def write(self, path: Path) -> None:
        path = Path(path)
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("refactor-tool")
    except Exception:  # noqa: BLE001 - not installed (run from a checkout)
        return "unknown"


def summary_line(
    changes: Iterable[FileChange], notes: Iterable[Note], *, dry_run: bool
) -> str:
    changes = list(changes)
    notes = list(notes)
    verb = "would change" if dry_run else "changed"
    created = sum(1 for c in changes if c.kind == "create")
    deleted = sum(1 for c in changes if c.kind == "delete")
    extra = []
    if created:
        extra.append(f"{created} new")
    if deleted:
        extra.append(f"{deleted} deleted")
    more = f" ({', '.join(extra)})" if extra else ""
    return f"{verb} {len(changes)} file{'s' if len(changes) != 1 else ''}{more}, {len(notes)} manual-attention item{'s' if len(notes) != 1 else ''}"
