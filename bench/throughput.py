"""How much the codemod work of a whole run costs, against one plain libcst pass.

On a fresh copy of the bundled target this measures, in one process:

* **run**: the in-memory work of ``refactor-tool apply --all --dry-run --no-verify`` (the
  CLI's own ``compute``: every phase's analysis, file selection, parse check, codemods, generated
  files and post-processing, each phase on the previous one's output), starting from a cold
  parse cache every repetition (a new ``Project``): each repetition costs what a fresh
  process pays;
* **pass**: one ``libcst.parse_module`` + ``.code`` of every ``.py`` file of the same copy.

Each is repeated (``--repeat``, default 5) and the minimum is kept. Both run on one core
(``--jobs 1``): the ratio compares work, not parallelism. CPU time includes child processes
(a phase may run a formatter). The last line is ``ratio X.XX`` (run / pass, wall clock);
the goal is X < 2.0. Each phase's time is split into its analysis (the model of the target
the phase reads, which for phase 5 includes planning every test's rewrite) and the work on
its files (parsing, the step codemods, printing, the formatter); the sums of both parts are
printed as multiples of the pass.

    python bench/throughput.py [--repeat N] [--target DIR] [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import libcst as cst

from refactor_tool.phases import PHASES
from refactor_tool.model.project import Project

TARGET = REPO / "target_project"
IGNORE = shutil.ignore_patterns(
    "__pycache__", ".pytest_cache", "*.pyc", "*.db", ".venv"
)


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(func: Callable[[], Any]) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    value = func()
    return time.perf_counter() - wall, cpu_seconds() - cpu, value


def plain_pass(root: Path, files: list[str]) -> int:
    """One parse + print of every file (the yardstick); returns the lines handled."""
    lines = 0
    for rel in files:
        source = (root / rel).read_bytes()
        lines += len(cst.parse_module(source).code.splitlines())
    return lines


def whole_run(root: Path, jobs: int = 1) -> dict[str, Any]:
    """The work of ``apply --all --dry-run --no-verify`` on ``root`` (nothing is written)."""
    from refactor_tool.cli import compute
    from refactor_tool.report import Reporter

    project = Project(root)
    selection = [(PHASES[n], None) for n in sorted(PHASES)]
    per_phase: list[tuple[int, float]] = []
    records = []
    parsed_before = 0
    for phase, steps in selection:
        start = time.perf_counter()
        [record] = compute(Reporter(), project, [(phase, steps)], jobs)
        records.append(record)
        per_phase.append(
            (
                phase.number,
                time.perf_counter() - start,
                project.parse_count - parsed_before,
                record.seconds,
            )
        )
        parsed_before = project.parse_count
    # a summary only: the records hold every changed file's tree, and keeping them from
    # one repetition to the next would leave the pass parsing beside a heap of dead trees
    return {
        "per_phase": per_phase,
        "parses": project.parse_count,
        "changed": len({c.path for r in records for c in r.changes}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--target", type=Path, default=TARGET)
    parser.add_argument(
        "--jobs", type=int, default=1, help="processes for the run (default 1)"
    )
    parser.add_argument(
        "--profile", type=Path, help="write a cProfile of one run to FILE"
    )
    args = parser.parse_args(argv)
    if not PHASES:
        print("no phase is installed")
        return 1

    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        root = Path(tmp) / "target"
        shutil.copytree(args.target, root, ignore=IGNORE)
        files = Project(root).python_files()
        size = sum(len((root / f).read_bytes().splitlines()) for f in files)
        print(
            f"target copy: {len(files)} .py files, {size} lines; phases {', '.join(map(str, sorted(PHASES)))}"
        )

        whole_run(root, args.jobs)  # warm up imports (phases, the CLI, libcst's parser)
        runs, passes = [], []
        for _ in range(args.repeat):
            passes.append(timed(lambda: plain_pass(root, files)))
            runs.append(timed(lambda: whole_run(root, args.jobs)))
        run_wall, run_cpu, info = min(runs, key=lambda r: r[0])
        pass_wall, pass_cpu, _ = min(passes, key=lambda r: r[0])
        pass_cpu = min(p[1] for p in passes)
        run_cpu = min(r[1] for r in runs)

        if args.profile:
            cProfile.runctx(
                "whole_run(root, args.jobs)",
                globals(),
                {"root": root, "args": args},
                str(args.profile),
            )
            print(f"profile of one run: {args.profile}")

    for number, seconds, parses, split in info["per_phase"]:
        print(
            f"  phase {number}: {seconds * 1000:7.1f} ms (analysis {split['analysis'] * 1000:6.1f}, "
            f"files {split['files'] * 1000:6.1f}), {parses} file(s) parsed"
        )
    for part in ("analysis", "files"):
        spent = sum(split[part] for *_, split in info["per_phase"])
        print(f"  {part:8}: {spent * 1000:7.1f} ms, {spent / pass_wall:.2f}x the pass")
    distinct = info["parses"]
    print(
        f"run  (apply --all --dry-run --no-verify, jobs {args.jobs}): {run_wall * 1000:7.1f} ms wall, "
        f"{run_cpu * 1000:7.1f} ms CPU; {distinct} parses, {info['changed']} files changed"
    )
    print(
        f"pass (parse + print of all {len(files)} files):   {pass_wall * 1000:7.1f} ms wall, {pass_cpu * 1000:7.1f} ms CPU"
    )
    print(f"min of {args.repeat} repetitions each; cpu ratio {run_cpu / pass_cpu:.2f}")
    print(f"ratio {run_wall / pass_wall:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
