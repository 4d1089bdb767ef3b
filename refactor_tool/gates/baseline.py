"""The baseline (the suite and the smoke command before the tool wrote anything) and the last
run of the suite a gate took, kept in ``.refactor-tool/`` next to the target.

The baseline records how the suite ran (one process, pytest-xdist or the split by module, and
over how many processes): the gates run the suite the same way, so like is compared with like.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..model.fixtures import is_test_module
from ..model.imports import third_party_modules
from ..model.project import Project
from .commands import CommandResult, run_smoke
from .dbusage import DbMap, analyze_db_usage
from .results import SuiteRun
from .runner import ProgressCallback, run_suite

BASELINE_FILE = "baseline.json"
LAST_RUN_FILE = "last-run.json"
BASELINE_VERSION = 2


@dataclass
class Baseline:
    suite: SuiteRun
    smoke: CommandResult
    db_fixtures: list[str]
    touches_db: dict[str, bool]
    taken_at: str
    tree: str
    python: str

    @property
    def db_map(self) -> DbMap:
        return DbMap(set(self.db_fixtures), dict(self.touches_db))

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": BASELINE_VERSION,
            "taken_at": self.taken_at,
            "tree": self.tree,
            "python": self.python,
            "run": self.suite.how,
            "test_count": len(self.suite.tests),
            "counts": self.suite.counts(),
            "smoke": asdict(self.smoke),
            "db_fixtures": sorted(self.db_fixtures),
            "touches_db": dict(sorted(self.touches_db.items())),
            "suite": self.suite.as_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Baseline:
        return cls(
            suite=SuiteRun.from_dict(data["suite"]),
            smoke=CommandResult(**data["smoke"]),
            db_fixtures=list(data.get("db_fixtures", [])),
            touches_db=dict(data.get("touches_db", {})),
            taken_at=data.get("taken_at", ""),
            tree=data.get("tree", ""),
            python=data.get("python", ""),
        )


def baseline_path(root: Path) -> Path:
    return Path(root) / Project.STATE_DIR / BASELINE_FILE


def tree_hash(
    project: Project, before: Mapping[str, bytes | None] | None = None
) -> str:
    """A hash of every Python file of the target (what a run was taken on).

    ``before``: path -> content (``None``: absent) to hash instead of what is on disk, e.g. a
    phase's files as they were before it was written.
    """
    before = dict(before or {})
    files = set(project.python_files())
    for rel, data in before.items():
        if rel.endswith(".py"):
            if data is None:
                files.discard(rel)
            else:
                files.add(rel)
    digest = hashlib.sha256()
    for rel in sorted(files):
        data = before[rel] if rel in before else project.read_bytes(rel)
        assert data is not None
        digest.update(rel.encode() + b"\0" + data + b"\0")
    return "sha256:" + digest.hexdigest()[:16]


def app_hash(project: Project) -> str:
    """A hash of what the application's smoke command can run: every Python file but the test
    modules and conftests, and the project's metadata (its entry points)."""
    digest = hashlib.sha256()
    for rel in project.python_files():
        if not is_test_module(project, rel) and PurePosixPath(rel).name != "conftest.py":
            digest.update(rel.encode() + b"\0" + project.read_bytes(rel) + b"\0")
    for rel in ("pyproject.toml", "setup.cfg", "setup.py"):
        path = project.root / rel
        if path.is_file():
            digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return "sha256:" + digest.hexdigest()[:16]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_baseline(root: Path) -> Baseline | None:
    data = _read_json(baseline_path(root))
    if data is None or data.get("version") != BASELINE_VERSION:
        return None
    try:
        return Baseline.from_dict(data)
    except (KeyError, TypeError):
        return None


