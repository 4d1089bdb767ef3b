"""Does the cost per line stay flat as the project grows, and does ``--jobs`` use the cores?

Builds two trees from the bundled target:

* **1x**: a copy of the target as it is;
* **20x**: the same project grown to 20 times its lines the way real projects grow: more test
  modules, more CLI commands, more models and helpers. Every module that is not one of a
  kind (test modules, CLI modules, models, utilities, integrations) is copied under renamed
  names (``test_game.py`` -> ``test_game_c07.py``) until the tree has 20 times the lines.
  The one-of-a-kind modules docs/plan.md rewrites in phases 1-4 (session module, base manager,
  manager modules, conftests, package ``__init__``\\ s) stay single: a second
  ``GameManager`` would be a different project, not a bigger one. The copies are real
  candidates: copied test modules use the shared fixtures (phase 5 rewrites every one),
  copied CLI modules build managers (phase 2 updates those calls), copied models are read
  by the analyses.

Each measurement runs in a fresh subprocess (cold caches, its own peak memory): the work of
``apply --all --dry-run --no-verify`` (the CLI's ``compute``, as in ``bench/throughput.py``),
timed from after the imports. Reported: wall and CPU time (CPU includes worker processes),
peak resident memory (ru_maxrss of the process and its workers), cost per 1000 lines, and the
20x run with ``--jobs 1`` against ``--jobs N`` (default: the CPU count).

    python bench/scale.py [--factor 20] [--jobs N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "target_project"
IGNORE = shutil.ignore_patterns(
    "__pycache__", ".pytest_cache", "*.pyc", "*.db", ".venv"
)
# directories whose modules a bigger project has more of (relative to the package)
GROWS = ("cli", "cli/tests", "core/tests", "models", "utils", "integrations")
ONE_OF_A_KIND = ("__init__.py", "__main__.py", "conftest.py")


def lines_of(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*.py") if "__pycache__" not in p.parts]
    return len(files), sum(len(p.read_bytes().splitlines()) for p in files)


def growable(root: Path, package: str) -> list[Path]:
    out = []
    for directory in GROWS:
        for path in sorted((root / package / directory).glob("*.py")):
            if path.name not in ONE_OF_A_KIND:
                out.append(path)
    return out


def build(dest: Path, factor: int, package: str = "sologm") -> tuple[int, int, int]:
    """Copy the target to ``dest`` and grow it to ``factor`` times its lines."""
    shutil.copytree(TARGET, dest, ignore=IGNORE)
    _, base_lines = lines_of(dest)
    sources = growable(dest, package)
    source_lines = sum(len(p.read_bytes().splitlines()) for p in sources)
    copies = 0
    if factor > 1:
        copies = math.ceil((factor - 1) * base_lines / source_lines)
        for n in range(1, copies + 1):
            for path in sources:
                path.with_name(f"{path.stem}_c{n:02d}.py").write_bytes(
                    path.read_bytes()
                )
    files, total = lines_of(dest)
    return files, total, copies


# ------------------------------------------------------------------------ the measured worker


def worker(root: Path, jobs: int) -> None:
    """Runs in a fresh interpreter: the in-memory work of ``apply --all --dry-run --no-verify``."""
    sys.path.insert(0, str(REPO))
    from refactor_tool.cli import compute
    from refactor_tool.phases import PHASES
    from refactor_tool.model.project import Project
    from refactor_tool.report import Reporter

    def cpu() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    project = Project(root)
    selection = [(PHASES[n], None) for n in sorted(PHASES)]
    wall, cpu0 = time.perf_counter(), cpu()
    records = compute(Reporter(), project, selection, jobs)
    result = {
        "wall": time.perf_counter() - wall,
        "cpu": cpu() - cpu0,
        "changed": len({c.path for r in records for c in r.changes}),
        "notes": sum(len(r.notes) for r in records),
        "parses": project.parse_count,
        "maxrss_kb": max(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        ),
    }
    print(json.dumps(result))


def measure(root: Path, jobs: int, repeat: int) -> dict:
    best: dict | None = None
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--worker", str(root), "--jobs", str(jobs)],
            check=False,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        if out.returncode != 0:
            raise SystemExit(f"worker failed on {root}:\n{out.stderr[-3000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if best is None or result["wall"] < best["wall"]:
            best = result
    assert best is not None
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--factor", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per measurement; the fastest counts"
    )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.jobs)
        return 0

    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        small, big = Path(tmp) / "x1", Path(tmp) / f"x{args.factor}"
        f1, l1, _ = build(small, 1)
        fn, ln, copies = build(big, args.factor)
        print(f"1x:  {f1} files, {l1} lines")
        print(
            f"{args.factor}x: {fn} files, {ln} lines ({ln / l1:.1f}x; {copies} renamed copies of each growable module)"
        )
        rows = [
            ("1x", l1, 1, measure(small, 1, args.repeat)),
            (f"{args.factor}x", ln, 1, measure(big, 1, args.repeat)),
        ]
        if args.jobs > 1:
            rows.append(
                (f"{args.factor}x", ln, args.jobs, measure(big, args.jobs, args.repeat))
            )

    print(
        f"{'tree':>5} {'jobs':>4} {'wall s':>8} {'cpu s':>8} {'ms/kline':>9} {'peak MB':>8} {'changed':>8} {'parses':>7}"
    )
    for name, lines, jobs, r in rows:
        print(
            f"{name:>5} {jobs:>4} {r['wall']:8.2f} {r['cpu']:8.2f} {1000 * r['wall'] / (lines / 1000):9.1f} "
            f"{r['maxrss_kb'] / 1024:8.1f} {r['changed']:8d} {r['parses']:7d}"
        )
    one, big1 = rows[0][3], rows[1][3]
    per_line_1 = one["cpu"] / l1
    per_line_n = big1["cpu"] / ln
    print(
        f"cpu cost per line, {args.factor}x / 1x: {per_line_n / per_line_1:.2f} (flat is 1.00)"
    )
    print(
        f"peak memory, {args.factor}x / 1x: {big1['maxrss_kb'] / one['maxrss_kb']:.2f}"
    )
    if len(rows) > 2:
        par = rows[2][3]
        print(
            f"--jobs {args.jobs} vs --jobs 1 at {args.factor}x: {big1['wall'] / par['wall']:.2f}x faster "
            f"(ideal {args.jobs:.2f}x; cpu {par['cpu']:.1f} s vs {big1['cpu']:.1f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
