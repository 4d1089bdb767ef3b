"""The tool never damages what it was not meant to touch and never leaves a half-written tree.

* writing is all-or-nothing: a failure midway restores every file already written, and a run
  killed with SIGKILL leaves every file wholly old or wholly new and is rolled back by the next;
* bad input stops the run with exit status 2, a message naming the file (and line), and not one
  byte written;
* every phase is idempotent on the bundled target, and leaves code without its pattern alone
  (a sample of the standard library here; ``bench/corpus_noop.py`` runs all of it);
* line endings, byte-order marks, tabs and coding cookies survive a rewrite.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

import codemods.base  # noqa: F401 - installs the fast visitor dispatch under test
from refactor_tool import engine
from refactor_tool.engine import (
    FileChange,
    recover_interrupted,
    run_phase,
    write_changes,
)
from refactor_tool.model.project import InputError, Project
from refactor_tool.phases import PHASES

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "target_project"
IGNORE = shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc", "*.db")


# ------------------------------------------------------------------------------ helpers


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path -> sha256), symlinks by their target."""
    digest: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in ("__pycache__", ".pytest_cache")]
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                digest[rel] = "-> " + os.readlink(path)
            else:
                digest[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


def leftovers(root: Path) -> list[str]:
    """Temporary files or journals the writer left behind."""
    found = [
        p.relative_to(root).as_posix() for p in root.rglob(f"*{engine.TEMP_SUFFIX}")
    ]
    found += [p.relative_to(root).as_posix() for p in root.rglob(engine.JOURNAL)]
    return sorted(found)


def make_files(root: Path, count: int) -> list[FileChange]:
    """``count`` files on disk and a change to each (plus one new file in a new directory)."""
    changes = []
    for i in range(count):
        rel = f"pkg/mod{i}.py"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        old = f"# module {i}\r\nVALUE = {i}\r\n".encode()
        path.write_bytes(old)
        changes.append(FileChange(rel, old, old.replace(b"VALUE", b"RENAMED")))
    changes.append(FileChange("pkg/new/created.py", None, b"CREATED = True\n"))
    return changes


def target_copy(tmp_path: Path) -> Path:
    if not (TARGET / "sologm").is_dir():
        pytest.skip("target_project/ is not there")
    dest = tmp_path / "target"
    shutil.copytree(TARGET, dest, ignore=IGNORE)
    return dest


# ------------------------------------------------------------------- all-or-nothing writes


def test_failure_while_writing_restores_every_file(tmp_path: Path) -> None:
    changes = make_files(tmp_path, 5)
    changes.insert(1, changes.pop())  # the created file is written second
    before = tree_digest(tmp_path)
    written: list[str] = []

    def failing_writer(path: Path, data: bytes) -> None:
        if len(written) == 2:
            raise OSError(28, "No space left on device", str(path))
        engine._atomic_write(path, data)
        written.append(path.name)

    with pytest.raises(OSError, match="No space left"):
        write_changes(Project(tmp_path), changes, _write=failing_writer)

    assert written == ["mod0.py", "created.py"]  # two files were really replaced first
    assert tree_digest(tmp_path) == before  # ... and are back, byte for byte
    assert not (
        tmp_path / "pkg" / "new"
    ).exists()  # the directory made for the new file too
    assert leftovers(tmp_path) == []


def test_successful_write_replaces_files_and_keeps_modes(tmp_path: Path) -> None:
    changes = make_files(tmp_path, 3)
    (tmp_path / "pkg/mod1.py").chmod(0o750)
    write_changes(Project(tmp_path), changes)
    for change in changes:
        assert (tmp_path / change.path).read_bytes() == change.new
    assert (tmp_path / "pkg/mod1.py").stat().st_mode & 0o777 == 0o750
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "pkg/new/created.py").stat().st_mode & 0o777 == 0o666 & ~umask
    assert leftovers(tmp_path) == []
    assert not (tmp_path / ".refactor-tool").exists()


