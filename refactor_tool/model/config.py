"""Names and paths the codemods work with.

The defaults are docs/plan.md's names. A project that calls things differently overrides any of
them in its own ``pyproject.toml``::

    [tool.refactor-tool]
    package = "myapp"
    session_module = "myapp/db/session.py"
    session_fixture = "dbsession"
"""

from __future__ import annotations

import ast
import configparser
import dataclasses
import functools
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


class ConfigError(Exception):
    """A ``[tool.refactor-tool]`` table that cannot be used (names the file and key)."""


@dataclass(frozen=True)
class Config:
    # --- application layout -------------------------------------------------------------
    package: str = "sologm"
    # directory the package sits in, relative to the project root ("" for a flat layout,
    # "src" for a src layout); found from the project's own packaging when not given
    source_root: str = ""
    session_module: str = "sologm/database/session.py"
    base_manager_module: str = "sologm/core/base_manager.py"
    core_package: str = "sologm/core"
    factory_module: str = "sologm/core/factory.py"
    # --- class, method and function names -----------------------------------------------
    database_manager_class: str = "DatabaseManager"
    session_context_class: str = "SessionContext"
    base_manager_class: str = "BaseManager"
    get_session_method: str = "_get_session"
    execute_method: str = "_execute_db_operation"
    lazy_init_method: str = "_lazy_init_manager"
    factory_function: str = "create_all_managers"
    removed_session_apis: tuple[str, ...] = ("get_session", "close_session", "scoped_session")
    # --- tests --------------------------------------------------------------------------
    session_fixture: str = "db_session"
    session_context_fixture: str = "session_context"
    factory_fixture_prefix: str = "create_test_"
    session_variable: str = "session"
    managers_variable: str = "managers"
    # --- verification -------------------------------------------------------------------
    script: str = "sologm"  # entry point in [project.scripts] that the phase-1 gate runs
    smoke_args: tuple[str, ...] = ("game", "list")
    smoke_env: tuple[str, ...] = ("SOLOGM_HOME", "SOLOGM_DATABASE_URL")
    pytest_args: tuple[str, ...] = ()
    # --- files --------------------------------------------------------------------------
    exclude: tuple[str, ...] = (
        ".git",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "build",
        "dist",
        "node_modules",
        "__pycache__",
        ".refactor-tool",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
    )

    @property
    def package_dotted(self) -> str:
        return self.package.replace("/", ".")

    @property
    def package_dir(self) -> str:
        """The package's directory relative to the project root (``src/myapp`` in a src layout)."""
        return str(PurePosixPath(self.source_root or ".") / self.package)

    def module_name(self, relpath: str) -> str:
        """``sologm/core/factory.py`` -> ``sologm.core.factory``; in a src layout
        ``src/myapp/db.py`` -> ``myapp.db`` (the source root is on ``sys.path``, not a package)."""
        return _module_name(relpath, self.source_root)

    @property
    def factory_module_name(self) -> str:
        return self.module_name(self.factory_module)

    @property
    def session_module_name(self) -> str:
        return self.module_name(self.session_module)

    @property
    def base_manager_module_name(self) -> str:
        return self.module_name(self.base_manager_module)

    @property
    def removed_names(self) -> frozenset[str]:
        """The names the refactoring removes: the session APIs of phase 1, the base
        manager's session helper and the old session fixture."""
        return frozenset(
            n
            for n in (*self.removed_session_apis, self.get_session_method, self.session_fixture)
            if n
        )


@functools.lru_cache(maxsize=4096)
def _module_name(relpath: str, source_root: str = "") -> str:
    parts = list(PurePosixPath(relpath).with_suffix("").parts)
    root = PurePosixPath(source_root).parts if source_root else ()
    if root and tuple(parts[: len(root)]) == root:
        parts = parts[len(root) :]
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def load_config(root: Path) -> Config:
    """Read ``[tool.refactor-tool]`` from ``root/pyproject.toml``; where it is silent, what
    the code says (:func:`discover`, as recorded when the refactoring began), else the
    defaults."""
    config, configured, data = _read(root)
    found = _found(root, config, configured, data)
    return dataclasses.replace(config, **found) if found else config


