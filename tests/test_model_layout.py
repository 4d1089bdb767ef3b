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
