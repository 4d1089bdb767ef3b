"""Verification gates: the target's own test suite, judged against a baseline.

Each phase of docs/plan.md ends with a "Verification" paragraph. A gate turns that paragraph into a
decision. It runs the target's suite with the target's interpreter (``--python``), reads the
outcome of every test from pytest's JUnit XML (never from pytest's text), classifies every
failure by kind, and compares the run with a *baseline* recorded before the tool wrote anything:

* a test that already failed at baseline is *pre-existing*, never blamed on the phase;
* a test that failed at baseline and passes now is *fixed*;
* a test that passed at baseline and fails now is judged by the phase's expectation:

  - phases 1-4 (docs/plan.md: "expect failures"): accepted if the test touches the database and
    the failure is of a kind docs/plan.md names for this phase or an earlier one (phase 1: removed
    session APIs; 2 and 3: also a missing ``session`` argument; 4: also a missing database
    fixture), or of a kind docs/plan.md does not name at all (an assertion, a detached object: the
    plan says such failures "relate to session handling"). A SyntaxError, an ImportError at
    collection, a kind docs/plan.md names only for a later phase (a missing fixture after phase 1),
    a missing fixture that is not a database fixture, or a newly failing test that touches no
    database fails the gate: that is a codemod bug, not an expected consequence of the plan;
  - phases 5 and 6 ("all tests passing"): any test that passed at baseline and does not now
    fails the gate.

Phase 3 also imports the generated factory and calls it on a real session; phase 6 also runs the
static end-state checks (``refactor-tool check``). Every gate runs the application's smoke
command (phase 1 of docs/plan.md: ``game list`` on an empty database in a scratch home), found through
the target's ``[project.scripts]`` entry point.

Whatever runs inside the target's interpreter (pytest, the smoke runner, the factory check) uses
only the standard library and the target itself: that interpreter is the user's environment and
has neither libcst nor rich nor this tool.

"Touches the database" is decided statically, on the tree the baseline is taken from (before any
phase removed a fixture), with the standard library's ``ast``: a fixture is a database fixture if
it is the session fixture or the session-context fixture, if its body uses a name imported from
SQLAlchemy or from the package's database module or a manager class (a subclass of the base
manager, found in the code), or if it requests another database fixture. A test touches the
database if it requests a database fixture (directly or through ``usefixtures``; autouse fixtures
do not count, or every test would) or its body uses such a name. A test the analysis cannot find
counts as touching the database, so the gate never blames a phase without evidence.
"""

from __future__ import annotations

import ast
import datetime as _dt
import hashlib
import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .model.config import Config, project_scripts
from .model.project import Project

BASELINE_FILE = "baseline.json"
BASELINE_VERSION = 1

# --------------------------------------------------------------------------- failure kinds

KINDS = (
    "removed-session-api",
    "missing-session",
    "missing-fixture",
    "syntax-error",
    "import-error",
    "detached-or-stale",
    "assertion",
    "other",
)

KIND_HELP = {
    "removed-session-api": "AttributeError/ImportError naming a removed session API",
    "missing-session": "TypeError: a required 'session' argument is missing",
    "missing-fixture": "a fixture the test requests no longer exists",
    "syntax-error": "SyntaxError/IndentationError",
    "import-error": "ImportError (at collection or at run time)",
    "detached-or-stale": "DetachedInstanceError or stale/unbound ORM object",
    "assertion": "an assertion failed",
    "other": "any other exception",
}

#: failure kinds docs/plan.md names for each phase's "expect failures" verification, cumulative
#: (a phase's tree still has the previous phases' consequences until phase 5 repairs them)
EXPECTED_KINDS: dict[int, frozenset[str]] = {
    1: frozenset({"removed-session-api"}),
    2: frozenset({"removed-session-api", "missing-session"}),
    3: frozenset({"removed-session-api", "missing-session"}),
    4: frozenset({"removed-session-api", "missing-session", "missing-fixture"}),
}
#: phases whose verification is "all tests passing": no test may get worse than at baseline
STRICT_PHASES = frozenset({5, 6})
ALWAYS_UNEXPECTED = frozenset({"syntax-error", "import-error"})
#: the kinds docs/plan.md names; outside the phases that name them they point at a codemod bug
PLAN_KINDS = frozenset().union(*EXPECTED_KINDS.values())

_DETACHED = re.compile(
    r"DetachedInstanceError|ObjectDeletedError|StaleDataError|is not bound to a Session"
    r"|not persistent within this Session|Instance <[^>]*> is not present in this Session"
    r"|Parent instance <[^>]*> is not bound"
)
_FIXTURE = re.compile(r"fixture '([^']+)' not found")
_MISSING_SESSION = re.compile(
    r"TypeError:.*(?:missing \d+ required (?:positional|keyword-only) arguments?:.*'{name}'"
    r"|got an unexpected keyword argument '{name}')"
)


