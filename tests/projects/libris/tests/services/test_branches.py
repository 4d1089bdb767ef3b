import pytest
from sqlalchemy import select

from libris.errors import BranchError
from libris.models import Branch
from libris.services.branches import BranchManager


class TestBranchManager:
    def test_open_branch(self, branch_manager, db_session):
        branch = branch_manager.open_branch("east", "East Side")
        assert branch.code == "EAST"
        assert db_session.get(Branch, branch.id).name == "East Side"

    def test_open_branch_twice(self, branch_manager, main_branch):
        with pytest.raises(BranchError, match="already exists"):
            branch_manager.open_branch("main", "Main again")

    def test_open_branch_needs_code(self, branch_manager):
        with pytest.raises(BranchError):
            branch_manager.open_branch("  ", "Nameless")

    def test_current_branch(self, branch_manager, main_branch):
        assert branch_manager.current_branch().id == main_branch.id

    def test_no_current_branch(self, branch_manager):
        with pytest.raises(BranchError, match="No current branch"):
            branch_manager.current_branch()

    def test_use_branch_moves_current(self, branch_manager, main_branch, create_test_branch, db_session):
        create_test_branch(db_session, "WEST", "West End", current=False)

        branch_manager.use_branch("west")

        current = db_session.scalars(select(Branch).where(Branch.is_current.is_(True))).all()
        assert [b.code for b in current] == ["WEST"]

    def test_list_branches(self, branch_manager, create_test_branch, db_session):
        create_test_branch(db_session, "ZED", "Zed Street", current=False)
        create_test_branch(db_session, "ABC", "Abbey Road")
        assert [b.code for b in branch_manager.list_branches()] == ["ABC", "ZED"]


def test_branches_in_a_context(session_context):
    with session_context as session:
        manager = BranchManager(session=session)
        manager.open_branch("NORTH", "North Point", make_current=True)
    with session_context as session:
        assert BranchManager(session=session).current_branch().code == "NORTH"