def found_in_code(root: Path) -> dict[str, object]:
    """The settings :func:`load_config` takes from the code (:func:`discover`, as recorded
    when the refactoring began), not from the project's table or the defaults."""
    config, configured, data = _read(root)
    return _found(root, config, configured, data)


def _found(root: Path, config: Config, configured: set[str], data: dict) -> dict[str, object]:
    found = recorded_layout(root)
    if found is None:
        found = discover(root, config, configured, data)
    return {k: v for k, v in found.items() if k not in configured}


def _read(root: Path) -> tuple[Config, set[str], dict]:
    """The defaults with the project's own ``[tool.refactor-tool]`` table applied (and its
    source root found), the keys the table sets, and the whole ``pyproject.toml``."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return dataclasses.replace(Config(), source_root=_source_root(root, {}, Config.package)), set(), {}
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{pyproject}: cannot read TOML: {exc}") from exc
    table = data.get("tool", {}).get("refactor-tool", {})
    overrides: dict[str, object] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in _FIELDS:
            known = ", ".join(sorted(_FIELDS))
            raise ConfigError(
                f"{pyproject}: [tool.refactor-tool] has unknown key {key!r}; known keys: {known}"
            )
        default = getattr(Config(), name)
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{pyproject}: [tool.refactor-tool] {key} must be a list of strings")
            value = tuple(value)
        elif not isinstance(value, type(default)):
            raise ConfigError(
                f"{pyproject}: [tool.refactor-tool] {key} must be a {type(default).__name__}"
            )
        overrides[name] = value
    config = dataclasses.replace(Config(), **overrides)
    if "source_root" not in overrides:
        source_root, package = _split_package(data, config.package)
        if not source_root:
            source_root = _source_root(root, data, package)
        config = dataclasses.replace(config, source_root=source_root, package=package)
    return config, set(overrides), data


def _split_package(data: dict, package: str) -> tuple[str, str]:
    """``package = "src/myapp"``: a leading source directory (one :func:`_source_dirs`
    names) is where the package sits, not part of its name."""
    path = PurePosixPath(package)
    for candidate in _source_dirs(data):
        source = PurePosixPath(candidate)
        if str(source) not in ("", ".") and path.parts[: len(source.parts)] == source.parts:
            rest = path.parts[len(source.parts) :]
            if rest:
                return str(source), str(PurePosixPath(*rest))
    return "", package


def _source_dirs(data: dict) -> list[str]:
    """The directories the project's packaging finds packages in (setuptools'
    ``packages.find`` ``where``, ``package-dir`` ``""``), then ``src`` (the src layout)."""
    setuptools = data.get("tool", {}).get("setuptools", {})
    found: list[str] = []
    packages = setuptools.get("packages")
    if isinstance(packages, dict):
        where = packages.get("find", {}).get("where", [])
        found += [w for w in where if isinstance(w, str)]
    package_dir = setuptools.get("package-dir")
    if isinstance(package_dir, dict) and isinstance(package_dir.get(""), str):
        found.append(package_dir[""])
    return [*found, "src"]


def _source_root(root: Path, data: dict, package: str) -> str:
    """Where the package's top directory lives: the directory setuptools is told to find
    packages in (``[tool.setuptools.packages.find] where`` or ``package-dir`` ``""``) when the
    package is there, else ``src`` when the package is only there (the src layout), else the
    project root."""
    candidates = _source_dirs(data)
    if (root / package).is_dir():
        candidates = candidates[:-1]  # a flat layout: only the packaging's word moves it
    for candidate in candidates:
        cleaned = str(PurePosixPath(candidate))
        if cleaned not in ("", ".") and (root / cleaned / package).is_dir():
            return cleaned
    return ""


# ------------------------------------------------------------------------------ discovery

#: where the tool keeps its own files in the target (baseline, run state, journal, layout)
STATE_DIR = ".refactor-tool"
#: what :func:`discover` found when the run began, kept for the rest of the refactoring
LAYOUT_FILE = "layout.json"
#: the directories of a project root that hold no application package
_NOT_PACKAGES = frozenset({"tests", "test", "testing", "docs", "doc", "examples", "scripts", "bench", "benchmarks"})


def python_files_under(root: Path, exclude: Iterable[str]) -> Iterator[str]:
    """The ``.py`` files of the target (relative POSIX paths): not those of ``exclude``'d
    directories, of installed trees (``site-packages``, ``*.egg-info``) or of a virtual
    environment inside the target, whatever its name (``pyvenv.cfg``)."""
    excluded = set(exclude)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in excluded
            and not d.endswith(".egg-info")
            and d != "site-packages"
            and not os.path.isfile(os.path.join(dirpath, d, "pyvenv.cfg"))
        )
        rel_dir = Path(dirpath).relative_to(root)
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield (rel_dir / name).as_posix()


class _Texts:
    """The target's files as text, each read once (an unreadable one is empty)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._read: dict[str, str] = {}

    def __call__(self, rel: str) -> str:
        if rel not in self._read:
            try:
                self._read[rel] = (self.root / rel).read_text(encoding="utf-8", errors="replace")
            except OSError:
                self._read[rel] = ""
        return self._read[rel]