def _error_lines(text: str) -> list[str]:
    """The ``E   ...`` lines of a pytest traceback (the exception itself), else the last line."""
    lines = [ln[1:].strip() for ln in text.splitlines() if ln.startswith("E ")]
    if lines:
        return lines
    stripped = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return stripped[-1:] if stripped else []


def classify(
    message: str, text: str, config: Config | None = None, *, collection: bool = False
) -> str:
    """The failure kind of one failed or errored test (see :data:`KINDS`)."""
    config = config or Config()
    errors = "\n".join([message, *_error_lines(text)])
    everything = f"{message}\n{text}"
    if re.search(r"\b(SyntaxError|IndentationError|TabError)\b", errors):
        return "syntax-error"
    removed = {*config.removed_session_apis, config.get_session_method}
    names = "|".join(re.escape(n) for n in sorted(removed, key=len, reverse=True))
    if re.search(
        r"\b(AttributeError|ImportError|ModuleNotFoundError|NameError)\b", errors
    ) and re.search(rf"(?<![\w.])'?(?:{names})\b", errors):
        return "removed-session-api"
    if _FIXTURE.search(everything):
        return "missing-fixture"
    session = re.escape(config.session_variable)
    if re.search(_MISSING_SESSION.pattern.format(name=session), errors):
        return "missing-session"
    if collection or re.search(r"\b(ImportError|ModuleNotFoundError)\b", errors):
        return "import-error"  # a module that does not import (at collection or at run time)
    if _DETACHED.search(errors):
        return "detached-or-stale"
    if re.search(
        r"\bAssertionError\b|^assert\b", errors, re.MULTILINE
    ) or message.startswith("assert "):
        return "assertion"
    return "other"


def missing_fixture_name(text: str) -> str | None:
    match = _FIXTURE.search(text)
    return match.group(1) if match else None


# --------------------------------------------------------------------------- results


@dataclass
class TestOutcome:
    __test__ = False  # not a pytest test class

    id: str  # pytest-style node id: path/to/test_x.py::Class::test_name[param]
    outcome: str  # passed | failed | error | skipped
    kind: str | None = None  # failure kind for failed/error
    message: str = ""  # one line a person can read
    collection: bool = False  # a collection error (covers every test below ``id``)
    detail: str = ""  # the missing fixture's name, when kind == missing-fixture

    @property
    def ok(self) -> bool:
        return self.outcome in ("passed", "skipped")

    @property
    def state(self) -> str:
        """A short label: passed, skipped, or the failure kind."""
        return self.outcome if self.ok else (self.kind or "other")