def preload_modules(project: Project) -> list[str] | None:
    """What the suite's processes are forked with already imported (:mod:`.preload`): the
    target's third-party modules; None (every process starts from scratch) when the
    environment sets ``REFACTOR_TOOL_PRELOAD=0``."""
    if os.environ.get("REFACTOR_TOOL_PRELOAD", "1") == "0":
        return None
    return third_party_modules(project)


def run_suite_and_smoke(
    project: Project,
    python: str,
    *,
    jobs: int = 1,
    mode: str = "auto",
    weights: dict[str, float] | None = None,
    progress: ProgressCallback | None = None,
    smoke: CommandResult | None = None,
    cancel: threading.Event | None = None,
) -> tuple[SuiteRun, CommandResult]:
    """The suite, and the smoke command at the same time (it is one short process).

    ``smoke``: a result of the smoke command that still holds (it is not run again).
    """
    preload = preload_modules(project)
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = (
            None
            if smoke is not None
            else pool.submit(run_smoke, project.root, python, project.config, preload)
        )
        suite = run_suite(
            project.root,
            python,
            project.config,
            jobs=jobs,
            mode=mode,
            weights=weights,
            progress=progress,
            preload=preload,
            cancel=cancel,
        )
        return suite, smoke if future is None else future.result()


def record_baseline(
    project: Project,
    python: str,
    *,
    jobs: int = 1,
    mode: str = "auto",
    on_step: Callable[[str], None] | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    keep: bool = True,
) -> Baseline:
    """Run the suite and the smoke command on the tree as it is now and keep the result.

    ``cancel``: once set, the run stops (``runner.Cancelled``). ``keep``: write it to
    ``.refactor-tool/`` now (else the caller does, with :func:`keep_baseline`)."""
    if on_step:
        on_step("running the target's tests and its smoke command for the baseline")
    suite, smoke = run_suite_and_smoke(
        project, python, jobs=jobs, mode=mode, progress=progress, cancel=cancel
    )
    db = analyze_db_usage(project)
    tree = tree_hash(project)
    suite.tree = tree
    baseline = Baseline(
        suite=suite,
        smoke=smoke,
        db_fixtures=sorted(db.fixtures),
        touches_db=db.tests,
        taken_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        tree=tree,
        python=python,
    )
    if keep:
        keep_baseline(project, baseline)
    return baseline


def keep_baseline(project: Project, baseline: Baseline) -> None:
    """Write the baseline, and its run as the last run, to ``.refactor-tool/``."""
    root = project.root
    _write_json(baseline_path(root), baseline.as_dict())
    save_last_run(
        root,
        LastRun(
            baseline.suite,
            baseline.smoke,
            baseline.tree,
            baseline.python,
            "the baseline",
            app_hash(project),
        ),
    )


# --------------------------------------------------------------------------- the last run


@dataclass
class LastRun:
    """The last run of the suite and the smoke command, and the tree it was taken on."""

    suite: SuiteRun
    smoke: CommandResult
    tree: str
    python: str
    source: str  # "the baseline", "phase 3's gate", ...
    app: str = ""  # ``app_hash`` of the tree the smoke command ran on

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": BASELINE_VERSION,
            "tree": self.tree,
            "python": self.python,
            "source": self.source,
            "app": self.app,
            "smoke": asdict(self.smoke),
            "suite": self.suite.as_dict(),
        }


def last_run_path(root: Path) -> Path:
    return Path(root) / Project.STATE_DIR / LAST_RUN_FILE


def save_last_run(root: Path, run: LastRun) -> None:
    _write_json(last_run_path(root), run.as_dict())


def load_last_run(root: Path) -> LastRun | None:
    data = _read_json(last_run_path(root))
    if data is None or data.get("version") != BASELINE_VERSION:
        return None
    try:
        return LastRun(
            SuiteRun.from_dict(data["suite"]),
            CommandResult(**data["smoke"]),
            str(data["tree"]),
            str(data["python"]),
            str(data.get("source", "")),
            str(data.get("app", "")),
        )
    except (KeyError, TypeError):
        return None