KILLED_WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from refactor_tool.engine import write_changes
    from refactor_tool.model.changes import FileChange
    from refactor_tool.model.project import Project

    root = Path(sys.argv[1])
    changes = []
    for path in sorted((root / "pkg").glob("mod*.py"), key=lambda p: int(p.stem[3:])):
        old = path.read_bytes()
        changes.append(FileChange(path.relative_to(root).as_posix(), old, old + b"# new\\n"))
    real_replace = os.replace

    def slow_replace(src, dst):
        # the 4th file's temporary copy is complete and about to take its place
        if Path(dst).name == "mod3.py":
            print("about to replace", dst, flush=True)
            time.sleep(60)
        real_replace(src, dst)

    os.replace = slow_replace
    write_changes(Project(root), changes)
    print("finished", flush=True)
    """
)


def test_sigkill_leaves_files_whole_and_next_run_rolls_back(tmp_path: Path) -> None:
    changes = make_files(tmp_path, 6)[:-1]
    old = {c.path: c.old for c in changes}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("about to replace"), line + proc.stderr.read().decode()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    # every file is wholly old or wholly new: files 0-2 new, 3-5 old
    state = {}
    for rel, content in old.items():
        now = (tmp_path / rel).read_bytes()
        assert now in (content, content + b"# new\n"), rel
        state[rel] = "new" if now != content else "old"
    assert sorted(state.values()) == ["new"] * 3 + ["old"] * 3
    assert any(name.endswith(engine.TEMP_SUFFIX) for name in leftovers(tmp_path))

    # the next run rolls the interrupted phase back and clears what the killed one left
    restored = recover_interrupted(tmp_path)
    assert sorted(restored) == sorted(rel for rel, s in state.items() if s == "new")
    for rel, content in old.items():
        assert (tmp_path / rel).read_bytes() == content
    assert leftovers(tmp_path) == []
    assert recover_interrupted(tmp_path) == []


def test_recovery_never_overwrites_a_file_edited_after_the_kill(tmp_path: Path) -> None:
    changes = make_files(tmp_path, 2)[:-1]
    project = Project(tmp_path)
    engine._write_journal(
        project, changes
    )  # as if killed right after writing the journal
    (tmp_path / changes[0].path).write_bytes(b"edited by hand\n")
    with pytest.raises(InputError) as info:
        recover_interrupted(tmp_path)
    assert info.value.path == changes[0].path
    assert (tmp_path / changes[0].path).read_bytes() == b"edited by hand\n"
    assert (tmp_path / ".refactor-tool" / engine.JOURNAL).is_file()  # kept for the user


def test_write_refuses_read_only_file_before_writing_anything(tmp_path: Path) -> None:
    changes = make_files(tmp_path, 3)
    (tmp_path / changes[2].path).chmod(0o444)
    before = tree_digest(tmp_path)
    with pytest.raises(InputError) as info:
        write_changes(Project(tmp_path), changes)
    assert info.value.path == changes[2].path and "read-only" in info.value.message
    assert tree_digest(tmp_path) == before


def test_write_refuses_symlink_leading_outside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside.py"
    outside.write_bytes(b"VALUE = 1\n")
    changes = make_files(root, 2)
    (root / changes[1].path).unlink()
    (root / changes[1].path).symlink_to(outside)
    changes[1] = FileChange(changes[1].path, b"VALUE = 1\n", b"RENAMED = 1\n")
    before = tree_digest(root)
    with pytest.raises(InputError) as info:
        write_changes(Project(root), changes)
    assert info.value.path == changes[1].path and "outside" in info.value.message
    assert tree_digest(root) == before
    assert outside.read_bytes() == b"VALUE = 1\n"


def test_write_refuses_file_changed_since_read(tmp_path: Path) -> None:
    changes = make_files(tmp_path, 2)
    (tmp_path / changes[1].path).write_bytes(b"someone else\n")
    before = tree_digest(tmp_path)
    with pytest.raises(InputError, match="changed on disk"):
        write_changes(Project(tmp_path), changes)
    assert tree_digest(tmp_path) == before


def test_changes_computed_on_a_half_written_tree_are_not_written(
    tmp_path: Path,
) -> None:
    """After a kill, the next write first rolls the interrupted phase back, then refuses the
    changes it was given (they were computed on the half-written tree): run again."""
    changes = make_files(tmp_path, 3)[:-1]
    project = Project(tmp_path)
    engine._write_journal(project, changes)  # killed after writing the first file
    engine._atomic_write(tmp_path / changes[0].path, changes[0].new)
    stale = [FileChange(c.path, c.old, c.new + b"# more\n") for c in changes[1:]]
    with pytest.raises(InputError, match="rolled back"):
        write_changes(Project(tmp_path), stale)
    for change in changes:
        assert (tmp_path / change.path).read_bytes() == change.old
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------ phases on the target


def _phases_in_order(project: Project):
    for number in sorted(PHASES):
        yield number, PHASES[number]


@pytest.mark.skipif(not PHASES, reason="no phase installed")
def test_every_phase_is_idempotent_on_the_target(tmp_path: Path) -> None:
    """Each phase, applied to its own output (phases before it applied too), changes nothing."""
    project = Project(target_copy(tmp_path))
    changed_any = False
    for number, phase in _phases_in_order(project):
        first = run_phase(project, phase)
        project.apply(first.changes)
        changed_any = changed_any or bool(first.changes)
        again = run_phase(project, phase)
        assert [c.path for c in again.changes] == [], (
            f"phase {number} is not idempotent"
        )
    assert changed_any


def _session_rel() -> str:
    from refactor_tool.model.config import Config

    return Config().session_module


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _bom(data: bytes) -> bytes:
    return b"\xef\xbb\xbf" + data


def _tabs(data: bytes) -> bytes:
    out = []
    for line in data.splitlines(keepends=True):
        body = line.lstrip(b" ")
        spaces = len(line) - len(body)
        out.append(b"\t" * (spaces // 4) + b" " * (spaces % 4) + body)
    return b"".join(out)


COOKIE = "# -*- coding: latin-1 -*-\n# Wörterbuch der Sitzungen, café\n".encode(
    "latin-1"
)


def _cookie(data: bytes) -> bytes:
    return COOKIE + data


VARIANTS = {"crlf": _crlf, "bom": _bom, "tabs": _tabs, "coding-cookie": _cookie}


def _phase1_session(root: Path, source: bytes) -> bytes:
    rel = _session_rel()
    (root / rel).write_bytes(source)
    project = Project(root)
    result = run_phase(project, PHASES[1])
    project.apply(result.changes)
    return project.read_bytes(rel)


@pytest.mark.skipif(1 not in PHASES, reason="phase 1 not installed")
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_phase_1_keeps_line_endings_bom_tabs_and_encoding(
    tmp_path: Path, variant: str
) -> None:
    """phase1(variant(file)) == variant(phase1(file)): the rewrite commutes with the variant."""
    root = target_copy(tmp_path)
    original = (root / _session_rel()).read_bytes()
    plain = _phase1_session(root, original)
    assert plain != original  # phase 1 really rewrites this file
    make = VARIANTS[variant]
    assert _phase1_session(root, make(original)) == make(plain)


@pytest.mark.skipif(1 not in PHASES, reason="phase 1 not installed")
def test_lines_libcst_would_reprint_stay_as_they_were(tmp_path: Path) -> None:
    """libcst prints ``except E :`` as ``except E:``; a phase that rewrites the file elsewhere
    must not change that line (nor any other it did not mean to touch)."""
    root = target_copy(tmp_path)
    original = (root / _session_rel()).read_bytes()
    plain = _phase1_session(root, original)
    odd = b"\n\ntry:\n    import json\nexcept ImportError :  # spacing kept\n    json = None\n"
    assert _phase1_session(root, original + odd) == plain + odd


# ------------------------------------------------------------------ code without the patterns


STDLIB_SAMPLE = (
    "multiprocessing/managers.py",  # defines its own BaseManager, get_server, connect...
    "webbrowser.py",  # `except (...) :`, which libcst does not print back as it was
    "contextlib.py",  # context managers with __enter__/__exit__
    "sqlite3/__init__.py",
)


def _corpus_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "corpus_noop", REPO / "bench" / "corpus_noop.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules.setdefault("corpus_noop", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return sys.modules["corpus_noop"]


@pytest.mark.skipif(not PHASES, reason="no phase installed")
def test_codemods_leave_standard_library_sample_alone() -> None:
    """What ``bench/corpus_noop.py`` does for the whole standard library, on a sample."""
    corpus = _corpus_module()
    phases = corpus.build_analyses(log=lambda message: None)
    assert [p.number for p in phases] == sorted(PHASES)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    outcomes = [
        corpus.check_file(stdlib, rel, phases)
        for rel in STDLIB_SAMPLE
        if (stdlib / rel).is_file()
    ]
    assert len(outcomes) >= 3
    bad = [f"{o.status} {o.path}: {o.detail}" for o in outcomes if o.status != "ok"]
    assert bad == []


# ------------------------------------------------------------------ the command line, killed


KILLED_CLI = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path

    real_replace = os.replace
    seen = []

    def slow_replace(src, dst):
        if str(dst).endswith(".py"):
            seen.append(dst)
            if len(seen) == 2:  # the second file of the phase is about to be replaced
                print("about to replace", dst, flush=True)
                time.sleep(60)
        real_replace(src, dst)

    os.replace = slow_replace
    from refactor_tool.cli import main

    main(args=sys.argv[1:], prog_name="refactor-tool")
    """
)


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def _cli(*args: str, code: str | None = None, **kwargs):
    command = (
        [sys.executable, "-c", code]
        if code
        else [sys.executable, "-m", "refactor_tool"]
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PYTHONDONTWRITEBYTECODE": "1",
        "COLUMNS": "200",
    }
    return command + list(args), dict(cwd=REPO, env=env, **kwargs)


