"""The command line, run for real (``python -m refactor_tool``) on scratch copies of the bundled
target project: every command, every exit code, and the promise that bad input writes nothing.

The target's suite takes seconds per run, so only two tests run gates: one ``apply --phase 1
--commit --json`` (plus a ``verify``) and the end-to-end ``demo``; everything else runs with
``--no-verify`` or ``--dry-run``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from refactor_tool.model.project import Project
from refactor_tool.phases import PHASES
from support import git

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "target_project"
IGNORE = shutil.ignore_patterns(
    "__pycache__", ".pytest_cache", ".refactor-tool", "*.egg-info", "*.db"
)

pytestmark = pytest.mark.skipif(
    not (TARGET / "pyproject.toml").is_file(), reason="target_project/ is not here"
)

needs_check = pytest.mark.skipif(
    not (REPO / "refactor_tool" / "check.py").is_file(),
    reason="refactor_tool/check.py is not written yet",
)
needs_all_phases = pytest.mark.skipif(
    sorted(PHASES) != [1, 2, 3, 4, 5, 6],
    reason=f"only phases {sorted(PHASES)} are installed",
)


ENV = dict(os.environ, COLUMNS="200", PYTHONDONTWRITEBYTECODE="1")
ENV.pop("PYTEST_ADDOPTS", None)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "refactor_tool", *args],
        check=False,
        cwd=cwd or REPO,
        env=ENV,
        capture_output=True,
        text=True,
    )


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the tree (of .git: HEAD and info/exclude; the index is git's stat cache)."""
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(".git/") and rel not in (".git/HEAD", ".git/info/exclude"):
            continue
        if path.is_file() or path.is_symlink():
            files[rel] = path.read_bytes() if path.exists() else b"<dangling>"
    if (root / ".git").is_dir():
        files["<HEAD>"] = git(root, "rev-parse", "HEAD").encode()
    return files


def python_snapshot(root: Path) -> dict[str, bytes]:
    return {rel: data for rel, data in snapshot(root).items() if rel.endswith(".py")}


@pytest.fixture(scope="session")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """target_project/ copied once and committed to a fresh git repository."""
    root = tmp_path_factory.mktemp("pristine") / "target"
    shutil.copytree(TARGET, root, ignore=IGNORE)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    return root


@pytest.fixture
def target(pristine: Path, tmp_path: Path) -> Path:
    root = tmp_path / "target"
    shutil.copytree(pristine, root, symlinks=True)
    return root


# ----------------------------------------------------------------------------- help and usage