def _defining(text: _Texts, rels: Iterable[str], class_name: str) -> list[str]:
    """The files of ``rels`` that define the class ``class_name`` at their top level."""
    pattern = re.compile(rf"^class\s+{re.escape(class_name)}\b", re.MULTILINE)
    return [rel for rel in rels if pattern.search(text(rel))]


_SESSION_KEYWORD = re.compile(r"\bsession\s*=\s*([A-Za-z_]\w*)\b(?!\s*[.(\[])")
_ENV_READ = re.compile(
    r"""(?:environ(?:\.get)?\s*[\[(]|getenv\s*\()\s*["']([A-Z][A-Z0-9_]*)["']"""
)


_FUNCTION = re.compile(r"^def\s+(\w+)\b[^\n]*\n((?:[ \t]+[^\n]*\n|[ \t]*\n)*)", re.MULTILINE)
_CLASS = re.compile(r"^class\s+(\w+)\b[^\n]*:[^\n]*\n((?:[ \t]+[^\n]*\n|[ \t]*\n)*)", re.MULTILINE)


def _class_names(
    text: _Texts, rels: Iterable[str], config: Config, configured: set[str]
) -> dict[str, object]:
    """The plan's three classes under the names the code gives them, where no class has the
    plan's name: the database manager is the class that builds a ``scoped_session`` (else a
    ``sessionmaker``), the base manager the one that defines the session helper or the
    operation wrapper (``_get_session``, ``_execute_db_operation``), the session context a
    class beside the database manager that is a context manager."""
    home = {
        config.database_manager_class: config.session_module,
        config.session_context_class: config.session_module,
        config.base_manager_class: config.base_manager_module,
    }
    if all(_defining(text, [rel], name) for name, rel in home.items()):
        return {}  # the plan's classes, where the plan puts them
    bodies: dict[str, list[tuple[str, str]]] = {}  # rel -> [(class, body)]
    for rel in rels:
        source = text(rel)
        if "class " in source and not _speaks_pytest(rel, source):
            bodies[rel] = _CLASS.findall(source)
    defined = {name for found in bodies.values() for name, _ in found}
    out: dict[str, object] = {}

    def only(matching: list[tuple[str, str]]) -> tuple[str, str] | None:
        return matching[0] if len({m[0] for m in matching}) == 1 else None

    everything = [(rel, name, body) for rel, found in bodies.items() for name, body in found]
    if "database_manager_class" not in configured and config.database_manager_class not in defined:
        chosen = only([(n, r) for r, n, b in everything if "scoped_session(" in b]) or only(
            [(n, r) for r, n, b in everything if "sessionmaker(" in b]
        )
        if chosen is not None:
            out["database_manager_class"] = chosen[0]
    if "base_manager_class" not in configured and config.base_manager_class not in defined:
        helpers = (f"def {config.get_session_method}(", f"def {config.execute_method}(")
        chosen = only([(n, r) for r, n, b in everything if any(h in b for h in helpers)])
        if chosen is not None:
            out["base_manager_class"] = chosen[0]
    manager = out.get("database_manager_class", config.database_manager_class)
    if "session_context_class" not in configured and config.session_context_class not in defined:
        homes = {r for r, n, _ in everything if n == manager}
        chosen = only(
            [
                (n, r)
                for r, n, b in everything
                if r in homes and "def __enter__(" in b and "def __exit__(" in b
            ]
        )
        if chosen is not None:
            out["session_context_class"] = chosen[0]
    return out