@pytest.mark.skipif(1 not in PHASES, reason="phase 1 not installed")
def test_killed_cli_run_leaves_whole_files_and_the_next_run_finishes(
    tmp_path: Path,
) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = target_copy(tmp_path)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "start")
    project = Project(root)
    expected = {c.path: (c.old, c.new) for c in run_phase(project, PHASES[1]).changes}
    assert len(expected) >= 2, "phase 1 must change two files for this test"

    args, options = _cli(
        "apply", "--phase", "1", "--no-verify", "--target", str(root), code=KILLED_CLI
    )
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **options
    )
    try:
        for line in proc.stdout:
            if line.startswith(b"about to replace"):
                break
        else:
            pytest.fail(
                "the run ended before writing its second file: "
                + proc.stderr.read().decode()
            )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()

    def state() -> list[str]:
        kinds = []
        for rel, (old, new) in sorted(expected.items()):
            now = (root / rel).read_bytes()
            assert now in (old, new), f"{rel} is neither the old nor the new file"
            kinds.append("new" if now == new else "old")
        return kinds

    assert sorted(state()) == ["new"] + ["old"] * (len(expected) - 1)

    # a dry run says so and touches nothing
    args, options = _cli(
        "apply", "--phase", "1", "--dry-run", "--target", str(root)
    )
    before = {rel: (root / rel).read_bytes() for rel in expected}
    result = subprocess.run(args, check=False, capture_output=True, text=True, **options)
    assert result.returncode == 0, result.stderr
    assert "the next `apply` puts its files back" in result.stderr, result.stderr
    assert {rel: (root / rel).read_bytes() for rel in expected} == before

    # the next run first puts the interrupted phase's files back (saying so), which leaves
    # the committed tree clean again, then applies the phase whole
    args, options = _cli("apply", "--phase", "1", "--no-verify", "--target", str(root))
    result = subprocess.run(args, check=False, capture_output=True, text=True, **options)
    assert result.returncode == 0, result.stderr
    assert "interrupted while writing a phase" in result.stderr, result.stderr
    assert set(state()) == {"new"}
    assert leftovers(root) == []