@pytest.mark.parametrize(
    "command", [[], ["apply"], ["status"], ["verify"], ["check"], ["demo"]]
)
def test_help_of_every_command_lists_the_phases(command: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    for number, phase in PHASES.items():
        assert f"{number}  {phase.title}" in result.stdout
        for step in phase.steps:
            assert step.id in result.stdout
    assert "Exit codes" in result.stdout


def test_console_script_matches_module() -> None:
    script = shutil.which("refactor-tool")
    if script is None:
        pytest.skip("refactor-tool is not installed as a console script")
    result = subprocess.run(
        [script, "--help"], check=False, capture_output=True, text=True, env=ENV
    )
    assert result.returncode == 0
    assert result.stdout == run_cli("--help").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["apply"], "exactly one of --phase N, --all or --step N.M"),
        (["apply", "--phase", "1", "--all"], "exactly one of"),
        (["apply", "--phase", "99"], "unknown phase 99"),
        (["apply", "--phase", "x"], "'x' is not a valid integer"),
        (["apply", "--step", "1.99"], "phase 1 has no step 1.99"),
        (["apply", "--step", "99.1"], "unknown step '99.1'"),
        (["verify", "--phase", "99"], "unknown phase 99"),
        (["verify"], "Missing option '--phase'"),
        (["frobnicate"], "No such command"),
    ],
)
def test_usage_errors_exit_2(target: Path, args: list[str], message: str) -> None:
    before = snapshot(target)
    result = (
        run_cli(*args, "--target", str(target))
        if args != ["frobnicate"]
        else run_cli(*args)
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert snapshot(target) == before


def test_missing_target_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    for args in (["apply", "--phase", "1"], ["status"], ["verify", "--phase", "1"]):
        result = run_cli(*args, "--target", str(missing))
        assert result.returncode == 2
        assert f"{missing}: target directory does not exist" in result.stderr
    assert not missing.exists()


def test_target_of_the_wrong_shape_exits_2(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\n')
    result = run_cli("apply", "--phase", "1", "--target", str(tmp_path))
    assert result.returncode == 2
    assert "sologm/: expected the application package 'sologm'" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyproject.toml"]


@pytest.mark.parametrize(
    ("phase", "rel", "message"),
    [
        (
            "1",
            "sologm/database/session.py",
            "sologm/database/session.py: no class DatabaseManager here",
        ),
        (
            "2",
            "sologm/core/base_manager.py",
            "sologm/core/base_manager.py: no class BaseManager here",
        ),
    ],
)
def test_missing_expected_module_or_class_exits_2(
    target: Path, phase: str, rel: str, message: str
) -> None:
    """A project with the package but not the class a phase rewrites: named, nothing written."""
    (target / rel).write_text("class Other:\n    pass\n")
    before = {p: p.read_bytes() for p in target.rglob("*.py")}
    result = run_cli(
        "apply", "--phase", phase, "--no-verify", "--allow-dirty", "--target", str(target)
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert {p: p.read_bytes() for p in target.rglob("*.py")} == before


def test_bad_config_exits_2(target: Path) -> None:
    pyproject = target / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.refactor-tool]\npackge = "x"\n'
    )
    result = run_cli("status", "--target", str(target))
    assert result.returncode == 2
    assert (
        "pyproject.toml: [tool.refactor-tool] has unknown key 'packge'" in result.stderr
    )


# ----------------------------------------------------------------------------- nothing written on bad input


def test_unparsable_file_exits_2_naming_file_and_line(target: Path) -> None:
    session = target / "sologm/database/session.py"
    lines = session.read_text().count("\n")
    session.write_text(session.read_text() + "\ndef broken(:\n    pass\n")
    git(target, "commit", "-qam", "break it")
    before = snapshot(target)
    result = run_cli("apply", "--phase", "1", "--target", str(target))
    assert result.returncode == 2, result.stderr
    assert re.search(
        rf"sologm/database/session\.py:{lines + 2}: cannot parse", result.stderr
    ), result.stderr
    assert "nothing was written" in result.stderr
    assert snapshot(target) == before
    assert not (target / ".refactor-tool").exists()


def test_all_checks_every_phase_before_writing_anything(target: Path) -> None:
    """A file only a late phase needs is broken: --all exits 2 before phase 1 writes."""
    project = Project(target)
    first = set(
        PHASES[min(PHASES)].files(project, PHASES[min(PHASES)].analyze(project))
    )
    last = max(PHASES)
    later = [
        f
        for f in PHASES[last].files(project, PHASES[last].analyze(project))
        if f not in first
    ]
    if not later:
        pytest.skip("no phase after the first needs a file of its own")
    victim = later[0]
    path = target / victim
    line = path.read_text().count("\n") + 2
    path.write_text(path.read_text() + "\nclass Broken(:\n    pass\n")
    git(target, "commit", "-qam", "break a late file")
    before = snapshot(target)
    result = run_cli("apply", "--all", "--commit", "--target", str(target))
    assert result.returncode == 2, result.stderr
    assert f"{victim}:{line}: cannot parse" in result.stderr
    assert snapshot(target) == before
    assert not (target / ".refactor-tool").exists()


def test_dirty_tree_is_refused_without_allow_dirty(target: Path) -> None:
    readme = target / "README.md"
    readme.write_text(readme.read_text() + "\nlocal edit\n")
    before = snapshot(target)
    result = run_cli("apply", "--phase", "1", "--no-verify", "--target", str(target))
    assert result.returncode == 2
    assert "uncommitted changes" in result.stderr and "--allow-dirty" in result.stderr
    assert "README.md" in result.stderr
    assert snapshot(target) == before
    # a dry run is fine on a dirty tree, and --allow-dirty lets the run go ahead
    assert (
        run_cli(
            "apply", "--phase", "1", "--dry-run", "--target", str(target)
        ).returncode
        == 0
    )
    result = run_cli(
        "apply", "--phase", "1", "--no-verify", "--allow-dirty", "--target", str(target)
    )
    assert result.returncode == 0, result.stderr
    assert python_snapshot(target) != {
        k: v for k, v in before.items() if k.endswith(".py")
    }


def test_commit_outside_a_git_repository_exits_2(target: Path) -> None:
    shutil.rmtree(target / ".git")
    before = snapshot(target)
    result = run_cli(
        "apply", "--phase", "1", "--commit", "--no-verify", "--target", str(target)
    )
    assert result.returncode == 2
    assert "--commit needs a git repository" in result.stderr
    assert snapshot(target) == before


def _phase1_files(target: Path) -> list[str]:
    out = run_cli("apply", "--phase", "1", "--dry-run", "--target", str(target)).stdout
    return re.findall(r"^diff --git a/(\S+) ", out, re.MULTILINE)


def test_read_only_file_exits_2(target: Path) -> None:
    victim = target / _phase1_files(target)[-1]
    victim.chmod(0o444)
    before = snapshot(target)
    result = run_cli("apply", "--phase", "1", "--no-verify", "--target", str(target))
    assert result.returncode == 2
    assert f"{victim.relative_to(target).as_posix()}: is read-only" in result.stderr
    assert snapshot(target) == before


def test_symlink_leading_outside_exits_2(target: Path, tmp_path: Path) -> None:
    rel = _phase1_files(target)[0]
    outside = tmp_path / "outside.py"
    shutil.move(target / rel, outside)
    (target / rel).symlink_to(outside)
    git(target, "add", "-A")
    git(target, "commit", "-qm", "symlink")
    before = snapshot(target)
    original = outside.read_bytes()
    result = run_cli("apply", "--phase", "1", "--no-verify", "--target", str(target))
    assert result.returncode == 2
    assert (
        f"{rel}: is a symlink to" in result.stderr
        and "outside the target" in result.stderr
    )
    assert snapshot(target) == before
    assert outside.read_bytes() == original


# ----------------------------------------------------------------------------- dry run, status, check


def test_dry_run_patch_applies_with_git_apply(target: Path, tmp_path: Path) -> None:
    before = snapshot(target)
    result = run_cli("apply", "--phase", "1", "--dry-run", "--target", str(target))
    assert result.returncode == 0, result.stderr
    assert snapshot(target) == before  # nothing written, not even the baseline
    assert result.stdout.startswith("diff --git ")
    assert re.search(
        r"phase 1 \(.*\): would change \d+ files?, \d+ manual-attention items?",
        result.stderr,
    )
    assert "diff --git" not in result.stderr
    patch = tmp_path / "p.patch"
    patch.write_text(result.stdout)
    git(target, "apply", str(patch))
    applied = python_snapshot(target)
    # the same result as applying the phase for real
    git(target, "checkout", "-q", "--", ".")
    assert (
        run_cli(
            "apply", "--phase", "1", "--no-verify", "--target", str(target)
        ).returncode
        == 0
    )
    assert python_snapshot(target) == applied
    assert applied != {k: v for k, v in before.items() if k.endswith(".py")}


def test_dry_run_all_combined_diff_equals_apply_all(
    target: Path, pristine: Path, tmp_path: Path
) -> None:
    dry = run_cli(
        "apply",
        "--all",
        "--dry-run",
        "--json",
        str(tmp_path / "dry.json"),
        "--target",
        str(target),
    )
    assert dry.returncode == 0, dry.stderr
    assert "total: would change" in dry.stderr or len(PHASES) == 1
    report = json.loads((tmp_path / "dry.json").read_text())
    assert report["dry_run"] is True
    assert [p["phase"] for p in report["phases"]] == sorted(PHASES)
    assert all(p["written"] is False and p["gate"] is None for p in report["phases"])
    # each phase says where computing it took its time
    assert all(
        set(p["seconds"]) == {"analysis", "files"} and min(p["seconds"].values()) >= 0
        for p in report["phases"]
    )
    patch = tmp_path / "all.patch"
    patch.write_text(dry.stdout)
    git(target, "apply", str(patch))
    via_patch = python_snapshot(target)

    real = tmp_path / "real"
    shutil.copytree(pristine, real, symlinks=True)
    result = run_cli("apply", "--all", "--no-verify", "--commit", "--target", str(real))
    assert result.returncode == 0, result.stdout + result.stderr
    assert python_snapshot(real) == via_patch
    assert git(real, "status", "--porcelain") == ""
    subjects = git(real, "log", "--format=%s").splitlines()
    changed = [p["phase"] for p in report["phases"] if p["files_changed"]]
    assert subjects[: len(changed)] == [
        f"refactor-tool: phase {n} - {PHASES[n].title}" for n in reversed(changed)
    ]

    # running everything again changes nothing
    again = run_cli("apply", "--all", "--dry-run", "--target", str(real))
    assert again.returncode == 0 and again.stdout == ""

    status = run_cli("status", "--target", str(real))
    assert status.returncode == 0, status.stderr
    assert "pending" not in status.stdout


def status_states(output: str) -> dict[str, str]:
    states = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) >= 3 and re.fullmatch(r"\d+(\.\d+)?", cells[0]):
            states[cells[0]] = cells[2]
    return states