_CLASS_BASES = re.compile(r"class\s+\w+\s*\(([^)]*)\)")
_INIT_FIRST = re.compile(r"\bdef\s+__init__\s*\(\s*self\s*,\s*(\w+)")


def _takes_session_first(text: _Texts, rels: Iterable[str]) -> set[str]:
    """The classes of ``rels`` whose constructor takes ``session`` as its first parameter,
    by their own ``__init__`` or, lacking one, by the one they inherit from a class of
    ``rels``."""
    first: dict[str, str | None] = {}  # class -> its own __init__'s first parameter
    bases: dict[str, list[str]] = {}
    for rel in rels:
        source = text(rel)
        if "class " not in source or _speaks_pytest(rel, source):
            continue
        for found in _CLASS.finditer(source):
            name, body = found.groups()
            init = _INIT_FIRST.search(body)
            first[name] = init.group(1) if init else None
            header = _CLASS_BASES.match(found.group(0))
            bases[name] = [
                b.split("[")[0].strip().rsplit(".", 1)[-1]
                for b in (header.group(1) if header else "").split(",")
                if b.strip() and "=" not in b
            ]

    def parameter(name: str, seen: frozenset[str] = frozenset()) -> str | None:
        if first.get(name) is not None or name in seen:
            return first.get(name)
        for base in bases.get(name, ()):
            if base in first:
                found = parameter(base, seen | {name})
                if found is not None:
                    return found
        return None

    return {name for name in first if parameter(name) == "session"}


def _dir(path: str) -> str:
    """``path`` as a relative POSIX directory, ``""`` for the root."""
    cleaned = str(PurePosixPath(path.strip("/") or "."))
    return "" if cleaned == "." else cleaned


def _under(files: Iterable[str], directory: str) -> list[str]:
    return [r for r in files if not directory or r.startswith(directory + "/")]


def _defines(text: str, name: str) -> bool:
    """Whether ``text`` defines a function ``name`` (a fixture, where it is a fixture file)."""
    return re.search(rf"\bdef\s+{re.escape(name)}\s*\(", text) is not None


_PYTEST = re.compile(r"^[ \t]*(?:import pytest\b|from pytest\b)|\bpytest\.fixture\b", re.MULTILINE)


def _speaks_pytest(rel: str, text: str) -> bool:
    """Whether the file is written for pytest (a conftest, or it imports pytest): where
    fixtures are defined and handed around, and no application class is."""
    return PurePosixPath(rel).name == "conftest.py" or _PYTEST.search(text) is not None


