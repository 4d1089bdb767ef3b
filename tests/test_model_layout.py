"""What the model reads from a target's own packaging and pytest configuration: where its
package sits (a src layout) and how its pytest names tests."""

from __future__ import annotations

from pathlib import Path

from refactor_tool.model import fixtures as fx
from refactor_tool.model.config import load_config
from refactor_tool.model.project import Project


def _write(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_src_layout_is_found_and_module_names_leave_it_out(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "pyproject.toml": '[tool.refactor-tool]\npackage = "fleet"\n',
            "src/fleet/__init__.py": "",
            "src/fleet/db.py": "",
        },
    )
    config = load_config(root)
    assert config.source_root == "src"
    assert config.package_dir == "src/fleet"
    assert config.module_name("src/fleet/db.py") == "fleet.db"
    assert config.module_name("src/fleet/__init__.py") == "fleet"
    assert config.module_name("tests/test_db.py") == "tests.test_db"


def test_module_files_are_found_below_the_source_root(tmp_path: Path) -> None:
    """The file of a module name, the inverse of ``module_name``: in a src layout the
    package's modules sit below ``src``, the tests' at the root."""
    root = _write(
        tmp_path,
        {
            "pyproject.toml": '[tool.refactor-tool]\npackage = "fleet"\n',
            "src/fleet/__init__.py": "",
            "src/fleet/db/__init__.py": "",
            "src/fleet/db/session.py": "",
            "tests/__init__.py": "",
            "tests/helpers.py": "",
        },
    )
    project = Project(root, load_config(root))
    assert project.module_file("fleet.db") == "src/fleet/db/__init__.py"
    assert project.module_file("fleet.db.session") == "src/fleet/db/session.py"
    assert project.module_file("tests.helpers") == "tests/helpers.py"
    assert project.module_file("fleet.missing") is None
    for rel in ("src/fleet/db/session.py", "tests/helpers.py"):
        assert project.module_file(project.module_name(rel)) == rel


def test_source_root_from_setuptools_where(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "pyproject.toml": (
                '[tool.setuptools.packages.find]\nwhere = ["lib"]\n\n'
                '[tool.refactor-tool]\npackage = "fleet"\n'
            ),
            "lib/fleet/__init__.py": "",
        },
    )
    assert load_config(root).source_root == "lib"


def test_flat_layout_has_no_source_root(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {"pyproject.toml": '[tool.refactor-tool]\npackage = "fleet"\n', "fleet/__init__.py": ""},
    )
    config = load_config(root)
    assert config.source_root == ""
    assert config.package_dir == "fleet"
    assert config.module_name("fleet/db.py") == "fleet.db"


def test_pytest_naming_from_pytest_ini(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "pytest.ini": (
                "[pytest]\npython_files = test_*.py *_checks.py\n"
                "python_functions = test_* should_*\npython_classes = Test Describe*\n"
            ),
            "pyproject.toml": '[tool.pytest.ini_options]\npython_files = ["other_*.py"]\n',
        },
    )
    project = Project(root)
    naming = fx.pytest_naming(project)
    assert fx.is_test_module(project, "tests/report_checks.py")
    assert not fx.is_test_module(project, "tests/other_x.py")  # pytest.ini comes first
    assert naming.is_test_name("should_skip") and naming.is_test_name("test_x")
    assert not naming.is_test_name("helper")
    assert naming.is_test_class_name("TestX") and naming.is_test_class_name("DescribeX")


def test_pytest_naming_from_setup_cfg_and_defaults(tmp_path: Path) -> None:
    root = _write(tmp_path, {"setup.cfg": "[tool:pytest]\npython_functions = check_\n"})
    naming = fx.pytest_naming(Project(root))
    assert naming.is_test_name("check_it") and not naming.is_test_name("test_it")
    assert naming.files == fx.DEFAULT_TEST_FILES
    assert fx.pytest_naming(Project(_write(tmp_path / "bare", {}))) == fx.DEFAULT_NAMING


def test_package_given_with_its_source_directory(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "pyproject.toml": '[tool.refactor-tool]\npackage = "src/fleet"\n',
            "src/fleet/__init__.py": "",
        },
    )
    config = load_config(root)
    assert (config.source_root, config.package, config.package_dir) == ("src", "fleet", "src/fleet")
    assert config.module_name("src/fleet/db.py") == "fleet.db"


def test_a_virtual_environment_inside_the_target_is_not_its_code(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "fleet/__init__.py": "",
            "fleet/db.py": "",
            "tests/test_db.py": "",
            # a virtual environment under any name: it has pyvenv.cfg
            "env311/pyvenv.cfg": "home = /usr/bin\n",
            "env311/lib/python3.11/site-packages/sqlalchemy/orm.py": "",
            # an installed tree without the marker
            "vendor/lib/site-packages/pytest/fixtures.py": "",
        },
    )
    assert Project(root).python_files() == ["fleet/__init__.py", "fleet/db.py", "tests/test_db.py"]