def test_status_before_and_after_phase_1(target: Path) -> None:
    result = run_cli("status", "--target", str(target))
    assert result.returncode == 0, result.stderr
    before = status_states(result.stdout)
    assert set(before) >= {str(n) for n in PHASES} | {
        s.id for p in PHASES.values() for s in p.steps
    }
    assert before["1"] == "pending"
    # on an untouched tree nothing is applied: a step that finds nothing to do there (2.4
    # shares the session only once 2.1 made managers take one) is waiting for phase 1
    assert set(before.values()) == {"pending", "waiting"}, before
    assert before["2.4"] == "waiting"
    assert (
        run_cli(
            "apply", "--phase", "1", "--no-verify", "--target", str(target)
        ).returncode
        == 0
    )
    after = status_states(run_cli("status", "--target", str(target)).stdout)
    assert after["1"] == "applied"
    for step in PHASES[1].steps:
        assert after[step.id] in ("applied", "n/a")
    later = {k: v for k, v in after.items() if not k.startswith("1")}
    assert set(later.values()) <= {"pending", "waiting"}, later  # phase 2 is still to come


def test_status_names_what_it_found_in_the_code(target: Path) -> None:
    """Where the plan's names do not fit, status says what the run works with instead."""
    plain = " ".join(run_cli("status", "--target", str(target)).stdout.split())
    assert "layout: package sologm; session module sologm/database/session.py;" in plain
    assert "(from the code)" not in plain
    for path in target.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("DatabaseManager", "Database"), encoding="utf-8")
    result = run_cli("status", "--target", str(target))
    assert result.returncode == 0, result.stderr
    plain = " ".join(result.stdout.split())
    assert "session module sologm/database/session.py (from the code)" in plain
    assert "package sologm;" in plain  # the plan's own


