"""Every codemod fixture pair: ``fixtures/phaseN/<case>.before.py`` -> ``<case>.after.py``.

Each case is the smallest code that shows one rule, named after the rule, and restricted
with ``steps=`` when the rule belongs to one step; the bundled target's whole files are run
end to end by the phase tests (``tests/test_phases_*.py``), not copied here.

Adding a case is adding two files. A case runs its whole phase (or the steps its header
names) on a virtual project made of ``fixtures/phaseN/_context/`` plus the case file, so the
phase's own file selection and prefilter decide whether the file is touched. The first line
of the ``before`` file may be a header::

    # refactor-tool-fixture: path=sologm/core/game.py steps=2.1,2.2 check=sologm/core/factory.py

``path`` is where the case file sits in the virtual project (default: per phase, below),
``steps`` restricts the run to some steps, ``check`` compares another file's output (a file
the phase generates) with the ``after`` file instead of the case file itself. An optional
``<case>.notes.txt`` lists texts that must each appear in exactly one of the run's
manual-attention notes; a note none of them appears in fails the case. An optional directory ``<case>.context/`` adds files of its own to
the virtual project (a test module beside a conftest case), over ``_context/``; cases that
need the same files name a shared one in their header (``context=<name>`` reads
``<name>.context/``). ``config.<field>=<value>`` sets a string field of the ``Config`` the
case runs with, as a project's ``[tool.refactor-tool]`` would (``config.session_fixture=session``).

Every case is also run a second time on its own output, which must change nothing.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from refactor_tool.engine import run_phase
from refactor_tool.model.config import Config
from refactor_tool.model.project import Project
from refactor_tool.phases import PHASES

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DEFAULT_PATHS = {
    1: "sologm/database/session.py",
    2: "sologm/core/base_manager.py",
    3: "sologm/core/game.py",
    4: "sologm/tests/conftest.py",
    5: "sologm/core/tests/test_case.py",
    6: "sologm/core/case.py",
}
HEADER = re.compile(rb"^#\s*refactor-tool-fixture:(?P<body>[^\r\n]*)")
CASES = sorted(FIXTURES.glob("phase*/*.before.py"))


def _header(source: bytes) -> dict[str, str]:
    match = HEADER.match(source)
    if not match:
        return {}
    return dict(item.split("=", 1) for item in match.group("body").decode().split())


def _project(
    root: Path,
    phase: int,
    files: dict[str, bytes],
    case: str | None = None,
    header: dict[str, str] | None = None,
) -> Project:
    overlay: dict[str, bytes | None] = {}
    folders = [FIXTURES / f"phase{phase}" / "_context"]
    if case is not None:
        folders.append(FIXTURES / f"phase{phase}" / f"{case}.context")
    for context in folders:
        if context.is_dir():
            for path in sorted(context.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    overlay[path.relative_to(context).as_posix()] = path.read_bytes()
    overlay.update(files)
    overrides = {
        key.removeprefix("config."): value
        for key, value in (header or {}).items()
        if key.startswith("config.")
    }
    return Project(root, dataclasses.replace(Config(), **overrides), overlay)


def _case(before: Path) -> str:
    return before.name[: -len(".before.py")]


def _run(
    root: Path,
    phase: int,
    path: str,
    source: bytes,
    header: dict[str, str],
    case: str | None = None,
):
    project = _project(root, phase, {path: source}, header.get("context", case), header)
    steps = header["steps"].split(",") if "steps" in header else None
    result = run_phase(project, PHASES[phase], steps)
    project.apply(result.changes)
    check = header.get("check", path)
    output = project.read_bytes(check) if project.exists(check) else b""
    return output, result


@pytest.mark.parametrize(
    "before", CASES, ids=lambda p: f"{p.parent.name}/{p.name[:-10]}"
)
def test_fixture_pair(before: Path, tmp_path: Path) -> None:
    phase = int(before.parent.name.removeprefix("phase"))
    source = before.read_bytes()
    header = _header(source)
    path = header.get("path", DEFAULT_PATHS[phase])
    expected = before.with_name(
        before.name.replace(".before.py", ".after.py")
    ).read_bytes()

    case = _case(before)
    output, result = _run(tmp_path, phase, path, source, header, case)
    assert output.decode() == expected.decode()
    assert output == expected  # byte for byte: line endings, BOM, encoding

    notes_file = before.with_name(before.name.replace(".before.py", ".notes.txt"))
    if notes_file.exists():
        reported = [str(n) for n in result.notes]
        wanted = [w.strip() for w in notes_file.read_text().splitlines() if w.strip()]
        for text in wanted:
            assert sum(text in n for n in reported) == 1, (text, reported)
        # the file covers every note of the case: nothing else is reported
        stray = [n for n in reported if not any(text in n for text in wanted)]
        assert not stray, stray

    # idempotence: the phase applied to its own output changes nothing
    if "check" not in header:
        again, _ = _run(tmp_path, phase, path, expected, header, case)
        assert again == expected


def test_every_phase_has_fixture_cases() -> None:
    phases_with_cases = {int(p.parent.name.removeprefix("phase")) for p in CASES}
    assert set(PHASES) <= phases_with_cases


@pytest.mark.parametrize(
    "before", sorted(FIXTURES.glob("phase5/*.before.py")), ids=lambda p: p.name[:-10]
)
def test_phase5_prefilter_drops_only_files_it_would_leave(
    before: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Phase 5 skips a test module whose only mention of a removed fixture is not a request
    of it: every case gives the same output and notes as with the plain text prefilter."""
    import codemods.phase5

    source = before.read_bytes()
    header = _header(source)
    path = header.get("path", DEFAULT_PATHS[5])
    case = _case(before)
    refined, refined_result = _run(tmp_path / "refined", 5, path, source, header, case)
    monkeypatch.setattr(codemods.phase5, "may_request", lambda text, names: True)
    plain, plain_result = _run(tmp_path / "plain", 5, path, source, header, case)
    assert refined == plain
    assert [str(n) for n in refined_result.notes] == [
        str(n) for n in plain_result.notes
    ]


def test_phase5_request_prefilter_cases() -> None:
    from codemods.phase5 import may_request

    names = ["db_session", "game_manager"]
    assert not may_request("def test_a(session):\n    game_manager = make()\n", names)
    assert may_request("def test_a(session, game_manager):\n    pass\n", names)
    assert may_request(
        "def test_a(\n    db_session,  # injected\n):\n    pass\n", names
    )
    assert may_request(
        "@pytest.mark.usefixtures('db_session')\ndef test_a():\n    pass\n", names
    )
    assert may_request(
        "def test_a(request):\n    request.getfixturevalue(name)\n", names + ["x"]
    )
    assert may_request(
        "class T:\n    def test_a(self, x=(1, 2), *, db_session):\n        pass\n",
        names,
    )
    assert not may_request("def test_a(x=(1, 2)):\n    db_session.close()\n", names)
    assert not may_request("nothing here", names)


@pytest.mark.parametrize(
    "case", ["repeated_setup_helper", "helper_prefixes", "helper_inner_arguments"]
)
def test_phase5_helper_fixtures_are_new_style(case: str, tmp_path: Path) -> None:
    """A test asking for a helper fixture phase 5 wrote (one built on another too) is in
    the new style: running the phase on its output reports nothing about it."""
    after = FIXTURES / "phase5" / f"{case}.after.py"
    source = after.read_bytes()
    path = DEFAULT_PATHS[5]
    again, result = _run(tmp_path, 5, path, source, {}, case)
    assert again == source
    assert [str(n) for n in result.notes] == []