@pytest.mark.skipif(not PHASES, reason="no phase installed")
def test_a_whole_run_parses_each_file_version_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All phases in memory, as ``apply --all --dry-run`` runs them: no file content is
    parsed twice, and files no phase needs are not parsed at all."""
    from refactor_tool.model import project as project_module

    parsed: list[tuple[str, bytes]] = []
    real = project_module.parse_source

    def counting(rel: str, source: bytes):
        parsed.append((rel, source))
        return real(rel, source)

    monkeypatch.setattr(project_module, "parse_source", counting)
    project = Project(target_copy(tmp_path))
    for _, phase in _phases_in_order(project):
        project.apply(run_phase(project, phase).changes)
    assert len(parsed) == len(set(parsed))
    assert len({rel for rel, _ in parsed}) < len(project.python_files())


def test_phase5_prefilter_changes_nothing_on_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the bundled target (phases 1 to 4 applied in memory), phase 5 with its request
    prefilter gives what it gives with the plain text prefilter, on fewer files."""
    import codemods.phase5

    def phase5(refine: bool) -> tuple[list[tuple[str, bytes]], list[str], int]:
        project = Project(TARGET)
        for number in (1, 2, 3, 4):
            project.apply(run_phase(project, PHASES[number]).changes)
        if not refine:
            monkeypatch.setattr(codemods.phase5, "may_request", lambda text, names: True)
        result = run_phase(project, PHASES[5])
        monkeypatch.undo()
        return sorted((c.path, c.new) for c in result.changes), [str(n) for n in result.notes], result.candidates

    refined, plain = phase5(True), phase5(False)
    assert refined[:2] == plain[:2] and refined[0]
    assert refined[2] < plain[2]  # the module that only has a local of a fixture's name