def test_step_applies_one_step_alone(target: Path) -> None:
    phase = PHASES[1]
    step = next(s for s in reversed(phase.steps) if s.mechanical)
    whole = run_cli(
        "apply", "--phase", "1", "--dry-run", "--target", str(target)
    ).stdout
    result = run_cli(
        "apply", "--step", step.id, "--no-verify", "--commit", "--target", str(target)
    )
    assert result.returncode == 0, result.stderr
    assert (
        git(target, "log", "-1", "--format=%s").strip()
        == f"refactor-tool: step {step.id} - {step.title}"
    )
    partial = git(target, "show", "--format=", "HEAD")
    assert partial and partial != whole
    # the rest of the phase is still to do
    rest = run_cli("apply", "--phase", "1", "--dry-run", "--target", str(target))
    assert rest.returncode == 0 and rest.stdout.startswith("diff --git")


def status_details(output: str) -> dict[str, str]:
    """The detail cell of each row (a detail that wraps is cut at its first line)."""
    details = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) >= 3 and re.fullmatch(r"\d+(\.\d+)?", cells[0]):
            details[cells[0]] = cells[3] if len(cells) > 3 else ""  # an empty last cell is stripped
    return details


@needs_all_phases
def test_status_after_apply_all_shows_every_phase_applied(target: Path) -> None:
    """Phase 4 removes the very fixtures its codemods look for: once it ran, the code alone
    shows nothing for it (n/a); the run state's record of the phases `apply` wrote makes it
    applied. The record never turns what the code shows as pending into applied."""
    base = git(target, "rev-parse", "HEAD").strip()
    result = run_cli("apply", "--all", "--no-verify", "--commit", "--target", str(target))
    assert result.returncode == 0, result.stdout + result.stderr
    output = run_cli("status", "--target", str(target)).stdout
    states, details = status_states(output), status_details(output)
    assert {states[str(n)] for n in PHASES} == {"applied"}, states
    assert set(states.values()) == {"applied"}, states
    # --no-verify: applied, and the detail says that no gate ran
    assert all("not verified" in details[str(n)] for n in PHASES), details

    state_file = target / ".refactor-tool" / "state.json"
    recorded = state_file.read_text()
    state = json.loads(recorded)
    assert {k: v["gate"] for k, v in state["applied"].items()} == {
        str(n): "not verified" for n in PHASES
    }
    # a state file written before the record was kept still loads: the code alone speaks
    # (phase 4 shows n/a, as the code cannot tell it was applied); so without a state file
    del state["applied"]
    state_file.write_text(json.dumps(state))
    code_only = status_states(run_cli("status", "--target", str(target)).stdout)
    assert code_only["4"] == "n/a" and code_only["1"] == "applied", code_only
    state_file.unlink()
    assert status_states(run_cli("status", "--target", str(target)).stdout) == code_only

    # a run that finds nothing left to change records nothing
    result = run_cli("apply", "--all", "--no-verify", "--target", str(target))
    assert result.returncode == 0, result.stderr
    assert json.loads(state_file.read_text())["applied"] == {}

    # back on the untouched tree with the record of every phase still there: nothing is
    # applied, the code says what is left
    state_file.write_text(recorded)
    git(target, "reset", "-q", "--hard", base)
    untouched = status_states(run_cli("status", "--target", str(target)).stdout)
    assert set(untouched.values()) == {"pending", "waiting"}, untouched


