"""How much the rewritten test modules grow, in lines.

On a copy of the bundled target (or ``--target DIR``), ``apply --all --dry-run --no-verify``
is computed in memory (the CLI's ``compute``, as ``bench/throughput.py`` does) and every test
module the run changes is counted before and after: non-blank lines, and all lines. The
helper fixtures phase 5 writes into conftests for several modules at once are counted apart
(the non-blank lines phase 5 adds to the conftests), with the growth they would make if they
were counted with the modules. The last line is ``growth X.XX`` (non-blank lines after /
before, over all changed test modules); the goal for the bundled target's short tests is
X <= 1.6 (real modules of this shape, rewritten by hand, grew 1.19x).

    python bench/line_growth.py [--target DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from refactor_tool.cli import combined_changes, compute  # noqa: E402
from refactor_tool.model.fixtures import is_test_module  # noqa: E402
from refactor_tool.model.project import Project  # noqa: E402
from refactor_tool.phases import PHASES  # noqa: E402
from refactor_tool.report import Reporter  # noqa: E402

TARGET = REPO / "target_project"
IGNORE = shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc", "*.db", ".venv")


def _lines(data: bytes | None) -> tuple[int, int]:
    text = (data or b"").decode("utf-8", "replace").splitlines()
    return sum(1 for line in text if line.strip()), len(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=Path, default=TARGET)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="growth-") as tmp:
        root = Path(tmp) / "target"
        shutil.copytree(args.target, root, ignore=IGNORE)
        project = Project(root)
        selection = [(PHASES[n], None) for n in sorted(PHASES)]
        records = compute(Reporter(quiet=True), project, selection, 1)
        before_total = after_total = 0
        print(f"{'test module':48s} {'before':>7s} {'after':>7s} {'growth':>7s}  (non-blank lines)")
        for change in combined_changes(records):
            if change.old is None or not is_test_module(project, change.path):
                continue
            before, _ = _lines(change.old)
            after, _ = _lines(change.new)
            before_total += before
            after_total += after
            print(f"{change.path:48s} {before:7d} {after:7d} {after / max(before, 1):7.2f}")
        if not before_total:
            print("no test module changed")
            return 1
        print(f"{'all changed test modules':48s} {before_total:7d} {after_total:7d}")
        shared = 0  # what phase 5 adds to the conftests: helpers several modules share
        for record in records:
            if record.number != 5:
                continue
            for change in record.changes:
                if change.old is not None and not is_test_module(project, change.path):
                    shared += _lines(change.new)[0] - _lines(change.old)[0]
        if shared:
            print(
                f"{'conftest lines phase 5 adds (shared helpers)':48s} {'':7s} {shared:7d}"
                f"   with them: {(after_total + shared) / before_total:.2f}"
            )
        print(f"growth {after_total / before_total:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