# ------------------------------------------------------------------ the layout, from the code

LARDER = {
    "pyproject.toml": (
        '[project]\nname = "larder-app"\n\n[project.scripts]\nlarder = "larder.cli:main"\n'
    ),
    "src/larder/__init__.py": "",
    "src/larder/storage/__init__.py": "",
    "src/larder/storage/engine.py": (
        "import os\n\nURL = os.environ.get('LARDER_DATABASE_URL', 'sqlite://')\n"
        "HOME = os.getenv(\"LARDER_HOME\")\nKEY = os.environ['LARDER_API_KEY']\n\n\n"
        "class DatabaseManager:\n    pass\n\n\nclass SessionContext:\n    pass\n"
    ),
    "src/larder/services/__init__.py": "",
    "src/larder/services/base.py": "class BaseManager:\n    pass\n",
    "src/larder/services/kitchens.py": (
        "from larder.services.base import BaseManager\n\n\nclass KitchenManager(BaseManager):\n    pass\n"
    ),
    "src/larder/cli.py": "def main():\n    pass\n",
    "tools/__init__.py": "",
    "tests/__init__.py": "",
    "tests/conftest.py": (
        "import pytest\n\nfrom larder.storage.engine import SessionContext\n"
        "from larder.services.kitchens import KitchenManager\n\n\n"
        "@pytest.fixture\ndef orm_session(database_manager):\n    yield database_manager.session()\n\n\n"
        "@pytest.fixture\ndef db_context(database_manager):\n    return SessionContext(database_manager)\n\n\n"
        "@pytest.fixture\ndef kitchen_manager(orm_session):\n    return KitchenManager(session=orm_session)\n"
    ),
    "tests/test_kitchens.py": (
        "from larder.services.kitchens import KitchenManager\n\n\n"
        "def test_kitchens(orm_session, kitchen_manager):\n"
        "    assert KitchenManager(session=orm_session)\n"
    ),
}


def test_the_layout_is_found_in_the_code(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, LARDER))
    assert (config.source_root, config.package) == ("src", "larder")
    assert config.session_module == "src/larder/storage/engine.py"
    assert config.base_manager_module == "src/larder/services/base.py"
    assert config.core_package == "src/larder/services"
    assert config.factory_module == "src/larder/services/factory.py"
    assert (config.script, config.smoke_args) == ("larder", ("--help",))
    # the variables that point the app at its home and database (not its API key)
    assert config.smoke_env == ("LARDER_DATABASE_URL", "LARDER_HOME")
    assert config.session_fixture == "orm_session"  # what managers are handed as session=
    assert config.session_context_fixture == "db_context"  # it returns a SessionContext


def test_the_project_s_own_table_wins_over_the_code(tmp_path: Path) -> None:
    files = dict(LARDER)
    files["pyproject.toml"] += (
        '\n[tool.refactor-tool]\nsession_fixture = "db"\nsmoke_args = ["kitchen", "list"]\n'
    )
    config = load_config(_write(tmp_path, files))
    assert (config.session_fixture, config.smoke_args) == ("db", ("kitchen", "list"))
    assert config.session_module == "src/larder/storage/engine.py"


def test_the_layout_found_before_the_refactoring_holds_after_it(tmp_path: Path) -> None:
    from refactor_tool.model.config import keep_layout

    root = _write(tmp_path, LARDER)
    keep_layout(root)
    # phase 4 deletes the session fixture and the manager fixture that named it
    (root / "tests/conftest.py").write_text("import pytest\n")
    (root / "tests/test_kitchens.py").write_text("def test_kitchens(session_context):\n    pass\n")
    assert load_config(root).session_fixture == "orm_session"
    assert load_config(root).session_context_fixture == "db_context"


def test_the_bundled_target_needs_no_discovery() -> None:
    from refactor_tool.model.config import Config, discover, _read

    root = Path(__file__).resolve().parent.parent / "target_project"
    config, configured, data = _read(root)
    assert discover(root, config, configured, data) == {}
    assert load_config(root) == Config()


def test_the_code_says_what_verdant_s_table_says(tmp_path: Path) -> None:
    """verdant names its layout in its table; without the table the code says the same."""
    import shutil

    source = Path(__file__).resolve().parent / "projects" / "verdant"
    configured = load_config(source)
    copy = tmp_path / "verdant"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
    pyproject = copy / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text[: text.index("[tool.refactor-tool]")])
    found = load_config(copy)
    for key in (
        "package", "source_root", "session_module", "base_manager_module", "core_package",
        "factory_module", "script", "session_fixture", "session_context_fixture",
    ):
        assert getattr(found, key) == getattr(configured, key), key
    assert set(found.smoke_env) == set(configured.smoke_env)