def test_status_shows_a_failed_gate_with_its_reason(target: Path) -> None:
    """A phase whose gate failed is "applied, gate failed" with the gate's reason, never a
    plain applied; the code still decides what is pending."""
    canary = target / "sologm" / "test_zz_exports.py"
    canary.write_text(
        "from pathlib import Path\n\n\n"
        "def test_canary_exports_get_session():\n"
        "    init = Path(__file__).parent / 'database' / '__init__.py'\n"
        "    assert '\"get_session\"' in init.read_text()\n"
    )
    git(target, "add", "-A")
    git(target, "commit", "-qm", "a test phase 1 breaks that touches no database")
    result = run_cli("apply", "--phase", "1", "--target", str(target))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Phase 1 verdict: FAILED" in result.stdout

    output = run_cli("status", "--target", str(target)).stdout
    states, details = status_states(output), status_details(output)
    assert states["1"] == "applied, gate failed", states
    assert details["1"].startswith("gate failed:"), details
    state = json.loads((target / ".refactor-tool" / "state.json").read_text())
    assert state["applied"]["1"]["gate"] == "failed"
    assert "test_canary_exports_get_session" in state["applied"]["1"]["reason"]
    assert "\n" not in state["applied"]["1"]["reason"]
    assert "test_canary_exports_get_session" in output

    # the phase undone: the code says pending, whatever the record says
    git(target, "stash", "-q")
    assert status_states(run_cli("status", "--target", str(target)).stdout)["1"] == "pending"
    git(target, "stash", "pop", "-q")
    # without the state file the code alone speaks
    (target / ".refactor-tool" / "state.json").unlink()
    assert status_states(run_cli("status", "--target", str(target)).stdout)["1"] == "applied"