def discover(root: Path, config: Config, configured: set[str], data: dict) -> dict[str, object]:
    """What the code says where the plan's defaults do not fit a project whose
    ``[tool.refactor-tool]`` table does not say it (the keys in ``configured`` are left
    alone):

    * the database manager, base manager and session context classes, where none has the
      plan's name (:func:`_class_names`);
    * ``removed_session_apis``: the plan's, and any standalone function of the session
      module that hands out the database manager's session under another name;
    * ``package``: the top-level package that defines the database manager class, else the
      one named like the project, else the only one;
    * ``session_module`` and ``base_manager_module``: the module of the package that defines
      the database manager class, and the one that defines the base manager class;
      ``core_package`` is the base manager's package, ``factory_module`` a ``factory.py``
      there;
    * ``script``: the ``[project.scripts]`` entry point of the package, run with
      ``--help`` as the smoke command; ``smoke_env``: the environment variables the package
      reads for a home directory or a database URL;
    * ``session_fixture``: the fixture the conftests and tests hand to managers as
      ``session=``, or as the first argument of a class whose constructor takes ``session``
      first, most often, where no fixture has the plan's name.
    """
    found: dict[str, object] = {}
    files = list(python_files_under(root, config.exclude))
    text = _Texts(root)
    classes = _class_names(text, files, config, configured)
    if classes:
        found.update(classes)
        config = dataclasses.replace(config, **classes)
    package, source_root = config.package, config.source_root
    package_dir = _dir(f"{source_root}/{package}")
    if "package" not in configured and not (root / package_dir).is_dir():
        candidates: list[tuple[str, str]] = []  # (source root, package)
        for base in dict.fromkeys(["", *(_dir(d) for d in _source_dirs(data))]):
            above = PurePosixPath(base).parts
            for rel in files:
                parts = PurePosixPath(rel).parts
                if (
                    len(parts) == len(above) + 2
                    and parts[-1] == "__init__.py"
                    and parts[: len(above)] == above
                    and parts[len(above)] not in _NOT_PACKAGES
                ):
                    candidates.append((base, parts[len(above)]))
        owning = [
            (base, name)
            for base, name in candidates
            if _defining(text, _under(files, _dir(f"{base}/{name}")), config.database_manager_class)
        ]
        named = str(data.get("project", {}).get("name", "")).replace("-", "_").lower()
        chosen = (
            owning[0]
            if len(owning) == 1
            else next((c for c in candidates if c[1] == named), None)
            or (candidates[0] if len(candidates) == 1 else None)
        )
        if chosen is not None:
            source_root, package = chosen
            found.update(package=package, source_root=source_root)
            package_dir = _dir(f"{source_root}/{package}")
    in_package = _under(files, _dir(package_dir))
    if "session_module" not in configured and not (root / config.session_module).is_file():
        defining = _defining(text, in_package, config.database_manager_class)
        if defining:
            found["session_module"] = defining[0]
    if "removed_session_apis" not in configured:
        # a standalone function of the session module that hands out the manager's session
        # under another name goes like get_session()
        session_module = str(found.get("session_module", config.session_module))
        calls = tuple(f".{name}(" for name in config.removed_session_apis)
        wrappers = [
            name
            for name, body in _FUNCTION.findall(text(session_module))
            if name not in config.removed_session_apis and any(c in body for c in calls)
        ]
        if wrappers:
            found["removed_session_apis"] = (*config.removed_session_apis, *wrappers)
    if "base_manager_module" not in configured and not (root / config.base_manager_module).is_file():
        defining = _defining(text, in_package, config.base_manager_class)
        if defining:
            found["base_manager_module"] = defining[0]
            if "core_package" not in configured:
                found["core_package"] = str(PurePosixPath(defining[0]).parent)
                if "factory_module" not in configured:
                    found["factory_module"] = f"{found['core_package']}/factory.py"
    scripts = project_scripts(root)
    if "script" not in configured and config.script not in scripts:
        dotted = package.replace("/", ".")
        own = sorted(
            name
            for name, target in scripts.items()
            if isinstance(target, str) and re.match(rf"{re.escape(dotted)}[.:]", target.strip())
        )
        if own or len(scripts) == 1:
            found["script"] = (own or sorted(scripts))[0]
    if "smoke_args" not in configured and found.get("script", config.script) != Config.script:
        # the plan's own command is the plan's application's; any other is asked for help
        found["smoke_args"] = ("--help",)
    if "smoke_env" not in configured and package != config.package:
        names: set[str] = set()
        for rel in in_package:
            names.update(
                n
                for n in _ENV_READ.findall(text(rel))
                if n.endswith(("_HOME", "_DIR"))
                or (n.endswith("_URL") and ("DB" in n or "DATABASE" in n))
            )
        found["smoke_env"] = tuple(sorted(names))
    if {"session_fixture", "session_context_fixture"} - configured:
        # where fixtures are defined and handed to managers
        joined = "\n".join(text(rel) for rel in files if _speaks_pytest(rel, text(rel)))
    if "session_context_fixture" not in configured and not _defines(joined, config.session_context_fixture):
        # the fixture that hands tests a session context already
        returning = re.findall(
            rf"\bdef\s+(\w+)\s*\([^)]*\)[^:\n]*:\s*\n[ \t]+return\s+[\w.]*\b"
            rf"{re.escape(config.session_context_class)}\(",
            joined,
        )
        if len(set(returning)) == 1:
            found["session_context_fixture"] = returning[0]
    if "session_fixture" not in configured and not _defines(joined, config.session_fixture):
        handed = _SESSION_KEYWORD.findall(joined)
        first = _takes_session_first(text, in_package)
        if first:
            # ``StudentManager(db)``: handed over in the session's place, without its name
            positional = re.compile(
                rf"\b(?:{'|'.join(map(re.escape, sorted(first)))})\(\s*([A-Za-z_]\w*)\s*[,)]"
            )
            handed += positional.findall(joined)
        counts = Counter(n for n in handed if n not in ("None", "self") and _defines(joined, n))
        if counts:
            found["session_fixture"] = counts.most_common(1)[0][0]
    return found


