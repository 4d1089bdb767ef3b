"""A pytest plugin that writes every test's result as JSON lines: what the gates read.

This file runs inside the *target's* interpreter, which has pytest but neither this tool nor
libcst nor rich: it uses the standard library and pytest only. The runner copies it into a
temporary directory on ``PYTHONPATH`` and loads it with ``-p``. It is configured by
environment variables:

``REFACTOR_TOOL_RESULTS``
    the file the JSON lines are appended to (flushed line by line, so the tool can follow a
    run while it goes on);
``REFACTOR_TOOL_SHARD``
    ``I/N``: keep only the test modules of group ``I`` of ``N`` (the tool's own split of a
    suite over ``N`` processes when the target has no pytest-xdist); every process collects
    the same tests and computes the same groups, so every module runs in exactly one of them,
    its tests in their usual order;
``REFACTOR_TOOL_WEIGHTS``
    optional: a JSON file ``{module node id: seconds}`` from an earlier run, to balance the
    groups by time instead of by test count.

One line per event:

* ``{"event": "collected", "count": N}``: the tests this process will run;
* ``{"event": "test", "nodeid", "when", "outcome", "exc_type", "message", "fixture_error",
  "fixture", "xfail", "duration"}``: one per test and phase (setup, call, teardown).
  ``exc_type`` is the exception's qualified name (``module.QualName``), ``message`` the first
  line of its message, ``fixture_error`` whether a fixture lookup failed (``fixture``: the
  name that was not found);
* ``{"event": "collect-error", "nodeid", "exc_type", "message"}``: a module (or directory)
  that could not be collected, with the exception that stopped it (a conftest that does not
  import at start-up is reported with its directory as node id);
* ``{"event": "finished", "exitstatus": N}``.

With pytest-xdist only the controller writes: it receives the workers' reports, and the
exception details travel with each report as an attribute.
"""

from __future__ import annotations

import json
import os

import pytest

RESULTS_ENV = "REFACTOR_TOOL_RESULTS"
SHARD_ENV = "REFACTOR_TOOL_SHARD"
WEIGHTS_ENV = "REFACTOR_TOOL_WEIGHTS"
ATTR = "refactor_tool_exc"  # the report attribute that carries the exception details

_out = None
_collected_sent = False


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def _write(record) -> None:
    global _out
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    if _out is None:
        _out = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
    _out.write(json.dumps(record) + "\n")
    _out.flush()


def _qualified(tp) -> str:
    module = getattr(tp, "__module__", "") or ""
    name = getattr(tp, "__qualname__", None) or getattr(tp, "__name__", "?")
    return name if module in ("builtins", "") else f"{module}.{name}"


def _first_line(text) -> str:
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def _original(exc):
    """The exception behind pytest's wrappers (a collection error, a conftest import)."""
    seen = 0
    while exc is not None and seen < 5:
        name = type(exc).__name__
        if name == "ConftestImportFailure" and getattr(exc, "cause", None) is not None:
            exc = exc.cause
        elif name == "CollectError" and exc.__cause__ is not None:
            exc = exc.__cause__
        else:
            break
        seen += 1
    return exc


def _details(exc) -> dict:
    exc = _original(exc)
    info = {
        "exc_type": _qualified(type(exc)),
        "message": "",
        "fixture_error": False,
        "fixture": "",
    }
    if type(exc).__name__ == "FixtureLookupError":
        info["fixture_error"] = True
        msg = getattr(exc, "msg", None)
        argname = getattr(exc, "argname", None) or ""
        if msg is None and argname:
            info["fixture"] = argname
            info["message"] = f"fixture '{argname}' not found"
        else:
            info["message"] = _first_line(msg or "")
        return info
    if isinstance(exc, SyntaxError):
        filename = exc.filename or ""
        if filename and os.path.isabs(filename):
            try:
                filename = os.path.relpath(filename).replace(os.sep, "/")
            except ValueError:
                pass
        where = f" ({filename}, line {exc.lineno})" if filename else ""
        info["message"] = f"{exc.msg}{where}"
        return info
    try:
        info["message"] = _first_line(exc)
    except Exception:  # noqa: BLE001 - a __str__ that raises
        info["message"] = ""
    return info


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and not report.passed:
        if not (report.skipped and not hasattr(report, "wasxfail")):
            setattr(report, ATTR, _details(call.excinfo.value))
    if type(getattr(report, "longrepr", None)).__name__ == "FixtureLookupErrorRepr":
        details = getattr(report, ATTR, None) or {}
        details["fixture_error"] = True
        setattr(report, ATTR, details)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    try:
        report = outcome.get_result()
    except BaseException:  # noqa: BLE001 - pytest reports it itself
        return
    call = report.__dict__.get("call")
    if report.failed and call is not None and call.excinfo is not None:
        setattr(report, ATTR, _details(call.excinfo.value))


