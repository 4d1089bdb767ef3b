"""What ``refactor-tool apply --all --commit`` costs, in runs of the target's own suite.

On fresh copies of the bundled target (each a new git repository with one commit):

* **bare**: ``python -m pytest -q`` in the copy, as its developers run it: one process, with
  Python's usual bytecode cache (``__pycache__`` in that copy; a first untimed run fills it,
  then ``--repeat`` timed runs, the median is kept);
* **apply**: ``python -m refactor_tool apply --all --commit --target COPY`` in a new process:
  the codemods, the baseline and every phase's gate (with ``--test-jobs``, default: the CPU
  count), the commits.

The last line is ``ratio X.XX`` (apply / bare, wall clock); the goal on a 2-core machine is
X <= 4.0. Before it, per gate: how its suite ran (or why the previous run stood for it) and
how long the gate took.

    python bench/end_to_end.py [--repeat N] [--test-jobs N] [--python PY] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "target_project"
IGNORE = shutil.ignore_patterns(
    "__pycache__", ".pytest_cache", "*.pyc", "*.db", ".venv", ".refactor-tool", "*.egg-info"
)


def fresh_copy(parent: Path, name: str) -> Path:
    root = parent / name
    shutil.copytree(TARGET, root, ignore=IGNORE)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "start"], cwd=root, check=True)
    return root


def environment() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST"):
        env.pop(name, None)
    return env


def bare_run(root: Path, python: str) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        [python, "-m", "pytest", "-q"],
        cwd=root,
        env=environment(),
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"the bare pytest run failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed bare runs (median kept)")
    parser.add_argument("--test-jobs", type=int, default=None)
    parser.add_argument("--python", default=sys.executable, help="the target's interpreter")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="refactor-tool-e2e-"))
    try:
        bare_root = fresh_copy(scratch, "bare")
        bare_run(bare_root, args.python)  # fills the bytecode cache, as a developer's has it
        bares = [bare_run(bare_root, args.python) for _ in range(max(1, args.repeat))]
        bare = statistics.median(bares)
        print(f"bare pytest run: {bare:.2f} s (median of {', '.join(f'{b:.2f}' for b in bares)})")

        apply_root = fresh_copy(scratch, "apply")
        report = scratch / "report.json"
        command = [
            sys.executable,
            "-m",
            "refactor_tool",
            "apply",
            "--all",
            "--commit",
            "--target",
            str(apply_root),
            "--python",
            args.python,
            "--json",
            str(report),
        ]
        if args.test_jobs:
            command += ["--test-jobs", str(args.test_jobs)]
        started = time.perf_counter()
        proc = subprocess.run(
            command,
            cwd=REPO,
            env=dict(environment(), COLUMNS="200"),
            capture_output=True,
            text=True,
        )
        applied = time.perf_counter() - started
        if proc.returncode != 0:
            sys.exit(
                f"apply --all failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n"
                f"{proc.stderr[-2000:]}"
            )
        data = json.loads(report.read_text())
        baseline = data.get("baseline") or {}
        print(f"baseline: {baseline.get('test_count')} tests, {baseline.get('run', '?')}")
        for phase in data["phases"]:
            gate = phase.get("gate") or {}
            how = gate.get("reused") or gate.get("run") or "-"
            print(
                f"phase {phase['phase']}: gate {gate.get('verdict', '-')} in "
                f"{gate.get('duration', 0):.2f} s ({how})"
            )
        print(f"apply --all --commit: {applied:.2f} s (test jobs: {args.test_jobs or os.cpu_count()})")
        print(f"ratio {applied / bare:.2f}")
    finally:
        if args.keep:
            print(f"scratch copies kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
