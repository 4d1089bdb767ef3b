"""Running the target's pytest: one process, pytest-xdist, or the tool's split by test module.

The suite runs in the target's interpreter with the plugin of ``plugin.py`` loaded (``-p``
from a temporary directory on ``PYTHONPATH``), which writes one JSON line per test and phase.
The runner follows those lines while pytest runs, to report progress (tests done of collected,
failures so far), and reads every result from them once pytest has finished: nothing is read
from pytest's text output.

With ``jobs`` > 1 the suite is spread over that many processes: by pytest-xdist (``-n``) when
the target's interpreter has it, otherwise by the plugin itself (every process collects the
suite and keeps one group of its test modules; the groups are balanced by the seconds each
module took in an earlier run, or by test count; a module's tests stay together and in order).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..model.config import Config, ConfigError, load_config
from .preload import PreloadedProcess, server_for
from .results import (
    SuiteRun,
    TestOutcome,
    classify,
    display_message,
    outcomes_from_records,
)

PLUGIN_MODULE = "refactor_tool_gate_plugin"
POLL_SECONDS = 0.1


class Cancelled(Exception):
    """A run of the suite stopped before its end because its caller no longer needs it."""


class EnvironmentProblem(Exception):
    """The interpreter given for the target cannot run its tests (bad input, exit 2)."""


@dataclass
class SuiteProgress:
    """Where a running suite is: for a progress bar or a plain line."""

    done: int = 0  # tests finished (every phase of them reported)
    collected: int | None = None  # tests to run, once every process has collected
    failed: int = 0  # tests (and collection errors) that failed so far
    elapsed: float = 0.0
    finished: bool = False


ProgressCallback = Callable[[SuiteProgress], None]


# --------------------------------------------------------------------------- interpreters


def default_python(root: Path) -> str:
    """The interpreter of the target's own virtual environment (``.venv``, ``venv``, else
    any directory of the target's top level with a ``pyvenv.cfg``), else the tool's own."""
    try:
        others = sorted(
            child.name
            for child in root.iterdir()
            if child.name not in (".venv", "venv") and (child / "pyvenv.cfg").is_file()
        )
    except OSError:
        others = []
    for name in (".venv", "venv", *others):
        for rel in ("bin/python", "Scripts/python.exe"):
            candidate = root / name / rel
            if candidate.exists():
                return str(candidate)
    return sys.executable


def target_env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    try:
        source_root = load_config(root).source_root
    except ConfigError:
        source_root = ""
    package_root = str(root / source_root) if source_root else ""
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(root), package_root, env.get("PYTHONPATH", "")) if p
    )
    env["PYTHONDONTWRITEBYTECODE"] = (
        "1"  # keep the target's tree clean (no __pycache__)
    )
    for name in (
        "PYTEST_ADDOPTS",
        "PYTEST_CURRENT_TEST",
        "PYTEST_XDIST_WORKER",
        "PYTEST_XDIST_WORKER_COUNT",
        "PYTEST_XDIST_TESTRUNUID",
    ):
        env.pop(name, None)
    for name in list(env):
        if name.startswith("REFACTOR_TOOL_"):
            del env[name]
    if extra:
        env.update(extra)
    return env


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


@functools.lru_cache(maxsize=None)
def has_xdist(python: str) -> bool:
    """Whether the target's interpreter can run pytest-xdist."""
    try:
        proc = subprocess.run(
            [python, "-c", "import xdist"],
            check=False,
            capture_output=True,
            timeout=60,
            env=target_env(Path.cwd()),
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def choose_mode(python: str, jobs: int, mode: str = "auto") -> tuple[str, int]:
    """(serial | xdist | split, processes) for a run over ``jobs`` processes."""
    if jobs <= 1 or mode == "serial":
        return "serial", 1
    if mode == "auto":
        mode = "xdist" if has_xdist(python) else "split"
    return mode, jobs


# --------------------------------------------------------------------------- bytecode


def cache_home() -> Path:
    """The tool's cache directory: ``$REFACTOR_TOOL_CACHE_DIR``, else the user's cache."""
    explicit = os.environ.get("REFACTOR_TOOL_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return Path(base) / "refactor-tool"


class BytecodeCache:
    """Compiled modules of the target's runs, kept outside its tree (``PYTHONPYCACHEPREFIX``).

    Every run of the suite would otherwise compile the target's modules again (and pytest
    rewrite its test modules' assertions again): the tree must stay free of ``__pycache__``.
    The cache lives in the user's cache directory (``cache_home()/pycache``), so that the
    target's dependencies are compiled once, not once per run.

    Python checks a cached module by its source's size and modification time in whole
    seconds, which a rewrite in the same second with the same size would pass. So the cache
    keeps, per target, the size and modification time in nanoseconds of every module of the
    target it has seen, and before each run drops what it holds for a module whose size or
    time differs, or that it has not seen there before. Mirrors of targets that no longer
    exist are removed.
    """

    SKIP_DIRS = frozenset(
        {
            ".git",
            ".hg",
            ".venv",
            "venv",
            ".tox",
            ".nox",
            "node_modules",
            ".refactor-tool",
            "__pycache__",
            ".pytest_cache",
        }
    )

    def __init__(self, home: Path | None = None) -> None:
        self.home = home
        self.directory: Path | None = None
        self.pruned = False

    def _open(self) -> Path:
        if self.directory is None:
            home = self.home or cache_home()
            try:
                (home / "pycache").mkdir(parents=True, exist_ok=True)
                (home / "pycache-sources").mkdir(exist_ok=True)
                self.home, self.directory = home, home / "pycache"
            except OSError:
                scratch = Path(tempfile.mkdtemp(prefix="refactor-tool-cache-"))
                atexit.register(shutil.rmtree, scratch, True)
                (scratch / "pycache").mkdir()
                (scratch / "pycache-sources").mkdir()
                self.home, self.directory = scratch, scratch / "pycache"
        return self.directory

    def _mirror(self, directory: str) -> Path:
        assert self.directory is not None
        return self.directory.joinpath(*Path(os.path.abspath(directory)).parts[1:])

    def _prune(self) -> None:
        """Drop the mirrors of targets that are gone (scratch copies, say)."""
        assert self.home is not None
        self.pruned = True
        for record in (self.home / "pycache-sources").glob("*.json"):
            try:
                top = json.loads(record.read_text(encoding="utf-8"))["root"]
            except (OSError, ValueError, KeyError, TypeError):
                record.unlink(missing_ok=True)
                continue
            if not os.path.isdir(top):
                shutil.rmtree(self._mirror(top), ignore_errors=True)
                record.unlink(missing_ok=True)

    def prepare(self, root: Path) -> Path:
        directory = self._open()
        assert self.home is not None
        if not self.pruned:
            self._prune()
        for top in sorted({os.path.abspath(root), os.path.realpath(root)}):
            record = (
                self.home
                / "pycache-sources"
                / (hashlib.sha256(top.encode()).hexdigest()[:24] + ".json")
            )
            try:
                seen = json.loads(record.read_text(encoding="utf-8")).get("files", {})
            except (OSError, ValueError, AttributeError):
                seen = {}
            now: dict[str, list[int]] = {}
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames[:] = [d for d in dirnames if d not in self.SKIP_DIRS]
                for name in filenames:
                    if not name.endswith(".py"):
                        continue
                    path = os.path.join(dirpath, name)
                    try:
                        info = os.stat(path)
                    except OSError:
                        continue
                    now[path] = [info.st_mtime_ns, info.st_size]
                    if seen.get(path) != now[path]:
                        self._forget(path)
            tmp = record.with_name(f"{record.stem}.{os.getpid()}.tmp")
            try:
                tmp.write_text(
                    json.dumps({"root": top, "files": now}), encoding="utf-8"
                )
                os.replace(tmp, record)
            except OSError:
                pass
        return directory

    def _forget(self, source: str) -> None:
        parent, name = os.path.split(source)
        cached = self._mirror(parent)
        stem = name[: -len(".py")]
        if cached.is_dir():
            for pyc in cached.glob(f"{stem}.*.pyc"):
                pyc.unlink(missing_ok=True)


BYTECODE = BytecodeCache()


# --------------------------------------------------------------------------- running


def _plugin_source() -> str:
    return (Path(__file__).with_name("plugin.py")).read_text(encoding="utf-8")


def pytest_command(python: str, config: Config, extra: Sequence[str] = ()) -> list[str]:
    return [
        python,
        "-m",
        "pytest",
        "-p",
        PLUGIN_MODULE,
        "-p",
        "no:cacheprovider",
        "-q",
        # the plugin records each failure's type and message; pytest's own tracebacks would
        # cost a quarter of a run that fails most of its tests (the target's own options,
        # after these, still win)
        "--tb=no",
        "--continue-on-collection-errors",
        *config.pytest_args,
        *extra,
    ]


class _Follower:
    """Reads the JSON lines a process appends to its results file, as they come."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[str] | None = None
        self.partial = ""
        self.records: list[dict[str, Any]] = []

    def poll(self) -> list[dict[str, Any]]:
        if self.handle is None:
            try:
                self.handle = open(self.path, encoding="utf-8", errors="replace")  # noqa: SIM115
            except FileNotFoundError:
                return []
        chunk = self.handle.read()
        if not chunk:
            return []
        text = self.partial + chunk
        lines = text.split("\n")
        self.partial = lines.pop()
        new = []
        for line in lines:
            if not line.strip():
                continue
            try:
                new.append(json.loads(line))
            except ValueError:
                continue
        self.records.extend(new)
        return new

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


class _Tally:
    """Progress from the records seen so far, over every process of a run."""

    def __init__(self, processes: int) -> None:
        self.collected: dict[int, int] = {}
        self.processes = processes
        self.done: set[str] = set()
        self.failed: set[str] = set()

    def add(self, process: int, record: dict[str, Any]) -> None:
        event = record.get("event")
        if event == "collected":
            self.collected[process] = int(record.get("count", 0))
        elif event == "collect-error":
            self.failed.add("collect:" + str(record.get("nodeid", "")))
        elif event == "test":
            node_id = str(record.get("nodeid"))
            if record.get("outcome") == "failed":
                self.failed.add(node_id)
            if record.get("when") == "teardown":
                self.done.add(node_id)

    def progress(self, elapsed: float, finished: bool = False) -> SuiteProgress:
        collected = (
            sum(self.collected.values())
            if len(self.collected) == self.processes
            else None
        )
        return SuiteProgress(
            len(self.done), collected, len(self.failed), elapsed, finished
        )


def run_env(
    root: Path, bytecode: BytecodeCache | None = BYTECODE, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of the target's runs (:func:`target_env` and ``extra``), compiled
    modules kept in ``bytecode`` (outside the target's tree) when given."""
    env = target_env(root, extra)
    if bytecode is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(bytecode.prepare(root))
    return env


def run_suite(
    root: Path,
    python: str,
    config: Config,
    *,
    jobs: int = 1,
    mode: str = "auto",
    select: Sequence[str] = (),
    weights: dict[str, float] | None = None,
    progress: ProgressCallback | None = None,
    bytecode: BytecodeCache | None = BYTECODE,
    preload: Sequence[str] | None = None,
    cancel: threading.Event | None = None,
) -> SuiteRun:
    """Run the target's suite (or the node ids in ``select``) and read every test's result.

    ``jobs``: processes (1: one pytest process); ``mode``: ``auto`` (xdist when the target's
    interpreter has it, else the split by module), ``xdist``, ``split`` or ``serial``.
    ``weights``: seconds per test module from an earlier run, to balance the split.
    ``bytecode``: where the target's compiled modules are kept between runs (``None``: they
    are compiled again). ``preload``: the target's third-party modules: the processes are
    forked from a server that imported them and pytest once (:mod:`.preload`), where it can
    run; ``None``: each process starts from scratch. ``cancel``: once set, the run's
    processes are stopped and :class:`Cancelled` is raised.
    """
    root = Path(root)
    mode, processes = choose_mode(python, jobs, mode)
    if select and mode == "split" and len(select) < 2 * processes:
        mode, processes = (
            "serial",
            1,
        )  # a few tests: another process costs more than it saves
    with tempfile.TemporaryDirectory(prefix="refactor-tool-gate-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / f"{PLUGIN_MODULE}.py").write_text(_plugin_source(), encoding="utf-8")
        weights_file = None
        if mode == "split" and weights:
            weights_file = tmp / "weights.json"
            weights_file.write_text(json.dumps(weights), encoding="utf-8")
        scratch = tmp / "tmp"
        scratch.mkdir()
        server_env = run_env(root, bytecode)
        server = (
            server_for(python, server_env, preload)
            if preload is not None and mode != "xdist"
            else None
        )
        base_env = dict(server_env)
        base_env["PYTHONPATH"] = os.pathsep.join([str(tmp), base_env["PYTHONPATH"]])
        if os.name != "nt":
            base_env["TMPDIR"] = str(scratch)
        extra = ["-n", str(processes)] if mode == "xdist" else []
        runs = processes if mode == "split" else 1
        procs: list[subprocess.Popen[bytes] | PreloadedProcess] = []
        followers: list[_Follower] = []
        outputs: list[Path] = []
        started = time.monotonic()
        try:
            for index in range(runs):
                env = dict(base_env)
                results = tmp / f"results-{index}.jsonl"
                env["REFACTOR_TOOL_RESULTS"] = str(results)
                if mode == "split":
                    env["REFACTOR_TOOL_SHARD"] = f"{index}/{runs}"
                    if weights_file is not None:
                        env["REFACTOR_TOOL_WEIGHTS"] = str(weights_file)
                output = tmp / f"output-{index}.txt"
                outputs.append(output)
                followers.append(_Follower(results))
                command = pytest_command(python, config, [*extra, *select])
                if server is not None:
                    try:
                        procs.append(server.spawn(command[3:], root, env, output))
                        continue
                    except OSError:
                        server = (
                            None  # the server stopped: start the processes directly
                        )
                with open(output, "wb") as out:
                    procs.append(
                        subprocess.Popen(
                            command,
                            cwd=root,
                            env=env,
                            stdout=out,
                            stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL,
                        )
                    )
        except OSError as exc:
            for proc in procs:
                proc.kill()
            raise EnvironmentProblem(
                f"{python}: cannot run the target's interpreter: {exc}"
            ) from None
        tally = _Tally(runs)
        try:
            while True:
                running = [p for p in procs if p.poll() is None]
                for index, follower in enumerate(followers):
                    for record in follower.poll():
                        tally.add(index, record)
                if not running:
                    break
                if cancel is not None and cancel.is_set():
                    raise Cancelled("the run of the suite was cancelled")
                if progress:
                    progress(tally.progress(time.monotonic() - started))
                time.sleep(POLL_SECONDS)
        except BaseException:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
            for proc in procs:
                proc.wait()
            raise
        finally:
            for follower in followers:
                follower.close()
        duration = time.monotonic() - started
        if progress:
            progress(tally.progress(duration, finished=True))
        texts = [p.read_text(encoding="utf-8", errors="replace") for p in outputs]
    records = [r for f in followers for r in f.records]
    codes = [p.returncode for p in procs]
    output = "\n".join(texts)
    if not any(
        r.get("event") in ("test", "collect-error", "collected") for r in records
    ):
        if "No module named pytest" in output:
            raise EnvironmentProblem(
                f"{python}: has no pytest; install the target's test dependencies in that "
                "interpreter or pass --python PATH to one that has them"
            )
    tests, seconds = outcomes_from_records(records, config)
    returncode = _combined_returncode(codes)
    if not tests and returncode not in (0, 5):
        tests[""] = _whole_session_error(output, returncode, config)
    return SuiteRun(
        tests,
        returncode,
        duration,
        tail(output),
        mode=mode,
        jobs=processes,
        module_seconds=seconds,
    )


def _combined_returncode(codes: Sequence[int | None]) -> int | None:
    real = [c for c in codes if c is not None]
    if not real:
        return None
    if 1 in real:
        return 1
    worse = [c for c in real if c not in (0, 1, 5)]
    if worse:
        return max(worse)
    return 0 if 0 in real else 5


_EXCEPTION_LINE = re.compile(
    r"^E\s+((?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Failure|Exit))(?::\s*(.*))?$"
)


def _whole_session_error(
    output: str, returncode: int | None, config: Config
) -> TestOutcome:
    """pytest stopped before the plugin could report anything (it could not even start the
    session, say): one error for the whole suite, from the last exception pytest printed."""
    exc_type, message = "", f"pytest exited with code {returncode}"
    for line in output.splitlines():
        match = _EXCEPTION_LINE.match(line.strip() if line.startswith("E") else "")
        if match:
            exc_type, message = match.group(1), match.group(2) or ""
    return TestOutcome(
        "",
        "error",
        classify(exc_type, message, config, collection=True),
        display_message(exc_type, message),
        collection=True,
        exc_type=exc_type,
    )
