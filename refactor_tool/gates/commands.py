"""Commands the gates run in the target's interpreter besides its suite: the application's
smoke command (phase 1 of docs/plan.md: ``game list`` on an empty database in a scratch home, found
through the target's ``[project.scripts]`` entry point) and phase 3's factory check (the
generated ``create_all_managers`` imported and called on a real session).

Both run only the standard library and the target itself in that interpreter.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..model.config import Config, project_scripts
from .results import one_line as _one_line
from .preload import server_for
from .runner import BYTECODE, EnvironmentProblem, run_env
from .runner import tail as _tail


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


def _error_lines(text: str) -> list[str]:
    """The last line of a traceback (the exception itself)."""
    stripped = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return stripped[-1:] if stripped else []


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


_TIMEOUT = 300


def _run_script(
    python: str,
    script: str,
    payload: str,
    root: Path,
    extra: dict[str, str] | None = None,
    preload: Sequence[str] | None = None,
) -> subprocess.CompletedProcess[str] | None:
    """``python -c script payload`` in the target, in its environment and ``extra`` (None: it
    did not finish in time). With ``preload`` (the target's third-party modules) it is
    forked from the server that preloaded them, as the suite's processes are (where that
    server runs); else it is a new process."""
    env = run_env(root, BYTECODE, extra)
    server = (
        server_for(python, run_env(root, BYTECODE), preload)
        if preload is not None
        else None
    )
    if server is not None:
        with tempfile.TemporaryDirectory(prefix="refactor-tool-command-") as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            try:
                child = server.spawn([payload], root, env, out, code=script, errors=err)
            except OSError:
                pass  # the server stopped: a process of its own
            else:
                try:
                    code = child.wait(timeout=_TIMEOUT)
                except subprocess.TimeoutExpired:
                    child.kill()
                    return None
                read = functools.partial(Path.read_text, encoding="utf-8", errors="replace")
                return subprocess.CompletedProcess(
                    [python, "-c", script, payload], code, read(out), read(err)
                )
    try:
        return subprocess.run(
            [python, "-c", script, payload],
            check=False,
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return None
    except OSError as exc:
        raise EnvironmentProblem(f"{python}: cannot run the target's interpreter: {exc}") from None


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


def run_smoke(
    root: Path, python: str, config: Config, preload: Sequence[str] | None = None
) -> CommandResult:
    """The app's smoke command (``game list`` on an empty database) in a scratch home;
    ``preload``: as for :func:`_run_script`."""
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
        payload = json.dumps([spec, [config.script, *config.smoke_args]])
        proc = _run_script(
            python, _RUNNER, payload, root, smoke_env(config, Path(tmp)), preload
        )
        if proc is None:
            return CommandResult(
                "smoke", display, "failed", None, "", f"did not finish within {_TIMEOUT} s"
            )
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


def run_factory_check(
    root: Path, python: str, config: Config, preload: Sequence[str] | None = None
) -> CommandResult:
    """Phase 3: import the factory in the target's interpreter and call it on a real session;
    ``preload``: as for :func:`_run_script`."""
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
    proc = _run_script(python, _FACTORY_CHECK, payload, root, None, preload)
    if proc is None:
        return CommandResult(
            "factory", call, "failed", None, "", f"did not finish within {_TIMEOUT} s"
        )
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