@pytest.hookimpl(hookwrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    outcome = yield
    exc = getattr(outcome, "exception", None)
    if exc is None and getattr(outcome, "excinfo", None):
        exc = outcome.excinfo[1]
    if exc is not None:
        if type(exc).__name__ == "ConftestImportFailure":
            path = str(getattr(exc, "path", "") or "")
            rel = ""
            if path:
                try:
                    rel = os.path.relpath(
                        os.path.dirname(path), str(early_config.rootpath)
                    )
                except ValueError:
                    rel = ""
                rel = "" if rel in (".", os.curdir) else rel.replace(os.sep, "/")
            _write({"event": "collect-error", "nodeid": rel, **_details(exc)})


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
        return reason[len("Skipped: ") :] if reason.startswith("Skipped: ") else reason
    return _first_line(longrepr or "")


def pytest_runtest_logreport(report):
    # in an xdist worker the controller writes (it receives this report too)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    details = getattr(report, ATTR, None) or {}
    xfail = hasattr(report, "wasxfail")
    message = details.get("message", "")
    if report.skipped:
        message = ("xfail: " + str(report.wasxfail)) if xfail else _reason(report)
    elif report.failed and not details:
        message = _first_line(report.longrepr or "")
    _write(
        {
            "event": "test",
            "nodeid": report.nodeid,
            "when": report.when,
            "outcome": report.outcome,
            "exc_type": details.get("exc_type", ""),
            "message": message[:500],
            "fixture_error": bool(details.get("fixture_error")),
            "fixture": details.get("fixture", ""),
            "xfail": xfail,
            "duration": round(float(getattr(report, "duration", 0.0) or 0.0), 4),
        }
    )


def pytest_collectreport(report):
    if os.environ.get("PYTEST_XDIST_WORKER") or not report.failed:
        return
    details = getattr(report, ATTR, None) or {}
    _write(
        {
            "event": "collect-error",
            "nodeid": report.nodeid,
            "exc_type": details.get("exc_type", ""),
            "message": (details.get("message") or _first_line(report.longrepr or ""))[
                :500
            ],
            "fixture_error": False,
            "fixture": "",
        }
    )


def _shard():
    spec = os.environ.get(SHARD_ENV, "")
    index, _, count = spec.partition("/")
    try:
        index, count = int(index), int(count)
    except ValueError:
        return None
    return (index, count) if count > 1 and 0 <= index < count else None


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def split_modules(counts, weights, groups):
    """Module ids -> group index: the heaviest module first to the lightest group.

    ``counts``: module -> number of tests, in collection order; ``weights``: module -> seconds
    (optional). The same input gives the same groups in every process.
    """
    known = [weights[m] for m in counts if m in weights]
    per_test = (
        (sum(known) / sum(counts[m] for m in counts if m in weights)) if known else 1.0
    )
    load = {m: weights.get(m, counts[m] * per_test) for m in counts}
    order = sorted(counts, key=lambda m: (-load[m], m))
    totals = [0.0] * groups
    assignment = {}
    for module in order:
        target = min(range(groups), key=lambda g: (totals[g], g))
        assignment[module] = target
        totals[target] += load[module]
    return assignment


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    shard = _shard()
    if shard is None:
        return
    index, count = shard
    counts = {}
    for item in items:
        module = _module(item.nodeid)
        counts[module] = counts.get(module, 0) + 1
    weights = {}
    path = os.environ.get(WEIGHTS_ENV)
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                weights = {str(k): float(v) for k, v in json.load(handle).items()}
        except (OSError, ValueError, AttributeError):
            weights = {}
    assignment = split_modules(counts, weights, count)
    keep = [item for item in items if assignment[_module(item.nodeid)] == index]
    dropped = [item for item in items if assignment[_module(item.nodeid)] != index]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep


def pytest_collection_finish(session):
    global _collected_sent
    if os.environ.get("PYTEST_XDIST_WORKER") or _is_worker(session.config):
        return
    if session.config.pluginmanager.hasplugin("dsession"):
        return  # the xdist controller: the workers' collection is reported below
    _collected_sent = True
    _write({"event": "collected", "count": len(session.items)})


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    global _collected_sent
    if not _collected_sent:
        _collected_sent = True
        _write({"event": "collected", "count": len(ids)})


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("PYTEST_XDIST_WORKER") or _is_worker(session.config):
        return
    _write({"event": "finished", "exitstatus": int(exitstatus)})
    global _out
    if _out is not None:
        _out.close()
        _out = None