@dataclass
class SuiteRun:
    tests: dict[str, TestOutcome] = field(default_factory=dict)
    returncode: int | None = None
    duration: float = 0.0
    output_tail: str = ""

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for test in self.tests.values():
            out[test.state] = out.get(test.state, 0) + 1
        return out

    @property
    def collection_errors(self) -> list[TestOutcome]:
        return [t for t in self.tests.values() if t.collection]

    def as_dict(self) -> dict[str, Any]:
        return {
            "returncode": self.returncode,
            "duration": round(self.duration, 3),
            "output_tail": self.output_tail,
            "tests": {k: asdict(v) for k, v in sorted(self.tests.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuiteRun:
        return cls(
            tests={k: TestOutcome(**v) for k, v in data.get("tests", {}).items()},
            returncode=data.get("returncode"),
            duration=data.get("duration", 0.0),
            output_tail=data.get("output_tail", ""),
        )


@dataclass
class CommandResult:
    """The smoke command or the factory check: what ran and how it ended."""

    name: str
    command: str
    status: str  # ok | failed | skipped
    returncode: int | None = None
    output: str = ""
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class EnvironmentProblem(Exception):
    """The interpreter given for the target cannot run its tests (bad input, exit 2)."""


# --------------------------------------------------------------------------- interpreters


def default_python(root: Path) -> str:
    """The target's ``.venv`` interpreter if it has one, else the tool's own."""
    for rel in (".venv/bin/python", ".venv/Scripts/python.exe", "venv/bin/python"):
        candidate = root / rel
        if candidate.exists():
            return str(candidate)
    return sys.executable


def _target_env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(root), env.get("PYTHONPATH", "")) if p
    )
    env["PYTHONDONTWRITEBYTECODE"] = (
        "1"  # keep the target's tree clean (no __pycache__)
    )
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    if extra:
        env.update(extra)
    return env


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


# --------------------------------------------------------------------------- the suite


def pytest_command(python: str, junit: Path, config: Config) -> list[str]:
    return [
        python,
        "-m",
        "pytest",
        f"--junitxml={junit}",
        "-o",
        "junit_family=xunit2",
        "-p",
        "no:cacheprovider",
        "-q",
        "--continue-on-collection-errors",
        *config.pytest_args,
    ]


def run_suite(root: Path, python: str, config: Config) -> SuiteRun:
    """Run the target's suite in ``python`` and read every test's outcome from JUnit XML."""
    root = Path(root)
    with tempfile.TemporaryDirectory(prefix="refactor-tool-junit-") as tmp:
        junit = Path(tmp) / "junit.xml"
        started = time.monotonic()
        try:
            proc = subprocess.run(
                pytest_command(python, junit, config),
                check=False,
                cwd=root,
                env=_target_env(root, {"TMPDIR": tmp} if os.name != "nt" else None),
                capture_output=True,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            raise EnvironmentProblem(
                f"{python}: cannot run the target's interpreter: {exc}"
            ) from None
        duration = time.monotonic() - started
        output = proc.stdout + proc.stderr
        if "No module named pytest" in output and not junit.exists():
            raise EnvironmentProblem(
                f"{python}: has no pytest; install the target's test dependencies in that "
                "interpreter or pass --python PATH to one that has them"
            )
        xml_text = (
            junit.read_text(encoding="utf-8", errors="replace")
            if junit.exists()
            else ""
        )
    tests = parse_junit(xml_text, root, config) if xml_text else {}
    if not tests and proc.returncode not in (0, 5):
        # pytest stopped before it could write any testcase (e.g. the root conftest does not
        # import): one synthetic error for the whole session, classified from pytest's output
        message = next(
            (
                ln.strip()
                for ln in output.splitlines()
                if ln.startswith(("E ", "ImportError", "ERROR"))
            ),
            f"pytest exited with code {proc.returncode}",
        )
        kind = classify(message, output, config, collection=True)
        tests[""] = TestOutcome("", "error", kind, _one_line(message), collection=True)
    return SuiteRun(tests, proc.returncode, duration, _tail(output))


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _node_path(root: Path, dotted: str) -> tuple[str, list[str]]:
    """``a.b.test_x.TestY`` -> (``a/b/test_x.py``, [``TestY``]) using the files under ``root``."""
    parts = dotted.split(".") if dotted else []
    for cut in range(len(parts), 0, -1):
        rel = "/".join(parts[:cut])
        if (root / f"{rel}.py").is_file():
            return f"{rel}.py", parts[cut:]
        if cut == len(parts) and (root / rel).is_dir():
            return rel, []
    return dotted, []


_SEVERITY = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


def parse_junit(
    xml_text: str, root: Path | str = ".", config: Config | None = None
) -> dict[str, TestOutcome]:
    """Every testcase of a pytest xunit2 report, by pytest-style node id."""
    config = config or Config()
    root = Path(root)
    tree = ET.fromstring(xml_text)
    results: dict[str, TestOutcome] = {}
    for case in tree.iter("testcase"):
        classname = case.get("classname", "")
        name = case.get("name", "")
        collection = not classname
        if collection:
            path, _ = _node_path(root, name)
            node_id = path
        else:
            path, rest = _node_path(root, classname)
            node_id = "::".join([path, *rest, name])
        outcome, kind, message, detail = "passed", None, "", ""
        for child in case:
            tag = child.tag
            if tag not in ("failure", "error", "skipped"):
                continue
            text = child.text or ""
            msg = child.get("message", "") or ""
            if tag == "skipped":
                if outcome == "passed":
                    outcome, message = "skipped", _one_line(msg)
                continue
            this = "failed" if tag == "failure" else "error"
            if _SEVERITY[this] >= _SEVERITY[outcome]:
                outcome = this
                kind = classify(msg, text, config, collection=collection)
                lines = (
                    _error_lines(text)
                    if msg in ("", "collection failure") or msg.startswith("failed on")
                    else [msg]
                )
                message = _one_line(lines[-1] if lines else msg)
                if kind == "missing-fixture":
                    detail = missing_fixture_name(f"{msg}\n{text}") or ""
        previous = results.get(node_id)
        if previous is not None and _SEVERITY[previous.outcome] >= _SEVERITY[outcome]:
            continue  # a second record (teardown error) that is no worse
        results[node_id] = TestOutcome(
            node_id, outcome, kind, message, collection, detail
        )
    return results


# --------------------------------------------------------------------------- smoke command

_RUNNER = r"""
import importlib, json, sys
spec, argv = json.loads(sys.argv[1])
module, _, attr = spec.partition(":")
target = importlib.import_module(module.strip())
for part in attr.strip().split("."):
    if part:
        target = getattr(target, part)
sys.argv = argv
sys.exit(target())
"""


def smoke_env(config: Config, scratch: Path) -> dict[str, str]:
    """A scratch home: HOME, the XDG dirs, and each of ``Config.smoke_env`` pointing into it.

    A variable whose name ends in ``_URL`` gets a SQLite URL of a fresh file there, any other a
    directory there.
    """
    home = scratch / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "HOME": str(home),
        "USERPROFILE": str(home),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "APPDATA": str(home / "AppData"),
        "LOCALAPPDATA": str(home / "AppData" / "Local"),
    }
    for name in config.smoke_env:
        if name.upper().endswith("_URL"):
            env[name] = f"sqlite:///{(scratch / 'smoke.db').as_posix()}"
        else:
            path = scratch / name.lower()
            path.mkdir(exist_ok=True)
            env[name] = str(path)
    return env


def run_smoke(root: Path, python: str, config: Config) -> CommandResult:
    """The app's smoke command (``game list`` on an empty database) in a scratch home."""
    root = Path(root)
    scripts = project_scripts(root)
    spec = scripts.get(config.script)
    display = " ".join([config.script, *config.smoke_args])
    if not spec:
        known = ", ".join(sorted(scripts)) or "none"
        return CommandResult(
            "smoke",
            display,
            "skipped",
            message=(
                f"pyproject.toml: no [project.scripts] entry {config.script!r} (entries: {known}); "
                "set [tool.refactor-tool] script to the application's command"
            ),
        )
    spec = re.sub(r"\s*\[.*\]\s*$", "", spec)  # drop "[extras]"
    with tempfile.TemporaryDirectory(prefix="refactor-tool-smoke-") as tmp:
        env = _target_env(root, smoke_env(config, Path(tmp)))
        payload = json.dumps([spec, [config.script, *config.smoke_args]])
        try:
            proc = subprocess.run(
                [python, "-c", _RUNNER, payload],
                check=False,
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            return CommandResult(
                "smoke", display, "failed", None, "", "did not finish within 300 s"
            )
        except OSError as exc:
            raise EnvironmentProblem(
                f"{python}: cannot run the target's interpreter: {exc}"
            ) from None
    output = _tail(proc.stdout + proc.stderr, 15)
    if proc.returncode == 0:
        return CommandResult(
            "smoke", display, "ok", 0, output, f"`{display}` ({spec}) exited 0"
        )
    last = _error_lines(proc.stderr or proc.stdout)
    return CommandResult(
        "smoke",
        display,
        "failed",
        proc.returncode,
        output,
        f"`{display}` ({spec}) exited {proc.returncode}: {_one_line(last[-1]) if last else 'no output'}",
    )


# --------------------------------------------------------------------------- factory check

_FACTORY_CHECK = r"""
import importlib, json, sys
module_name, function_name, package = json.loads(sys.argv[1])
module = importlib.import_module(module_name)
factory = getattr(module, function_name, None)
if factory is None:
    sys.exit(f"{module_name} has no function {function_name}")
import sqlalchemy
from sqlalchemy.orm import Session
engine = sqlalchemy.create_engine("sqlite://")
created = None
for name, mod in sorted(sys.modules.items()):
    if not (name == package or name.startswith(package + ".")) or mod is None:
        continue
    for value in list(vars(mod).values()):
        metadata = getattr(value, "metadata", None)
        if isinstance(value, type) and isinstance(metadata, sqlalchemy.MetaData) and metadata.tables:
            metadata.create_all(engine)
            created = f"{name}.{value.__name__}.metadata"
            break
    if created:
        break
problems = []
with Session(engine) as session:
    managers = factory(session)
    names = sorted(k for k in vars(managers) if not k.startswith("_"))
    for name in names:
        value = getattr(managers, name)
        bound = getattr(value, "_session", session)
        if bound is not session:
            problems.append(f"managers.{name} does not hold the session it was given")
# managers the factory builds on first access (they take a client) are not built here: the
# check needs no more from the environment than the target's tests do
import functools
lazy = sorted(n for n in dir(type(managers)) if not n.startswith("_")
              and isinstance(getattr(type(managers), n, None), functools.cached_property))
print(json.dumps({"managers": {n: type(getattr(managers, n)).__name__ for n in names},
                  "lazy": lazy, "tables": created, "problems": problems}))
sys.exit(1 if problems or not (names or lazy) else 0)
"""


def run_factory_check(root: Path, python: str, config: Config) -> CommandResult:
    """Phase 3: import the factory in the target's interpreter and call it on a real session."""
    root = Path(root)
    call = f"{config.factory_module_name}.{config.factory_function}(Session(sqlite engine))"
    if not (root / config.factory_module).is_file():
        return CommandResult(
            "factory",
            call,
            "failed",
            message=f"{config.factory_module}: not found (phase 3 creates it)",
        )
    payload = json.dumps(
        [config.factory_module_name, config.factory_function, config.package_dotted]
    )
    try:
        proc = subprocess.run(
            [python, "-c", _FACTORY_CHECK, payload],
            check=False,
            cwd=root,
            env=_target_env(root),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        return CommandResult(
            "factory", call, "failed", None, "", "did not finish within 300 s"
        )
    except OSError as exc:
        raise EnvironmentProblem(
            f"{python}: cannot run the target's interpreter: {exc}"
        ) from None
    report: dict[str, Any] = {}
    for line in reversed(proc.stdout.splitlines()):
        try:
            report = json.loads(line)
            break
        except ValueError:
            continue
    output = _tail(proc.stdout + proc.stderr, 15)
    if proc.returncode == 0 and report:
        managers = ", ".join(f"{k}={v}" for k, v in report.get("managers", {}).items())
        lazy = report.get("lazy") or []
        later = f"; built on first access: {', '.join(lazy)}" if lazy else ""
        return CommandResult(
            "factory", call, "ok", 0, output, f"returned managers: {managers}{later}"
        )
    if report.get("problems"):
        message = "; ".join(report["problems"])
    elif report and not report.get("managers") and not report.get("lazy"):
        message = f"{config.factory_function}() returned no managers"
    else:
        last = _error_lines(proc.stderr or proc.stdout)
        message = _one_line(last[-1]) if last else f"exited {proc.returncode}"
    return CommandResult(
        "factory",
        call,
        "failed",
        proc.returncode,
        output,
        f"{config.factory_module}: {message}",
    )


# --------------------------------------------------------------------------- which tests touch the DB


def _decorator_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _fixture_info(
    func: ast.FunctionDef | ast.AsyncFunctionDef,
) -> tuple[str, bool] | None:
    for deco in func.decorator_list:
        if _decorator_name(deco) == "fixture":
            name, autouse = func.name, False
            if isinstance(deco, ast.Call):
                for kw in deco.keywords:
                    if kw.arg == "name" and isinstance(kw.value, ast.Constant):
                        name = str(kw.value.value)
                    if kw.arg == "autouse" and isinstance(kw.value, ast.Constant):
                        autouse = bool(kw.value.value)
            return name, autouse
    return None


def _usefixtures(decorators: Iterable[ast.expr]) -> list[str]:
    names = []
    for deco in decorators:
        if isinstance(deco, ast.Call) and _decorator_name(deco) == "usefixtures":
            names += [
                a.value
                for a in deco.args
                if isinstance(a, ast.Constant) and isinstance(a.value, str)
            ]
    return names


def _params(func: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    args = func.args
    return [
        a.arg
        for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]
        if a.arg not in ("self", "cls")
    ]


def _used_names(node: ast.AST) -> set[str]:
    names: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            names.add(sub.attr)
    return names


def _is_test_file(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return name == "conftest.py" or (
        name.startswith("test_") or name.endswith("_test.py")
    )


@dataclass
class DbMap:
    """Which fixtures and tests touch the database (see the module docstring)."""

    fixtures: set[str] = field(default_factory=set)
    tests: dict[str, bool] = field(
        default_factory=dict
    )  # "path::Class::func" -> touches

    def touches(self, node_id: str) -> bool:
        base = node_id.split("[", 1)[0]
        return self.tests.get(base, True)


def analyze_db_usage(project: Project) -> DbMap:
    config = project.config
    files = project.python_files()
    trees: dict[str, ast.Module] = {}

    def tree(rel: str) -> ast.Module | None:
        if rel not in trees:
            try:
                trees[rel] = ast.parse(project.read_bytes(rel))
            except (SyntaxError, ValueError):
                trees[rel] = None  # type: ignore[assignment]
        return trees[rel]

    # manager classes: subclasses (transitively) of the base manager anywhere in the package
    bases: dict[str, set[str]] = {}
    package_prefix = config.package.rstrip("/") + "/"
    for rel in project.grep(
        [f for f in files if f.startswith(package_prefix)], "class "
    ):
        module = tree(rel)
        if module is None:
            continue
        for node in ast.walk(module):
            if isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, set()).update(
                    _decorator_name(b) for b in node.bases
                )
    managers = {config.base_manager_class}
    grew = True
    while grew:
        grew = False
        for name, parents in bases.items():
            if name not in managers and parents & managers:
                managers.add(name)
                grew = True

    database_pkg = Config.module_name(config.session_module).rsplit(".", 1)[0]
    markers_base = {
        config.session_fixture,
        config.session_context_fixture,
        config.factory_function,
        config.database_manager_class,
        config.session_context_class,
        *config.removed_session_apis,
        *managers,
    }

    test_files = [f for f in files if _is_test_file(f)]
    # fixtures live in test files and conftests, and in any module those pull in
    # (``pytest_plugins``, star imports): every file that mentions fixtures is read
    scanned = sorted(set(test_files) | set(project.grep(files, "fixture")))
    fixture_defs: list[
        tuple[str, bool, set[str], set[str]]
    ] = []  # name, autouse, params, names
    module_markers: dict[str, set[str]] = {}
    for rel in scanned:
        module = tree(rel)
        if module is None:
            continue
        markers = set(markers_base)
        for node in ast.walk(module):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.split(".")[0] == "sqlalchemy" or node.module.startswith(
                    database_pkg
                ):
                    markers.update((a.asname or a.name) for a in node.names)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "sqlalchemy":
                        markers.add((alias.asname or alias.name).split(".")[0])
        module_markers[rel] = markers
        for node in ast.walk(module):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                info = _fixture_info(node)
                if info:
                    body = _used_names(ast.Module(body=node.body, type_ignores=[]))
                    fixture_defs.append(
                        (info[0], info[1], set(_params(node)), body & markers)
                    )

    db_fixtures = {config.session_fixture, config.session_context_fixture}
    for name, _autouse, _params_, used in fixture_defs:
        if used:
            db_fixtures.add(name)
    grew = True
    while grew:
        grew = False
        for name, _autouse, params, _used in fixture_defs:
            if name not in db_fixtures and params & db_fixtures:
                db_fixtures.add(name)
                grew = True

    result = DbMap(fixtures=db_fixtures)
    for rel in test_files:
        module = trees.get(rel)
        if module is None or rel.endswith("conftest.py"):
            continue
        markers = module_markers[rel]

        _visit_tests(result, db_fixtures, markers, rel, module.body, [], [])
    return result


def _visit_tests(
    result: DbMap,
    db_fixtures: set[str],
    markers: set[str],
    rel: str,
    body: list[ast.stmt],
    prefix: list[str],
    inherited: list[str],
) -> None:
    for node in body:
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            uses = inherited + _usefixtures(node.decorator_list)
            _visit_tests(
                result, db_fixtures, markers, rel, node.body, [*prefix, node.name], uses
            )
        elif isinstance(
            node, (ast.FunctionDef, ast.AsyncFunctionDef)
        ) and node.name.startswith("test"):
            requested = (
                set(_params(node))
                | set(inherited)
                | set(_usefixtures(node.decorator_list))
            )
            used = _used_names(ast.Module(body=node.body, type_ignores=[]))
            touches = bool(requested & db_fixtures) or bool(used & markers)
            result.tests["::".join([rel, *prefix, node.name])] = touches


# --------------------------------------------------------------------------- baseline


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


def tree_hash(project: Project) -> str:
    """A hash of every Python file of the target (what the baseline was taken on)."""
    digest = hashlib.sha256()
    for rel in project.python_files():
        digest.update(rel.encode() + b"\0" + project.read_bytes(rel) + b"\0")
    return "sha256:" + digest.hexdigest()[:16]


def load_baseline(root: Path) -> Baseline | None:
    path = baseline_path(root)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:
        return None
    if data.get("version") != BASELINE_VERSION:
        return None
    try:
        return Baseline.from_dict(data)
    except (KeyError, TypeError):
        return None


def record_baseline(
    project: Project,
    python: str,
    *,
    on_step: Callable[[str], None] | None = None,
) -> Baseline:
    """Run the suite and the smoke command on the tree as it is now and keep the result."""
    root = project.root
    if on_step:
        on_step("running the target's tests for the baseline")
    suite = run_suite(root, python, project.config)
    if on_step:
        on_step("running the application's smoke command for the baseline")
    smoke = run_smoke(root, python, project.config)
    db = analyze_db_usage(project)
    baseline = Baseline(
        suite=suite,
        smoke=smoke,
        db_fixtures=sorted(db.fixtures),
        touches_db=db.tests,
        taken_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        tree=tree_hash(project),
        python=python,
    )
    path = baseline_path(root)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(baseline.as_dict(), indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return baseline


# --------------------------------------------------------------------------- gates


@dataclass
class TestChange:
    __test__ = False

    id: str
    before: str  # state at baseline (passed/skipped/<kind>/not run)
    after: str  # state now
    judgement: str  # expected | accepted | unexpected | regression | fixed | pre-existing | new
    message: str = ""

    @property
    def bad(self) -> bool:
        return self.judgement in ("unexpected", "regression")


@dataclass
class GateResult:
    phase: int
    title: str
    expectation: str
    verdict: str = "ok"  # ok | failed
    rows: list[tuple[str, int, int]] = field(
        default_factory=list
    )  # state, baseline, now
    changes: list[TestChange] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    pre_existing: list[str] = field(default_factory=list)
    commands: list[CommandResult] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    duration: float = 0.0
    baseline_taken_at: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "title": self.title,
            "expectation": self.expectation,
            "verdict": self.verdict,
            "counts": [{"state": s, "baseline": b, "now": n} for s, b, n in self.rows],
            "changed_tests": [asdict(c) for c in self.changes],
            "fixed": self.fixed,
            "pre_existing_failures": self.pre_existing,
            "commands": [asdict(c) for c in self.commands],
            "checks": self.checks,
            "problems": self.problems,
            "messages": self.messages,
            "duration": round(self.duration, 3),
            "baseline_taken_at": self.baseline_taken_at,
        }


def expectation_text(phase: int) -> str:
    if phase in STRICT_PHASES or phase not in EXPECTED_KINDS:
        return "no test that passed at baseline may fail now"
    kinds = ", ".join(sorted(EXPECTED_KINDS[phase]))
    return f"new failures must touch the database and relate to it (expected kinds: {kinds})"


def _covering_collection_error(
    test_id: str, errors: list[TestOutcome]
) -> TestOutcome | None:
    path = test_id.split("::", 1)[0]
    for err in errors:
        if err.id == "" or path == err.id or path.startswith(err.id.rstrip("/") + "/"):
            return err
    return None


def judge(
    phase: int,
    title: str,
    baseline: Baseline,
    current: SuiteRun,
    db_now: DbMap | None = None,
) -> GateResult:
    """Compare a run with the baseline under the phase's expectation (no I/O)."""
    gate = GateResult(
        phase, title, expectation_text(phase), baseline_taken_at=baseline.taken_at
    )
    strict = phase in STRICT_PHASES or phase not in EXPECTED_KINDS
    expected = EXPECTED_KINDS.get(phase, frozenset())
    db_base = baseline.db_map
    base_tests = baseline.suite.tests
    now_tests = current.tests
    errors_now = current.collection_errors

    def touches(test_id: str) -> bool:
        base = test_id.split("[", 1)[0]
        if base in db_base.tests:
            return db_base.tests[base]
        if db_now is not None and base in db_now.tests:
            return db_now.tests[base]
        return True

    def judge_new_failure(test_id: str, outcome: TestOutcome) -> tuple[str, str]:
        kind = outcome.kind or "other"
        if strict:
            return "regression", f"passed at baseline, now {kind}"
        if kind in ALWAYS_UNEXPECTED:
            return (
                "unexpected",
                f"{kind} is never an expected consequence of phase {phase}",
            )
        if outcome.collection:
            return (
                ("expected", "collection error of an expected kind")
                if kind in expected
                else (
                    "unexpected",
                    f"collection error of kind {kind}",
                )
            )
        if not touches(test_id):
            return "unexpected", "a test that touches no database fails now"
        if (
            kind == "missing-fixture"
            and outcome.detail
            and outcome.detail not in db_base.fixtures
        ):
            return (
                "unexpected",
                f"fixture {outcome.detail!r} is missing, but it is not a database fixture",
            )
        if kind in expected:
            return "expected", KIND_HELP[kind]
        if kind in PLAN_KINDS:
            later = min(n for n, kinds in EXPECTED_KINDS.items() if kind in kinds)
            return (
                "unexpected",
                f"{kind} is not a consequence of phase {phase} (docs/plan.md expects it from phase {later} on)",
            )
        return (
            "accepted",
            f"{kind} in a test that touches the database (PLAN: failures relate to session handling)",
        )

    for test_id in sorted(set(base_tests) | set(now_tests)):
        before = base_tests.get(test_id)
        after = now_tests.get(test_id)
        if after is None:
            if before is None or not before.ok:
                continue  # failed before and is gone (e.g. a collection error that is fixed)
            err = _covering_collection_error(test_id, errors_now)
            if err is not None:
                judgement, why = judge_new_failure(err.id or test_id, err)
                gate.changes.append(
                    TestChange(
                        test_id,
                        before.state,
                        f"not run ({err.state})",
                        judgement,
                        err.message or why,
                    )
                )
            else:
                gate.changes.append(
                    TestChange(
                        test_id,
                        before.state,
                        "not run",
                        "regression" if strict else "unexpected",
                        "ran at baseline, not collected now and no collection error explains it",
                    )
                )
            continue
        if before is None:
            if after.ok:
                continue
            judgement, why = judge_new_failure(test_id, after)
            message = (
                after.message
                if judgement in ("expected", "accepted")
                else f"{why}: {after.message}"
            )
            gate.changes.append(
                TestChange(test_id, "-", after.state, judgement, message)
            )
            continue
        if before.ok and after.ok:
            if before.outcome == "passed" and after.outcome == "skipped" and strict:
                gate.changes.append(
                    TestChange(
                        test_id, "passed", "skipped", "regression", after.message
                    )
                )
            continue
        if not before.ok and after.ok:
            if after.outcome == "passed":
                gate.fixed.append(test_id)
                gate.changes.append(
                    TestChange(test_id, before.state, after.state, "fixed", "")
                )
            continue
        if not before.ok and not after.ok:
            gate.pre_existing.append(test_id)
            if before.state != after.state:
                gate.changes.append(
                    TestChange(
                        test_id,
                        before.state,
                        after.state,
                        "pre-existing",
                        "failed at baseline too; " + after.message,
                    )
                )
            continue
        judgement, why = judge_new_failure(test_id, after)
        message = (
            after.message
            if judgement in ("expected", "accepted")
            else f"{why}: {after.message}"
        )
        gate.changes.append(
            TestChange(test_id, before.state, after.state, judgement, message)
        )

    # counts by state
    base_counts = baseline.suite.counts()
    now_counts = current.counts()
    missing = sum(1 for t in base_tests if t not in now_tests)
    order = ["passed", "skipped", *KINDS]
    for state in order:
        b, n = base_counts.get(state, 0), now_counts.get(state, 0)
        if b or n:
            gate.rows.append((state, b, n))
    if missing:
        gate.rows.append(("not run", 0, missing))
    gate.rows.append(("total", len(base_tests), len(now_tests)))

    bad = [c for c in gate.changes if c.bad]
    if bad:
        gate.problems.append(
            f"{len(bad)} test(s) changed in a way phase {phase} does not explain: "
            + ", ".join(c.id for c in bad[:5])
            + (" …" if len(bad) > 5 else "")
        )
    if gate.fixed:
        gate.messages.append(
            f"{len(gate.fixed)} test(s) that failed at baseline pass now"
        )
    if gate.pre_existing:
        gate.messages.append(
            f"{len(gate.pre_existing)} failure(s) were already there at baseline (pre-existing)"
        )
    if not base_tests:
        gate.messages.append(
            "the baseline has no tests: the suite proves nothing about this phase"
        )
    gate.verdict = "failed" if gate.problems else "ok"
    return gate


def judge_command(
    gate: GateResult, result: CommandResult, baseline_result: CommandResult | None
) -> None:
    """Add the smoke command (or the factory check) to a gate."""
    gate.commands.append(result)
    if result.status == "skipped":
        gate.messages.append(f"{result.name}: skipped: {result.message}")
        return
    if result.ok:
        return
    if baseline_result is not None and baseline_result.status == "failed":
        gate.messages.append(
            f"{result.name}: failed at baseline too (pre-existing): {result.message}"
        )
        return
    gate.problems.append(f"{result.name}: {result.message}")
    gate.verdict = "failed"


def _run_checks(project: Project) -> list[dict[str, Any]] | None:
    if importlib.util.find_spec(f"{__package__}.check") is None:
        return None
    check = importlib.import_module(f"{__package__}.check")
    results = check.run_checks(project)
    return [check_as_dict(r) for r in results]


def check_as_dict(result: Any) -> dict[str, Any]:
    """A CheckResult as plain data, tolerant of its exact shape."""
    if hasattr(result, "as_dict"):
        data = dict(result.as_dict())
    elif hasattr(result, "__dataclass_fields__"):
        data = asdict(result)
    else:
        data = dict(vars(result))
    ok = data.get("ok", data.get("passed"))
    if ok is None:
        failures = data.get("failures", data.get("locations", data.get("problems", [])))
        ok = not failures
    data["ok"] = bool(ok)
    return json.loads(json.dumps(data, default=str))


def run_gate(
    project: Project,
    phase: int,
    title: str,
    baseline: Baseline,
    python: str,
    *,
    on_step: Callable[[str], None] | None = None,
) -> GateResult:
    """Run phase ``phase``'s verification on the tree as it is on disk now."""
    started = time.monotonic()
    root = project.root
    config = project.config
    if on_step:
        on_step(f"phase {phase}: running the target's tests")
    current = run_suite(root, python, config)
    db_now = analyze_db_usage(Project(root, config))
    gate = judge(phase, title, baseline, current, db_now)
    if on_step:
        on_step(f"phase {phase}: running the application's smoke command")
    judge_command(gate, run_smoke(root, python, config), baseline.smoke)
    if phase == 3:
        if on_step:
            on_step("phase 3: calling the factory on a real session")
        judge_command(gate, run_factory_check(root, python, config), None)
    if phase == 6:
        if on_step:
            on_step("phase 6: checking the end-state invariants")
        checks = _run_checks(Project(root, config))
        if checks is None:
            gate.messages.append(
                "check: not available in this installation (refactor_tool.check is missing)"
            )
        else:
            gate.checks = checks
            failing = [c for c in checks if not c["ok"]]
            if failing:
                gate.problems.append(
                    f"{len(failing)} end-state invariant(s) fail (see `refactor-tool check`)"
                )
                gate.verdict = "failed"
    gate.duration = time.monotonic() - started
    return gate