def test_commit_with_allow_dirty_leaves_earlier_changes_out(target: Path) -> None:
    """Only the files the phase wrote go into its commit; what the tree held uncommitted
    before stays so, and a line says so. A file of both is committed whole, with a warning."""
    phase1 = _phase1_files(target)
    assert "sologm/database/session.py" in phase1
    (target / "README.md").write_text((target / "README.md").read_text() + "\nlocal edit\n")
    (target / "notes.txt").write_text("untracked\n")
    (target / "sologm" / "scratch.py").write_text("x = 1\n")
    git(target, "add", "sologm/scratch.py")
    session = target / "sologm" / "database" / "session.py"
    session.write_text(session.read_text() + "\n# a local edit\n")
    result = run_cli(
        "apply", "--phase", "1", "--commit", "--allow-dirty", "--no-verify",
        "--target", str(target),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    committed = git(target, "show", "--name-only", "--format=", "HEAD").split()
    assert sorted(committed) == sorted(phase1)
    assert "# a local edit" in git(target, "show", "HEAD:sologm/database/session.py")
    left = git(target, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert sorted(left) == [" M README.md", "?? notes.txt", "A  sologm/scratch.py"]
    out = " ".join((result.stdout + result.stderr).split())
    assert (
        "left uncommitted: 3 file(s) with changes from before this run, in no commit of it: "
        "README.md, notes.txt, sologm/scratch.py" in out
    )
    assert (
        "sologm/database/session.py: had uncommitted changes before this run and phase 1 "
        "rewrote it; the whole content, those earlier changes included, is in this commit" in out
    )


@needs_check
def test_check_fails_on_the_untouched_target(target: Path) -> None:
    result = run_cli("check", "--target", str(target))
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"sologm/\S+\.py:\d+", result.stdout)


# ----------------------------------------------------------------------------- gates, commits, JSON


def test_apply_phase_1_with_gate_commit_and_json(target: Path, tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    result = run_cli(
        "apply",
        "--phase",
        "1",
        "--commit",
        "--json",
        str(report_path),
        "--target",
        str(target),
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "baseline recorded" in out
    assert "Phase 1 gate" in out and "Phase 1 verdict: as expected" in out

    report = json.loads(report_path.read_text())
    assert report["exit_code"] == 0 and report["dry_run"] is False
    (phase,) = report["phases"]
    assert (
        phase["phase"] == 1
        and phase["status"] == "verified"
        and phase["written"] is True
    )
    committed = sorted(git(target, "show", "--name-only", "--format=", "HEAD").split())
    assert (
        sorted(f["path"] for f in phase["files_changed"])
        == committed
        == report["files_changed"]
    )
    assert phase["diff"].startswith("diff --git")
    assert phase["commit"] == git(target, "rev-parse", "HEAD").strip()
    assert (
        git(target, "log", "-1", "--format=%s").strip()
        == f"refactor-tool: phase 1 - {PHASES[1].title}"
    )
    for note in phase["manual_attention"]:
        assert set(note) >= {"path", "line", "step", "message", "text"}
    gate = phase["gate"]
    assert gate["verdict"] == "ok"
    counts = {row["state"]: row for row in gate["counts"]}
    assert counts["total"]["baseline"] > 0
    assert (
        counts["passed"]["now"] < counts["passed"]["baseline"]
    )  # phase 1 breaks the old session API
    assert any(
        c["judgement"] == "expected" and c["after"] == "removed-session-api"
        for c in gate["changed_tests"]
    )
    # the bundled target's console script names a function its CLI module no longer has, so
    # the smoke command fails at baseline already: pre-existing, never the phase's fault
    assert [c["name"] for c in gate["commands"]] == ["smoke"]
    assert gate["commands"][0]["status"] == "failed"

    # the baseline sits with the target, out of git's sight
    baseline = json.loads((target / ".refactor-tool/baseline.json").read_text())
    assert baseline["test_count"] == counts["total"]["baseline"]
    assert baseline["smoke"]["status"] == "failed"
    assert ".refactor-tool/" in (target / ".git/info/exclude").read_text()
    assert git(target, "status", "--porcelain") == ""

    # `verify` reuses that baseline; a newly failing test that touches no database fails the gate
    canary = target / "sologm/test_zz_canary.py"
    canary.write_text("def test_canary_arithmetic():\n    assert 1 + 1 == 3\n")
    result = run_cli(
        "verify",
        "--phase",
        "1",
        "--target",
        str(target),
        "--json",
        str(tmp_path / "v.json"),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "baseline: " in result.stdout and "baseline recorded" not in result.stdout
    assert "test_canary_arithmetic" in result.stdout
    assert "Phase 1 verdict: FAILED" in result.stdout
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["exit_code"] == 1
    (bad,) = [
        c
        for c in verdict["phases"][0]["gate"]["changed_tests"]
        if c["judgement"] == "unexpected"
    ]
    assert bad["id"] == "sologm/test_zz_canary.py::test_canary_arithmetic"
    assert "touches no database" in bad["message"]


# ----------------------------------------------------------------------------- the end-to-end demo


@needs_all_phases
def test_demo_end_to_end(tmp_path: Path) -> None:
    dest = tmp_path / "demo"
    result = run_cli("demo", "--dest", str(dest))
    out = result.stdout
    assert result.returncode == 0, out[-6000:] + result.stderr[-3000:]
    for number in PHASES:
        assert f"Phase {number} verdict: as expected" in out
    assert "diff --git" in out
    assert f"the refactored project is in {dest}" in out
    assert f"git -C {dest} log --stat" in out
    subjects = git(dest, "log", "--format=%s").splitlines()
    assert subjects[-1] == "target_project before the refactoring"
    assert [s for s in subjects if s.startswith("refactor-tool: phase")] == [
        f"refactor-tool: phase {n} - {PHASES[n].title}"
        for n in sorted(PHASES, reverse=True)
    ]
    assert git(dest, "status", "--porcelain") == ""
    # the bundled project itself is untouched
    assert not (TARGET / ".refactor-tool").exists()
    status = run_cli("status", "--target", str(dest))
    assert status.returncode == 0 and "pending" not in status.stdout
    # every phase the run applied (and whose gate passed) shows applied, with no detail
    states, details = status_states(status.stdout), status_details(status.stdout)
    assert {n: states[str(n)] for n in PHASES} == {n: "applied" for n in PHASES}
    assert {n: details[str(n)] for n in PHASES} == {n: "" for n in PHASES}
    if (REPO / "refactor_tool" / "check.py").is_file():
        check = run_cli("check", "--target", str(dest))
        assert check.returncode == 0, check.stdout + check.stderr
    # the demo refuses a destination that is not empty
    again = run_cli("demo", "--dest", str(dest))
    assert again.returncode == 2 and "must be a new or empty directory" in again.stderr


def test_demo_hints_name_a_command_that_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a virtualenv that is not activated, the hints give the script's own path."""
    from refactor_tool.cli import own_command

    script = tmp_path / "venv" / "bin" / "refactor-tool"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(script), "demo"])
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    assert own_command() == str(script)
    monkeypatch.setenv("PATH", str(script.parent))
    assert own_command() == "refactor-tool"
    monkeypatch.setattr(sys, "argv", [str(REPO / "refactor_tool" / "__main__.py")])
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    assert own_command().endswith(" -m refactor_tool")


def test_a_phase_before_its_predecessors_exits_2(target: Path) -> None:
    """Phase 5 over code phases 1-4 have not changed would write tests that call a factory
    that does not exist: refused, nothing written, the phase to apply first named."""
    before = {p: p.read_bytes() for p in target.rglob("*.py")}
    result = run_cli("apply", "--phase", "5", "--no-verify", "--target", str(target))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "phase 5 comes after phase 1, which still has work to do here" in result.stderr
    assert "--out-of-order" in result.stderr
    assert {p: p.read_bytes() for p in target.rglob("*.py")} == before

    # once phase 1 is applied, phase 2 may follow; phase 3 may not yet
    assert run_cli("apply", "--phase", "1", "--no-verify", "--target", str(target)).returncode == 0
    result = run_cli("apply", "--phase", "3", "--dry-run", "--target", str(target))
    assert result.returncode == 2 and "after phase 2" in result.stderr, result.stderr
    result = run_cli(
        "apply", "--phase", "3", "--dry-run", "--out-of-order", "--target", str(target)
    )
    assert result.returncode == 0, result.stdout + result.stderr
