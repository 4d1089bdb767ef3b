"""The pytest plugin the gates read: its JSON lines against known outcomes, in one process, in
the tool's split over processes, and under pytest-xdist where the interpreter has it.

The plugin runs in the target's interpreter, where neither this tool nor libcst nor rich can
be imported: every run here loads it from a temporary copy, as the runner does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from refactor_tool.model.config import Config
from refactor_tool.model.imports import third_party_modules
from refactor_tool.model.project import Project
from refactor_tool.gates import preload, run_suite
from refactor_tool.gates.plugin import split_modules
from refactor_tool.gates.runner import PLUGIN_MODULE, has_xdist

PLUGIN = Path(__file__).resolve().parent.parent / "refactor_tool" / "gates" / "plugin.py"

PROJECT = {
    "pkg/__init__.py": "",
    "pkg/test_outcomes.py": """
        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("setup went wrong\\nsecond line")

        def test_passes():
            pass

        def test_fails_in_call():
            assert 1 == 2

        def test_setup_error(broken):
            pass

        def test_missing_fixture(no_such_fixture):
            pass

        @pytest.mark.skip(reason="not today")
        def test_skipped():
            pass

        @pytest.mark.xfail(reason="known bug")
        def test_xfail():
            raise KeyError("k")

        class TestGroup:
            @pytest.mark.parametrize("n", [1, 2])
            def test_param(self, n):
                assert n == 1

        def test_type_error():
            class Manager:
                def __init__(self, session):
                    self.session = session
            Manager()
    """,
    "pkg/test_teardown.py": """
        import pytest

        @pytest.fixture
        def leaky():
            yield
            raise OSError("teardown failed")

        def test_with_teardown_error(leaky):
            pass
    """,
    "pkg/test_syntax.py": """
        def test_x(:
            pass
    """,
    "pkg/test_import.py": """
        from pkg.gone import something
    """,
    "pkg/sub/__init__.py": "",
    "pkg/sub/conftest.py": """
        import not_installed_anywhere
    """,
    "pkg/sub/test_under_broken_conftest.py": """
        def test_never_runs():
            pass
    """,
}


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def run_plugin(root: Path, *args: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """pytest in a subprocess with the plugin copied to a scratch directory, as the runner does."""
    scratch = root.parent / f"plugin-{root.name}"
    scratch.mkdir(exist_ok=True)
    (scratch / f"{PLUGIN_MODULE}.py").write_text(PLUGIN.read_text())
    results = scratch / "results.jsonl"
    results.unlink(missing_ok=True)
    full_env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(scratch), str(root)]),
        PYTHONDONTWRITEBYTECODE="1",
        REFACTOR_TOOL_RESULTS=str(results),
        **(env or {}),
    )
    full_env.pop("PYTEST_ADDOPTS", None)
    subprocess.run(
        [sys.executable, "-m", "pytest", "-p", PLUGIN_MODULE, "-p", "no:cacheprovider",
         "--continue-on-collection-errors", "-q", *args],
        cwd=root,
        env=full_env,
        capture_output=True,
        check=False,
    )
    return [json.loads(line) for line in results.read_text().splitlines()]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("plugin") / "proj", PROJECT)


@pytest.fixture(scope="module")
def records(project: Path) -> list[dict[str, Any]]:
    return run_plugin(project)


def by_phase(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["nodeid"], r["when"]): r for r in records if r["event"] == "test"}


def test_one_line_per_test_and_phase(records: list[dict[str, Any]]) -> None:
    tests = by_phase(records)
    # every collected test reports its setup and teardown; a call only when the setup passed
    ids = {node_id for node_id, _ in tests}
    assert len(ids) == 10
    for node_id in ids:
        assert (node_id, "setup") in tests and (node_id, "teardown") in tests
    assert ("pkg/test_outcomes.py::test_setup_error", "call") not in tests
    assert ("pkg/test_outcomes.py::test_skipped", "call") not in tests
    collected = [r for r in records if r["event"] == "collected"]
    assert collected == [{"event": "collected", "count": 10}]
    assert records[-1] == {"event": "finished", "exitstatus": 1}


def test_known_outcomes(records: list[dict[str, Any]]) -> None:
    tests = by_phase(records)
    mod = "pkg/test_outcomes.py::"

    passed = tests[(mod + "test_passes", "call")]
    assert (passed["outcome"], passed["exc_type"], passed["message"]) == ("passed", "", "")

    failed = tests[(mod + "test_fails_in_call", "call")]
    assert failed["outcome"] == "failed"
    assert failed["exc_type"] == "AssertionError"
    assert failed["message"] == "assert 1 == 2"

    setup = tests[(mod + "test_setup_error", "setup")]
    assert setup["outcome"] == "failed"
    assert setup["exc_type"] == "RuntimeError"
    assert setup["message"] == "setup went wrong"  # the first line only
    assert setup["fixture_error"] is False

    missing = tests[(mod + "test_missing_fixture", "setup")]
    assert missing["outcome"] == "failed"
    assert missing["exc_type"] == "_pytest.fixtures.FixtureLookupError"
    assert missing["fixture_error"] is True
    assert missing["fixture"] == "no_such_fixture"
    assert missing["message"] == "fixture 'no_such_fixture' not found"

    skipped = tests[(mod + "test_skipped", "setup")]
    assert (skipped["outcome"], skipped["message"], skipped["xfail"]) == ("skipped", "not today", False)

    xfail = tests[(mod + "test_xfail", "call")]
    assert xfail["outcome"] == "skipped" and xfail["xfail"] is True
    assert xfail["exc_type"] == "KeyError"
    assert xfail["message"] == "xfail: known bug"

    assert tests[(mod + "TestGroup::test_param[1]", "call")]["outcome"] == "passed"
    param = tests[(mod + "TestGroup::test_param[2]", "call")]
    assert param["outcome"] == "failed" and param["exc_type"] == "AssertionError"

    type_error = tests[(mod + "test_type_error", "call")]
    assert type_error["exc_type"] == "TypeError"
    assert type_error["message"].endswith("missing 1 required positional argument: 'session'")

    teardown = tests[("pkg/test_teardown.py::test_with_teardown_error", "teardown")]
    assert teardown["outcome"] == "failed"
    assert (teardown["exc_type"], teardown["message"]) == ("OSError", "teardown failed")


def test_collection_errors_name_the_module_and_the_exception(records: list[dict[str, Any]]) -> None:
    errors = {r["nodeid"]: r for r in records if r["event"] == "collect-error"}
    assert set(errors) == {"pkg/test_syntax.py", "pkg/test_import.py", "pkg/sub"}
    assert errors["pkg/test_syntax.py"]["exc_type"] == "SyntaxError"
    assert "pkg/test_syntax.py, line 1" in errors["pkg/test_syntax.py"]["message"]
    assert errors["pkg/test_import.py"]["exc_type"] == "ModuleNotFoundError"
    assert errors["pkg/test_import.py"]["message"] == "No module named 'pkg.gone'"
    # a conftest that does not import: its directory, with the exception behind pytest's wrapper
    assert errors["pkg/sub"]["exc_type"] == "ModuleNotFoundError"
    assert "not_installed_anywhere" in errors["pkg/sub"]["message"]


def test_a_root_conftest_that_does_not_import(tmp_path: Path) -> None:
    root = write(
        tmp_path / "proj",
        {"conftest.py": "from os import no_such_name\n", "test_a.py": "def test_a():\n    pass\n"},
    )
    records = run_plugin(root)
    assert records == [
        {
            "event": "collect-error",
            "nodeid": "",
            "exc_type": "ImportError",
            "message": records[0]["message"],
            "fixture_error": False,
            "fixture": "",
        }
    ]
    assert "no_such_name" in records[0]["message"]


def test_runner_reads_the_plugin(project: Path) -> None:
    run = run_suite(project, sys.executable, Config(), jobs=1)
    states = {k: t.state for k, t in run.tests.items()}
    mod = "pkg/test_outcomes.py::"
    assert states == {
        mod + "test_passes": "passed",
        mod + "test_fails_in_call": "assertion",
        mod + "test_setup_error": "other",
        mod + "test_missing_fixture": "missing-fixture",
        mod + "test_skipped": "skipped",
        mod + "test_xfail": "skipped",
        mod + "TestGroup::test_param[1]": "passed",
        mod + "TestGroup::test_param[2]": "assertion",
        mod + "test_type_error": "missing-session",
        "pkg/test_teardown.py::test_with_teardown_error": "other",
        "pkg/test_syntax.py": "syntax-error",
        "pkg/test_import.py": "import-error",
        "pkg/sub": "import-error",
    }
    assert run.tests[mod + "test_setup_error"].outcome == "error"
    assert run.tests[mod + "test_fails_in_call"].outcome == "failed"
    assert run.tests["pkg/test_teardown.py::test_with_teardown_error"].outcome == "error"
    assert run.tests[mod + "test_missing_fixture"].detail == "no_such_fixture"
    assert run.mode == "serial" and run.jobs == 1
    # no __pycache__ in the target: compiled modules are kept elsewhere
    assert not list(project.rglob("__pycache__"))


def test_split_runs_every_test_once_and_gives_the_same_results(project: Path) -> None:
    serial = run_suite(project, sys.executable, Config(), jobs=1)
    split = run_suite(project, sys.executable, Config(), jobs=2, mode="split")
    assert split.mode == "split" and split.jobs == 2
    assert split.tests == serial.tests


@pytest.mark.skipif(not has_xdist(sys.executable), reason="pytest-xdist is not installed")
def test_xdist_gives_the_same_results(project: Path) -> None:
    serial = run_suite(project, sys.executable, Config(), jobs=1)
    xdist = run_suite(project, sys.executable, Config(), jobs=2, mode="xdist")
    assert xdist.mode == "xdist"
    assert xdist.tests == serial.tests


def test_split_shards_partition_the_modules(project: Path) -> None:
    seen: dict[str, int] = {}
    shard_of: dict[str, set[int]] = {}
    for index in range(3):
        records = run_plugin(project, env={"REFACTOR_TOOL_SHARD": f"{index}/3"})
        for node_id in {r["nodeid"] for r in records if r["event"] == "test"}:
            seen[node_id] = seen.get(node_id, 0) + 1
            shard_of.setdefault(node_id.split("::")[0], set()).add(index)
    # every test runs in exactly one process, and a module's tests all in the same one
    assert len(seen) == 10 and set(seen.values()) == {1}
    assert all(len(shards) == 1 for shards in shard_of.values())


def test_split_modules_balances_by_weight() -> None:
    counts = {"a.py": 10, "b.py": 1, "c.py": 1, "d.py": 8}
    groups = split_modules(counts, {}, 2)
    assert groups["a.py"] != groups["d.py"]
    totals = [sum(counts[m] for m, g in groups.items() if g == i) for i in (0, 1)]
    assert totals == [10, 10]
    # with the seconds of an earlier run, time counts, not the number of tests
    weights = {"a.py": 1.0, "b.py": 9.0, "c.py": 1.0, "d.py": 1.0}
    groups = split_modules(counts, weights, 2)
    assert [m for m, g in groups.items() if g == groups["b.py"]] == ["b.py"]
    # the same input gives the same groups, whatever the order of the modules
    assert split_modules(dict(reversed(list(counts.items()))), weights, 2) == groups


ENVIRONMENT_PROBE = {
    "probe/__init__.py": "",
    "probe/test_environment.py": """
        import os
        import sys
        import tempfile
        from pathlib import Path

        def test_runs_like_python_m_pytest():
            root = Path.cwd()
            assert (root / "probe" / "test_environment.py").is_file()
            assert Path(sys.path[0]).resolve() == root.resolve()
            assert os.environ["PROBE_SETTING"] == "from the run"
            assert os.environ["REFACTOR_TOOL_RESULTS"]
            assert tempfile.gettempdir() == os.environ["TMPDIR"]
            assert "probe" not in sys.argv[0]

        def test_the_target_is_imported_fresh():
            import probe
            assert "probe.test_environment" in sys.modules
            assert Path(probe.__file__).resolve().parent == (Path.cwd() / "probe").resolve()

        def test_fails():
            assert os.environ.get("PROBE_SETTING") == "something else"
    """,
}


@pytest.mark.skipif(not preload.supported(), reason="no fork on this platform")
def test_preloaded_processes_run_the_suite_as_fresh_ones_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write(tmp_path / "probe_project", ENVIRONMENT_PROBE)
    monkeypatch.setenv("PROBE_SETTING", "from the run")
    fresh = run_suite(root, sys.executable, Config(), jobs=1)
    forked = run_suite(root, sys.executable, Config(), jobs=1, preload=["sqlalchemy"])
    assert {k: t.state for k, t in fresh.tests.items()} == {
        "probe/test_environment.py::test_runs_like_python_m_pytest": "passed",
        "probe/test_environment.py::test_the_target_is_imported_fresh": "passed",
        "probe/test_environment.py::test_fails": "assertion",
    }
    assert forked.tests == fresh.tests
    # split over two forked processes too; one server served both runs
    split = run_suite(root, sys.executable, Config(), jobs=2, mode="split", preload=["sqlalchemy"])
    assert split.tests == fresh.tests
    servers = [
        s
        for key, s in preload._SERVERS.items()
        if key[2] == ("sqlalchemy",) and str(root) in dict(key[1])["PYTHONPATH"]
    ]
    assert len(servers) == 1 and servers[0].preloaded == ["pytest", "sqlalchemy"]


def test_only_third_party_modules_are_preloaded(tmp_path: Path) -> None:
    root = write(
        tmp_path / "app",
        {
            "app/__init__.py": "import os\nimport sqlalchemy.orm\nfrom . import models\n",
            "app/models.py": "from sqlalchemy import Column\nimport click, app.models\n",
            "tests/helpers.py": "import json\n",
            "tests/test_app.py": "import helpers\nimport pytest\nfrom app import models\n",
        },
    )
    assert third_party_modules(Project(root)) == ["click", "pytest", "sqlalchemy"]


def test_a_cancelled_run_stops_its_processes(project: Path) -> None:
    import threading

    from refactor_tool.gates.runner import Cancelled

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        run_suite(project, sys.executable, Config(), jobs=2, mode="split", cancel=cancel)
