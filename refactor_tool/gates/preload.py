"""pytest processes started from a preloaded interpreter (see ``preload_server.py``).

Every gate runs the target's suite in fresh pytest processes; each would import pytest, its
plugins and the target's third-party dependencies again (about as long as collecting a small
suite). A :class:`Preloaded` server imports those once, in the target's interpreter and
environment, and forks a process per run: the tests still run in a new process, on the tree
as it is on disk, and import every module of the target anew.

Only where ``fork`` is safe (Linux); elsewhere, or if the server cannot start, the runner
starts ``python -m pytest`` itself.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

#: seconds the server may take to import what it preloads
START_TIMEOUT = 120.0


def supported() -> bool:
    return sys.platform.startswith("linux") and hasattr(os, "fork")


class PreloadedProcess:
    """A forked pytest run, with the part of ``subprocess.Popen``'s interface the runner uses."""

    def __init__(self, server: Preloaded, pid: int) -> None:
        self.server = server
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        code = self.server.wait_for(self.pid, timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"pytest (pid {self.pid})", timeout or 0)
        self.returncode = code
        return code

    def kill(self) -> None:
        for kill in (os.killpg, os.kill):
            try:
                kill(self.pid, signal.SIGKILL)
                return
            except OSError:
                continue


class Preloaded:
    """One server: ``spawn`` forks a pytest run; ``close`` stops the server and its runs."""

    def __init__(
        self, python: str, env: Mapping[str, str], modules: Sequence[str]
    ) -> None:
        self._cwd = tempfile.TemporaryDirectory(prefix="refactor-tool-preload-")
        source = (Path(__file__).with_name("preload_server.py")).read_text(
            encoding="utf-8"
        )
        self.proc = subprocess.Popen(
            [python, "-c", source, json.dumps(list(modules))],
            cwd=self._cwd.name,  # an empty directory: nothing of the target is importable
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._lock = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self._exits: dict[int, int] = {}
        self._ready: dict[str, Any] | None = None
        self._closed = False
        self._next = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        with self._lock:
            self._lock.wait_for(
                lambda: self._ready is not None or self._closed, START_TIMEOUT
            )
        if self._ready is None:
            self.close()
            raise OSError("the preloading server did not start")
        self.preloaded: list[str] = list(self._ready.get("preloaded", []))

    def _read(self) -> None:
        out: IO[bytes] = self.proc.stdout  # type: ignore[assignment]
        for raw in out:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            with self._lock:
                if message.get("ready"):
                    self._ready = message
                elif "run" in message:
                    self._replies[int(message["run"])] = message
                elif "pid" in message:
                    self._exits[int(message["pid"])] = int(message["code"])
                self._lock.notify_all()
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def alive(self) -> bool:
        return not self._closed and self.proc.poll() is None

    def spawn(
        self,
        argv: Sequence[str],
        cwd: Path,
        env: Mapping[str, str],
        output: Path,
        *,
        code: str | None = None,
        errors: Path | None = None,
    ) -> PreloadedProcess:
        """Fork ``python -m pytest ARGV`` (``argv`` without the interpreter and ``-m pytest``),
        or ``python -c CODE ARGV`` when ``code`` is given; stderr goes to ``errors`` if
        given, else to ``output`` with stdout."""
        with self._lock:
            self._next += 1
            run = self._next
        request = {
            "run": run,
            "cwd": str(cwd),
            "env": dict(env),
            "argv": list(argv),
            "output": str(output),
            "code": code,
            "errors": str(errors) if errors is not None else None,
        }
        stdin: IO[bytes] = self.proc.stdin  # type: ignore[assignment]
        try:
            stdin.write(json.dumps(request).encode() + b"\n")
            stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise OSError(f"the preloading server stopped: {exc}") from None
        with self._lock:
            self._lock.wait_for(
                lambda: run in self._replies or self._closed, START_TIMEOUT
            )
            reply = self._replies.pop(run, None)
        if reply is None or "pid" not in reply:
            raise OSError((reply or {}).get("error", "the preloading server stopped"))
        return PreloadedProcess(self, int(reply["pid"]))

    def exit_code(self, pid: int) -> int | None:
        with self._lock:
            if pid in self._exits:
                return self._exits[pid]
            return -signal.SIGKILL if self._closed else None

    def wait_for(self, pid: int, timeout: float | None) -> int | None:
        with self._lock:
            self._lock.wait_for(lambda: pid in self._exits or self._closed, timeout)
        return self.exit_code(pid)

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()  # end of input: the server stops its runs and exits
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._cwd.cleanup()


_SERVERS: dict[tuple[Any, ...], Preloaded] = {}


def server_for(
    python: str, env: Mapping[str, str], modules: Sequence[str]
) -> Preloaded | None:
    """The running server for this interpreter, environment and module list (started on
    first use, stopped when the tool exits); None where it cannot run."""
    if not supported():
        return None
    key = (python, tuple(sorted(env.items())), tuple(modules))
    server = _SERVERS.get(key)
    if server is not None and server.alive():
        return server
    try:
        server = Preloaded(python, env, modules)
    except OSError:
        return None
    _SERVERS[key] = server
    return server


@atexit.register
def close_all() -> None:
    while _SERVERS:
        _, server = _SERVERS.popitem()
        server.close()
