"""Test results as the gates see them, and the failure kinds, decided from exception types.

Every result comes from the pytest plugin (``plugin.py``): one JSON line per test and phase
(setup, call, teardown) with the exception's qualified type name and the first line of its
message. A failure's *kind* starts from that type: a ``FixtureLookupError`` is a missing
fixture, a ``SyntaxError`` a syntax error, a ``TypeError`` the missing ``session`` argument
when its message names that argument, an ``AttributeError``/``NameError``/``ImportError`` a
removed session API when its message names one, SQLAlchemy's ``DetachedInstanceError`` (and
its relatives) a detached or stale object, an ``AssertionError`` an assertion.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..model.config import Config

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

SYNTAX_TYPES = frozenset({"SyntaxError", "IndentationError", "TabError"})
IMPORT_TYPES = frozenset({"ImportError", "ModuleNotFoundError"})
#: the exceptions a removed name raises, when their message names it
REMOVED_API_TYPES = IMPORT_TYPES | {"AttributeError", "NameError", "UnboundLocalError"}
#: SQLAlchemy's exceptions for an object no session holds any more, or whose row is gone
DETACHED_TYPES = frozenset(
    {
        "sqlalchemy.orm.exc.DetachedInstanceError",
        "sqlalchemy.orm.exc.ObjectDeletedError",
        "sqlalchemy.orm.exc.StaleDataError",
        "sqlalchemy.orm.exc.UnmappedInstanceError",
    }
)
#: SQLAlchemy's general request error is about a detached object only when it says so
_UNBOUND = re.compile(
    r"is not bound to a Session|not persistent within this Session"
    r"|is not present in this Session|Parent instance <[^>]*> is not bound"
)


def short_name(exc_type: str) -> str:
    return exc_type.rsplit(".", 1)[-1]


def classify(
    exc_type: str,
    message: str = "",
    config: Config | None = None,
    *,
    collection: bool = False,
    fixture_error: bool = False,
) -> str:
    """The failure kind (see :data:`KINDS`) of an exception of type ``exc_type``.

    ``message`` is the first line of the exception's message: some kinds need it to say which
    name or argument the exception is about. ``collection``: the exception stopped a module
    from being collected.
    """
    config = config or Config()
    name = short_name(exc_type)
    if fixture_error or name == "FixtureLookupError":
        return "missing-fixture"
    if name in SYNTAX_TYPES:
        return "syntax-error"
    if name in REMOVED_API_TYPES:
        removed = {*config.removed_session_apis, config.get_session_method}
        names = "|".join(re.escape(n) for n in sorted(removed, key=len, reverse=True))
        if names and re.search(rf"(?<![\w.])'?(?:{names})\b", message):
            return "removed-session-api"
    if name == "TypeError":
        session = re.escape(config.session_variable)
        if re.search(
            rf"missing \d+ required (?:positional|keyword-only) arguments?:.*'{session}'"
            rf"|got an unexpected keyword argument '{session}'",
            message,
        ):
            return "missing-session"
    if name in IMPORT_TYPES or collection:
        return "import-error"  # a module that does not import (at collection or at run time)
    if exc_type in DETACHED_TYPES or (
        exc_type.startswith("sqlalchemy.") and _UNBOUND.search(message)
    ):
        return "detached-or-stale"
    if name == "AssertionError":
        return "assertion"
    return "other"


def display_message(exc_type: str, message: str) -> str:
    """One line a person reads: ``TypeName: message`` (an assertion: its message alone)."""
    name = short_name(exc_type) if exc_type else ""
    if name == "AssertionError" and message:
        text = message
    elif name == "FixtureLookupError":
        text = message or name
    elif name:
        text = f"{name}: {message}" if message else name
    else:
        text = message
    return one_line(text)


def one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- results


@dataclass
class TestOutcome:
    __test__ = False  # not a pytest test class

    id: str  # pytest's node id: path/to/test_x.py::Class::test_name[param]
    outcome: str  # passed | failed | error | skipped
    kind: str | None = None  # failure kind for failed/error
    message: str = ""  # one line a person can read
    collection: bool = False  # a collection error (covers every test below ``id``)
    detail: str = ""  # the missing fixture's name, when kind == missing-fixture
    exc_type: str = ""  # the exception's qualified type name
    #: failed in a parallel run and passed when run again alone (``parallel`` says how it
    #: failed): the failure depends on which tests ran before it in the same process
    order_dependent: bool = False
    parallel: str = ""

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
    #: how the suite ran: serial | xdist | split, and over how many processes
    mode: str = "serial"
    jobs: int = 1
    #: seconds per test module (setup + call + teardown of its tests), to balance later runs
    module_seconds: dict[str, float] = field(default_factory=dict)
    #: the tree the run was taken on (``baseline.tree_hash``), when known
    tree: str = ""

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for test in self.tests.values():
            out[test.state] = out.get(test.state, 0) + 1
        return out

    @property
    def collection_errors(self) -> list[TestOutcome]:
        return [t for t in self.tests.values() if t.collection]

    @property
    def how(self) -> str:
        if self.mode == "xdist":
            return f"pytest-xdist, {self.jobs} workers"
        if self.mode == "split":
            return f"split by test module over {self.jobs} processes"
        return "one process"

    def as_dict(self) -> dict[str, Any]:
        return {
            "returncode": self.returncode,
            "duration": round(self.duration, 3),
            "mode": self.mode,
            "jobs": self.jobs,
            "tree": self.tree,
            "output_tail": self.output_tail,
            "module_seconds": {
                k: round(v, 4) for k, v in sorted(self.module_seconds.items())
            },
            "tests": {k: asdict(v) for k, v in sorted(self.tests.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuiteRun:
        return cls(
            tests={k: TestOutcome(**v) for k, v in data.get("tests", {}).items()},
            returncode=data.get("returncode"),
            duration=data.get("duration", 0.0),
            output_tail=data.get("output_tail", ""),
            mode=data.get("mode", "serial"),
            jobs=int(data.get("jobs", 1)),
            module_seconds=dict(data.get("module_seconds", {})),
            tree=data.get("tree", ""),
        )


_SEVERITY = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


def outcomes_from_records(
    records: Iterable[dict[str, Any]], config: Config | None = None
) -> tuple[dict[str, TestOutcome], dict[str, float]]:
    """The plugin's JSON records -> one outcome per node id, and seconds per test module.

    A test's outcome is the worst of its phases: a failed setup or teardown is an ``error``, a
    failed call ``failed``; an xfail counts as skipped (as in pytest's own summary, it is not a
    failure), an xpass as passed. Records of the same node id from several processes (a
    collection error every process of a split run reports) are one result.
    """
    config = config or Config()
    tests: dict[str, TestOutcome] = {}
    seconds: dict[str, float] = {}
    for record in records:
        event = record.get("event")
        if event == "collect-error":
            node_id = str(record.get("nodeid", ""))
            exc_type = str(record.get("exc_type", ""))
            message = str(record.get("message", ""))
            tests[node_id] = TestOutcome(
                node_id,
                "error",
                classify(exc_type, message, config, collection=True),
                display_message(exc_type, message),
                collection=True,
                exc_type=exc_type,
            )
            continue
        if event != "test":
            continue
        node_id = str(record["nodeid"])
        module = node_id.split("::", 1)[0]
        seconds[module] = seconds.get(module, 0.0) + float(
            record.get("duration") or 0.0
        )
        when = record.get("when")
        raw = record.get("outcome")
        if raw == "failed":
            outcome = "failed" if when == "call" else "error"
        elif raw == "skipped":
            outcome = "skipped"
        else:
            outcome = "passed"
        previous = tests.get(node_id)
        if previous is not None and _SEVERITY[previous.outcome] >= _SEVERITY[outcome]:
            continue  # a later phase (teardown) that is no worse than what is known
        exc_type = str(record.get("exc_type") or "")
        message = str(record.get("message") or "")
        if outcome in ("passed", "skipped"):
            tests[node_id] = TestOutcome(node_id, outcome, message=one_line(message))
            continue
        fixture_error = bool(record.get("fixture_error"))
        tests[node_id] = TestOutcome(
            node_id,
            outcome,
            classify(exc_type, message, config, fixture_error=fixture_error),
            display_message(exc_type, message),
            detail=str(record.get("fixture") or ""),
            exc_type=exc_type,
        )
    return tests, seconds
