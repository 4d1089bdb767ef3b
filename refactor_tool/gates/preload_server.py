"""A pytest starter that runs in the target's interpreter (standard library only).

Started once per run of the tool with the interpreter the target's suite runs with: it
imports pytest and the third-party modules the target imports (never one of the target's own
modules, which the phases change), then forks one child per pytest run it is asked for, so
that no run pays for those imports again. Each child takes the run's working directory,
environment, output file and arguments, and is the same ``python -m pytest`` process it
replaces from there on.

Protocol, one JSON object per line. In (stdin): ``{"run": id, "cwd", "env", "argv",
"output"}``; end of input stops the server and its children. Out (stdout): ``{"ready": true,
"preloaded": [...], "failed": [...]}`` once, then ``{"run": id, "pid": pid}`` or
``{"run": id, "error": "..."}`` per request and ``{"pid": pid, "code": code}`` when a child
ends.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import sys
import tempfile


def _say(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _child(request: dict) -> None:
    """Become ``python -m pytest ARGV`` (or ``python -c CODE ARGV``, the request has
    ``code``) in the request's directory and environment; stdout goes to the request's
    ``output`` file, stderr to its ``errors`` file if it names one, else to ``output``."""
    code = 3
    try:
        os.setpgid(0, 0)  # the tool stops a run with its process group
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        cwd = request["cwd"]
        os.chdir(cwd)
        env = request["env"]
        os.environ.clear()
        os.environ.update(env)
        tempfile.tempdir = None  # read TMPDIR again
        prefix = env.get("PYTHONPYCACHEPREFIX")
        sys.pycache_prefix = prefix or None
        sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
        # ``python -m`` puts the working directory first; PYTHONPATH entries of this run
        # (the results plugin's directory) come next
        extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:] = [cwd, *extra, *(p for p in sys.path[1:] if p not in extra)]
        out = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        if request.get("errors"):
            err = os.open(request["errors"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(err, 2)
            os.close(err)
        else:
            os.dup2(out, 2)
        os.close(out)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        if request.get("code") is not None:  # ``python -c CODE ARGV``
            sys.argv = ["-c", *request["argv"]]
            namespace = {"__name__": "__main__", "__builtins__": __builtins__}
            exec(compile(request["code"], "<string>", "exec"), namespace)
            code = 0
        else:
            sys.argv = ["pytest", *request["argv"]]
            import pytest

            code = int(pytest.main(request["argv"]))
    except SystemExit as exc:  # as the interpreter ends on it
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            sys.stderr.write(f"{exc.code}\n")
            code = 1
    except BaseException:  # noqa: BLE001 - whatever happens, the child must end here
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main() -> None:
    modules = json.loads(sys.argv[1]) if len(sys.argv) > 1 else []
    preloaded, failed = [], []
    for name in ["pytest", *modules]:
        try:
            importlib.import_module(name)
            preloaded.append(name)
        except BaseException:  # noqa: BLE001 - an optional dependency that is not installed
            failed.append(name)
    _say({"ready": True, "preloaded": preloaded, "failed": failed})
    children: set[int] = set()
    buffer = b""
    stdin = (
        sys.stdin.buffer.raw if hasattr(sys.stdin.buffer, "raw") else sys.stdin.buffer
    )
    while True:
        ready, _, _ = select.select([stdin], [], [], 0.05)
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                children.clear()
                break
            if pid == 0:
                break
            children.discard(pid)
            _say({"pid": pid, "code": os.waitstatus_to_exitcode(status)})
        if not ready:
            continue
        chunk = os.read(stdin.fileno(), 65536)
        if not chunk:
            break
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if not line.strip():
                continue
            request = json.loads(line)
            try:
                pid = os.fork()
            except OSError as exc:
                _say({"run": request.get("run"), "error": str(exc)})
                continue
            if pid == 0:
                _child(request)
            children.add(pid)
            _say({"run": request.get("run"), "pid": pid})
    for pid in children:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


if __name__ == "__main__":
    main()