def test_a_session_fixture_named_session_is_found(tmp_path: Path) -> None:
    files = dict(LARDER)
    files["tests/conftest.py"] = files["tests/conftest.py"].replace("orm_session", "session")
    files["tests/test_kitchens.py"] = files["tests/test_kitchens.py"].replace("orm_session", "session")
    assert load_config(_write(tmp_path, files)).session_fixture == "session"


def test_a_session_fixture_handed_over_in_the_session_s_place_is_found(tmp_path: Path) -> None:
    """``KitchenManager(db)``: the base manager's constructor takes ``session`` first, and the
    subclass inherits it; the fixture handed over there is the session fixture."""
    files = dict(LARDER)
    files["src/larder/services/base.py"] = (
        "class BaseManager:\n    def __init__(self, session=None):\n        self._session = session\n"
    )
    files["tests/conftest.py"] = (
        files["tests/conftest.py"].replace("orm_session", "db").replace("session=db", "db")
    )
    files["tests/test_kitchens.py"] = (
        files["tests/test_kitchens.py"].replace("orm_session", "db").replace("session=db", "db")
    )
    assert "session=" not in files["tests/conftest.py"] + files["tests/test_kitchens.py"]
    assert load_config(_write(tmp_path, files)).session_fixture == "db"


def test_the_plan_s_classes_are_found_under_other_names(tmp_path: Path) -> None:
    files = dict(LARDER)
    files["src/larder/storage/engine.py"] = (
        "from sqlalchemy.orm import scoped_session, sessionmaker\n\n\n"
        "class Database:\n    def __init__(self, engine):\n"
        "        self.session = scoped_session(sessionmaker(bind=engine))\n\n\n"
        "class SessionScope:\n    def __enter__(self):\n        return self\n\n"
        "    def __exit__(self, *exc):\n        return False\n\n\n"
        "class Unrelated:\n    def __enter__(self):\n        return self\n"
    )
    files["src/larder/services/base.py"] = (
        "class ManagerBase:\n    def _get_session(self):\n        return None, False\n"
    )
    config = load_config(_write(tmp_path, files))
    assert config.database_manager_class == "Database"
    assert config.base_manager_class == "ManagerBase"
    assert config.session_context_class == "SessionScope"  # the other has no __exit__
    assert config.session_module == "src/larder/storage/engine.py"
    assert config.base_manager_module == "src/larder/services/base.py"


def test_console_scripts_of_setup_cfg_count_as_the_entry_point(tmp_path: Path) -> None:
    from refactor_tool.model.config import project_scripts

    files = {k: v for k, v in LARDER.items() if k != "pyproject.toml"}
    files["setup.cfg"] = (
        "[metadata]\nname = larder\n\n[options.entry_points]\nconsole_scripts =\n"
        "    larder = larder.cli:main\n    larder-admin = larder.admin:main\n"
    )
    root = _write(tmp_path, files)
    assert project_scripts(root) == {"larder": "larder.cli:main", "larder-admin": "larder.admin:main"}
    config = load_config(root)
    assert (config.package, config.script) == ("larder", "larder")


def test_console_scripts_of_setup_py_count_as_the_entry_point(tmp_path: Path) -> None:
    """A ``setup.py`` is read, not run: its ``setup()`` call's literal ``entry_points``."""
    from refactor_tool.model.config import project_scripts

    files = {k: v for k, v in LARDER.items() if k != "pyproject.toml"}
    files["setup.py"] = (
        "from setuptools import find_packages, setup\n\n"
        "setup(\n    name='larder',\n    packages=find_packages('src'),\n"
        "    entry_points={'console_scripts': ['larder=larder.cli:main']},\n)\n"
    )
    root = _write(tmp_path, files)
    assert project_scripts(root) == {"larder": "larder.cli:main"}
    config = load_config(root)
    assert (config.package, config.script) == ("larder", "larder")


def test_a_standalone_session_function_under_another_name_goes_like_get_session(
    tmp_path: Path,
) -> None:
    files = dict(LARDER)
    files["src/larder/storage/engine.py"] += (
        "\n\ndef get_db_session():\n    return DatabaseManager.get_instance().get_session()\n"
        "\n\ndef get_url():\n    return URL\n"
    )
    config = load_config(_write(tmp_path, files))
    assert config.removed_session_apis == (
        "get_session", "close_session", "scoped_session", "get_db_session"
    )


def test_an_entry_point_named_in_the_table_is_asked_for_help(tmp_path: Path) -> None:
    files = dict(LARDER)
    files["pyproject.toml"] += '\n[tool.refactor-tool]\nscript = "larder"\n'
    config = load_config(_write(tmp_path, files))
    assert (config.script, config.smoke_args) == ("larder", ("--help",))
