"""Verification gates: the target's own test suite, judged against a baseline.

Each phase of docs/plan.md ends with a "Verification" paragraph; a gate turns it into a decision.

* ``plugin.py``: a pytest plugin (standard library and pytest only: it runs in the target's
  interpreter) that writes one JSON line per test and phase;
* ``runner.py``: runs the suite in one process, with pytest-xdist, or split by test module
  over several processes, and follows its progress;
* ``results.py``: test outcomes and failure kinds, decided from exception types;
* ``judge.py``: the comparison with the baseline and the verdicts;
* ``gate.py``: a phase's gate (run or reuse, run again alone, commands, checks);
* ``baseline.py``: the baseline and the last run, kept in ``.refactor-tool/``;
* ``commands.py``: the smoke command and phase 3's factory check;
* ``dbusage.py``: which fixtures and tests touch the database (static analysis).
"""

from .baseline import (
    Baseline,
    LastRun,
    baseline_path,
    keep_baseline,
    load_baseline,
    load_last_run,
    record_baseline,
    tree_hash,
)
from .commands import CommandResult, run_factory_check, run_smoke
from .dbusage import DbMap, analyze_db_usage
from .gate import Unchanged, behaviour_unchanged, run_gate
from .judge import (
    EXPECTED_KINDS,
    STRICT_PHASES,
    GateResult,
    TestChange,
    check_as_dict,
    expectation_text,
    judge,
    judge_command,
)
from .results import (
    KIND_HELP,
    KINDS,
    SuiteRun,
    TestOutcome,
    classify,
    outcomes_from_records,
)
from .runner import (
    EnvironmentProblem,
    SuiteProgress,
    choose_mode,
    default_python,
    has_xdist,
    run_suite,
)

__all__ = [
    "EXPECTED_KINDS",
    "KINDS",
    "KIND_HELP",
    "STRICT_PHASES",
    "Baseline",
    "CommandResult",
    "DbMap",
    "EnvironmentProblem",
    "GateResult",
    "LastRun",
    "SuiteProgress",
    "SuiteRun",
    "TestChange",
    "TestOutcome",
    "Unchanged",
    "analyze_db_usage",
    "baseline_path",
    "behaviour_unchanged",
    "check_as_dict",
    "choose_mode",
    "classify",
    "default_python",
    "expectation_text",
    "has_xdist",
    "judge",
    "judge_command",
    "load_baseline",
    "load_last_run",
    "outcomes_from_records",
    "keep_baseline",
    "record_baseline",
    "run_factory_check",
    "run_gate",
    "run_smoke",
    "run_suite",
    "tree_hash",
]
