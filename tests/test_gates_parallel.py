"""Parallel gates and reused runs: a parallel run gives the verdicts a serial run gives on the
bundled target; a test that fails only in a parallel run is run again alone and reported as
order-dependent; a phase that changes only comments and formatting reuses the previous run,
and one that changes a statement (or a docstring) does not.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from refactor_tool.model.config import Config, load_config
from refactor_tool.gates import behaviour_unchanged, judge, record_baseline, run_gate, run_suite
from refactor_tool.gates import gate as gate_module
from refactor_tool.model.project import Project

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "target_project"
IGNORE = shutil.ignore_patterns(
    "__pycache__", ".pytest_cache", ".refactor-tool", "*.egg-info", "*.db"
)


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


@dataclass
class Change:
    path: str
    old: bytes | None
    new: bytes | None


def rewrite(root: Path, rel: str, old: str, new: str) -> Change:
    path = root / rel
    before = path.read_bytes()
    after = before.replace(old.encode(), new.encode())
    assert after != before, f"{old!r} is not in {rel}"
    path.write_bytes(after)
    return Change(rel, before, after)


# ----------------------------------------------------------------------------- parallel = serial


@pytest.mark.skipif(not (TARGET / "pyproject.toml").is_file(), reason="no target_project/")
def test_parallel_verdicts_equal_serial_on_the_bundled_target(tmp_path: Path) -> None:
    """Baseline and a broken-API gate, each once in one process and once split over two."""
    serial_root = tmp_path / "serial"
    shutil.copytree(TARGET, serial_root, ignore=IGNORE)
    parallel_root = tmp_path / "parallel"
    shutil.copytree(TARGET, parallel_root, ignore=IGNORE)
    config = load_config(serial_root)
    gates = {}
    for root, jobs in ((serial_root, 1), (parallel_root, 2)):
        project = Project(root, config)
        baseline = record_baseline(project, sys.executable, jobs=jobs, mode="split")
        assert baseline.suite.jobs == jobs
        # what phase 1 does to the old API, by hand: every caller of get_session breaks
        rewrite(root, "sologm/database/session.py", "def get_session(", "def _gone_session(")
        gates[jobs] = (
            baseline,
            run_gate(Project(root, config), 1, "one", baseline, sys.executable, jobs=jobs, mode="split"),
        )
    (base_1, gate_1), (base_2, gate_2) = gates[1], gates[2]
    assert base_1.suite.mode == "serial" and base_2.suite.mode == "split"
    assert {k: t.state for k, t in base_1.suite.tests.items()} == {
        k: t.state for k, t in base_2.suite.tests.items()
    }
    assert gate_1.run == "one process"
    assert gate_2.run == "split by test module over 2 processes"
    assert gate_1.verdict == gate_2.verdict
    assert gate_1.rows == gate_2.rows
    assert [(c.id, c.before, c.after, c.judgement) for c in gate_1.changes] == [
        (c.id, c.before, c.after, c.judgement) for c in gate_2.changes
    ]
    assert any(c.after == "removed-session-api" for c in gate_1.changes)
    assert not gate_2.order_dependent


# ----------------------------------------------------------------------------- order-dependent

# Three modules, run in this order in one process: test_a leaves a flag set, test_b (the
# heaviest module) clears it as a side effect, test_c needs it clear. Serially test_c passes;
# split over two processes by module weight, test_b has a process of its own and test_c runs
# right after test_a: it fails. Alone it passes again.
ORDER_PROJECT = {
    "app/__init__.py": "",
    "app/state.py": "dirty = False\n",
    "app/tests/__init__.py": "",
    "app/tests/test_a.py": """
        from app import state

        def test_leaves_state_dirty():
            state.dirty = True
    """,
    "app/tests/test_b.py": """
        import time

        import pytest
        from app import state

        @pytest.mark.parametrize("n", range(6))
        def test_cleans_up(n):
            time.sleep(0.05)  # the heaviest module by far, whatever the machine
            state.dirty = False
    """,
    "app/tests/test_c.py": """
        from app import state

        def test_needs_clean_state():
            assert not state.dirty
    """,
}


def test_a_test_that_fails_only_in_parallel_is_order_dependent(tmp_path: Path) -> None:
    root = write(tmp_path / "proj", ORDER_PROJECT)
    config = Config(package="app", script="none")
    project = Project(root, config)
    victim = "app/tests/test_c.py::test_needs_clean_state"
    baseline = record_baseline(project, sys.executable, jobs=1)
    assert baseline.suite.tests[victim].state == "passed"

    # the parallel run alone: the victim fails there, and a judge would blame the phase
    parallel = run_suite(root, sys.executable, config, jobs=2, mode="split")
    assert parallel.tests[victim].state == "assertion"
    assert judge(5, "five", baseline, parallel).verdict == "failed"

    # the gate runs it again alone: it passes, so it is order-dependent, not a regression
    gate = run_gate(project, 5, "five", baseline, sys.executable, jobs=2, mode="split")
    assert gate.ok, gate.problems
    assert gate.order_dependent == [victim]
    (change,) = [c for c in gate.changes if c.id == victim]
    assert change.judgement == "order-dependent" and not change.bad
    assert change.after == "assertion in parallel, passed alone"
    assert any("order-dependent" in m for m in gate.messages)


def test_a_real_regression_in_parallel_is_still_blamed(tmp_path: Path) -> None:
    root = write(tmp_path / "proj", ORDER_PROJECT)
    config = Config(package="app", script="none")
    project = Project(root, config)
    baseline = record_baseline(project, sys.executable, jobs=1)
    rewrite(root, "app/tests/test_c.py", "assert not state.dirty", "assert state.dirty is None")
    gate = run_gate(project, 5, "five", baseline, sys.executable, jobs=2, mode="split")
    assert not gate.ok
    assert not gate.order_dependent
    (change,) = [c for c in gate.changes if c.bad]
    assert change.id == "app/tests/test_c.py::test_needs_clean_state"
    assert change.judgement == "regression" and change.after == "assertion"


# ----------------------------------------------------------------------------- reuse

REUSE_PROJECT = {
    "app/__init__.py": "",
    "app/logic.py": '''
        """Arithmetic."""


        def add(a, b):
            # the sum
            return a + b
    ''',
    "app/tests/__init__.py": "",
    "app/tests/test_logic.py": """
        from app.logic import add

        def test_add():
            assert add(1, 2) == 3
    """,
}


@pytest.fixture
def reuse_project(tmp_path: Path) -> tuple[Project, object]:
    root = write(tmp_path / "proj", REUSE_PROJECT)
    project = Project(root, Config(package="app", script="none"))
    baseline = record_baseline(project, sys.executable, jobs=1)
    return project, baseline


def counting_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = gate_module.run_suite_and_smoke

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(gate_module, "run_suite_and_smoke", counted)
    return calls


def test_comments_and_formatting_only_reuse_the_previous_run(
    reuse_project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, baseline = reuse_project
    calls = counting_runs(monkeypatch)
    change = rewrite(
        project.root,
        "app/logic.py",
        "    # the sum\n    return a + b\n",
        "    # the sum of both\n    return (a +\n            b)  # formatted\n",
    )
    gate = run_gate(project, 6, "six", baseline, sys.executable, changes=[change])
    assert calls == []  # the suite did not run
    assert gate.ok, gate.problems
    assert gate.reused == (
        "reused the previous run: phase 6 changed only comments and formatting in 1 file"
    )
    assert gate.messages[0].startswith(gate.reused)
    assert gate.run == "the run of the baseline"
    # a second phase of the same kind reuses it again
    again = rewrite(project.root, "app/logic.py", "# formatted", "# formatted twice")
    gate = run_gate(project, 6, "six", baseline, sys.executable, changes=[again])
    assert calls == [] and gate.reused


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("return a + b", "return b + a"),  # a statement
        ('"""Arithmetic."""', '"""Arithmetic, done right."""'),  # a docstring is a statement
    ],
)
def test_a_changed_statement_runs_the_suite(
    reuse_project, monkeypatch: pytest.MonkeyPatch, old: str, new: str
) -> None:
    project, baseline = reuse_project
    calls = counting_runs(monkeypatch)
    change = rewrite(project.root, "app/logic.py", old, new)
    gate = run_gate(project, 6, "six", baseline, sys.executable, changes=[change])
    assert calls == [1]
    assert not gate.reused
    assert gate.run == "one process"
    assert gate.ok, gate.problems


def test_reuse_needs_the_previous_run_of_the_same_tree(
    reuse_project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, baseline = reuse_project
    calls = counting_runs(monkeypatch)
    # a statement changed behind the tool's back, then a comment-only phase: the last run was
    # not taken on the tree the phase started from, so it cannot stand for this one
    rewrite(project.root, "app/tests/test_logic.py", "== 3", "== 1 + 2")
    change = rewrite(project.root, "app/logic.py", "# the sum", "# the total")
    gate = run_gate(project, 6, "six", baseline, sys.executable, changes=[change])
    assert calls == [1] and not gate.reused


def test_behaviour_unchanged() -> None:
    same = Change("a.py", b"x = 1  # one\n", b"x = (\n    1\n)\n")
    assert behaviour_unchanged(6, [same]).proven
    assert behaviour_unchanged(6, []).proven
    assert not behaviour_unchanged(6, [Change("a.py", b"x = 1\n", b"x = 2\n")]).proven
    assert not behaviour_unchanged(6, [Change("a.py", None, b"x = 1\n")]).proven
    assert not behaviour_unchanged(6, [Change("a.py", b"x = 1\n", None)]).proven
    assert not behaviour_unchanged(6, [same, Change("setup.cfg", b"[a]\n", b"[b]\n")]).proven
    assert not behaviour_unchanged(6, [Change("a.py", b"x = 1\n", b"x = (\n")]).proven


@pytest.mark.parametrize(
    ("referrer", "why"),
    [
        (None, ""),  # nothing imports the new module: proven
        ("from app.helpers import double\n", "imports app.helpers"),
        ("from . import helpers\n", "imports app.helpers"),
        ("from .helpers import *\n", "imports app.helpers"),
        ("import app.helpers as h\n", "imports app.helpers"),
        ('PLUGINS = ["app.helpers"]\n', "in a string"),
        ('__all__ = ["helpers"]\n', "in a string"),
        (
            "import importlib, pkgutil\n"
            "MODS = [importlib.import_module('app.' + n) for _, n, _ in pkgutil.iter_modules(['app'])]\n",
            "computed name",
        ),
        ("import importlib\nPLUGIN = importlib.import_module(KIND + '.helpers.x')\n", "computed name"),
        # a computed name the target cannot build: nothing holds the module's name
        ("import importlib, os\nPLUGIN = importlib.import_module(os.environ['PLUGIN'])\n", None),
    ],
)
def test_a_created_module_nothing_can_run_changes_no_behaviour(
    tmp_path: Path, referrer: str | None, why: str | None
) -> None:
    root = write(
        tmp_path / "t",
        {
            "pyproject.toml": '[project]\nname = "app"\n',
            "app/__init__.py": "",
            "app/logic.py": "def add(a, b):\n    return a + b\n",
            "app/tests/test_logic.py": "from app.logic import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
            "app/helpers.py": "def double(x):\n    return 2 * x\n",
        },
    )
    if referrer is not None:
        (root / "app" / "logic.py").write_text(referrer + "\n\ndef add(a, b):\n    return a + b\n")
    created = Change("app/helpers.py", None, (root / "app" / "helpers.py").read_bytes())
    verdict = behaviour_unchanged(3, [created], Project(root))
    if referrer is None or why is None:
        assert verdict.proven, verdict.reason
        assert "created app/helpers.py, which nothing in the target imports" in verdict.reason
    else:
        assert not verdict.proven
        assert why in verdict.reason and "app/logic.py" in verdict.reason
    # without the tree to look at, a created module is never proven
    assert not behaviour_unchanged(3, [created]).proven


def test_a_created_test_module_or_conftest_runs(tmp_path: Path) -> None:
    root = write(
        tmp_path / "t",
        {"app/__init__.py": "", "app/test_new.py": "", "app/conftest.py": ""},
    )
    for rel in ("app/test_new.py", "app/conftest.py", "app/__init__.py"):
        verdict = behaviour_unchanged(3, [Change(rel, None, b"")], Project(root))
        assert not verdict.proven and "pytest or Python runs it" in verdict.reason
