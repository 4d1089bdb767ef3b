"""Names and paths the codemods work with.

The defaults are docs/plan.md's names. A project that calls things differently overrides any of
them in its own ``pyproject.toml``::

    [tool.refactor-tool]
    package = "myapp"
    session_module = "myapp/db/session.py"
    session_fixture = "dbsession"
"""

from __future__ import annotations

import dataclasses
import functools
import sys
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
    """Read ``[tool.refactor-tool]`` from ``root/pyproject.toml``; defaults where absent."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return dataclasses.replace(Config(), source_root=_source_root(root, {}, Config.package))
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
    return config


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


def project_scripts(root: Path) -> dict[str, str]:
    """The target's ``[project.scripts]`` table (entry-point name -> ``module:function``)."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}
    return dict(data.get("project", {}).get("scripts", {}))


__all__ = ["Config", "ConfigError", "load_config", "project_scripts"]
