import pytest
from click.testing import CliRunner

from libris.cli import cli
from libris.services.branches import BranchManager
from libris.services.catalog import CatalogManager
from libris.services.members import MemberManager


@pytest.fixture
def invoke():
    runner = CliRunner()

    def _invoke(*args):
        return runner.invoke(cli, list(args))

    return _invoke


@pytest.fixture
def create_test_shelf():
    """Factory: a current branch with a few books, straight through the services."""

    def _create_shelf(session, code="EAST", titles=("Dune", "Emma")):
        branches = BranchManager(session=session)
        catalog = CatalogManager(branch_manager=branches, session=session)
        branch = branches.open_branch(code, f"{code.title()} Branch", make_current=True)
        for n, title in enumerate(titles, start=1):
            catalog.add_book(f"{code}{n:03d}", "9780441013593", title, author="Various")
        return branch

    return _create_shelf


@pytest.fixture
def desk_member(db_session):
    return MemberManager(session=db_session).register("C0042", "Dee Desk", email="dee@example.org")