def recorded_layout(root: Path) -> dict[str, object] | None:
    """What :func:`discover` found when the refactoring of ``root`` began (None: nothing
    recorded): the session fixture, for one, is gone once phase 4 has run."""
    try:
        data = json.loads((Path(root) / STATE_DIR / LAYOUT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    out: dict[str, object] = {}
    for key, value in data.items():
        field = _FIELDS.get(key)
        if field is None:
            continue
        default = getattr(Config(), key)
        if isinstance(default, tuple) and isinstance(value, list):
            out[key] = tuple(str(v) for v in value)
        elif isinstance(value, type(default)):
            out[key] = value
    return out


def keep_layout(root: Path) -> None:
    """Record what :func:`discover` finds in ``root`` now, unless a record is there already,
    so that every later run of the same refactoring works with it."""
    path = Path(root) / STATE_DIR / LAYOUT_FILE
    if path.exists():
        return
    base, configured, data = _read(Path(root))
    found = discover(Path(root), base, configured, data)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(found, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def project_scripts(root: Path, text: bytes | None = None) -> dict[str, str]:
    """The target's console scripts (entry-point name -> ``module:function``): its
    ``[project.scripts]`` table (read from ``text``, the contents of its ``pyproject.toml``,
    when given), else setup.cfg's ``console_scripts`` entry points, else setup.py's (when its
    ``setup()`` call writes them as a literal)."""
    pyproject = root / "pyproject.toml"
    if text is None and pyproject.is_file():
        text = pyproject.read_bytes()
    if text is not None:
        try:
            data = tomllib.loads(text.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            data = {}
        scripts = data.get("project", {}).get("scripts", {})
        if isinstance(scripts, dict) and scripts:
            return {str(k): str(v) for k, v in scripts.items()}
    setup_cfg = root / "setup.cfg"
    lines = ""
    if setup_cfg.is_file():
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(setup_cfg.read_text(encoding="utf-8"))
            lines = parser.get("options.entry_points", "console_scripts", fallback="")
        except (configparser.Error, UnicodeDecodeError):
            lines = ""
    if not lines.strip():
        lines = "\n".join(_setup_py_console_scripts(root / "setup.py"))
    out = {}
    for line in lines.splitlines():
        name, sep, target = line.partition("=")
        if sep and name.strip() and target.strip():
            out[name.strip()] = target.strip()
    return out


def _setup_py_console_scripts(setup_py: Path) -> list[str]:
    """The ``console_scripts`` entries (``name = module:function``) of a ``setup.py`` whose
    ``setup(...)`` call writes its ``entry_points`` as a literal (a dict whose
    ``console_scripts`` is a list of strings, or one string); read, not run."""
    if not setup_py.is_file():
        return []
    try:
        tree = ast.parse(setup_py.read_bytes())
    except (SyntaxError, ValueError):
        return []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if called != "setup":
            continue
        for keyword in node.keywords:
            if keyword.arg != "entry_points":
                continue
            try:
                value = ast.literal_eval(keyword.value)
            except ValueError:
                return []
            scripts = value.get("console_scripts") if isinstance(value, dict) else None
            if isinstance(scripts, str):
                scripts = scripts.splitlines()
            if isinstance(scripts, (list, tuple)):
                return [s for s in scripts if isinstance(s, str)]
    return []


__all__ = [
    "Config",
    "ConfigError",
    "discover",
    "found_in_code",
    "keep_layout",
    "load_config",
    "project_scripts",
    "python_files_under",
    "recorded_layout",
]
