"""SessionContext and the DatabaseManager singleton."""

import pytest
from sqlalchemy import func, select

from libris.db.session import DatabaseManager, SessionContext, get_db_context
from libris.models import Branch, Member
from libris.services.members import MemberManager


def test_get_db_context_uses_the_singleton(database_manager):
    assert get_db_context()._db is database_manager
    assert DatabaseManager.get_instance() is database_manager


def test_context_commits(session_context, database_manager):
    with session_context as session:
        session.add(Branch(code="CTX", name="Context"))
    with SessionContext(database_manager) as session:
        assert session.scalar(select(Branch.code)) == "CTX"


def test_context_rolls_back_on_error(session_context):
    with pytest.raises(RuntimeError):
        with session_context as session:
            session.add(Branch(code="GONE", name="Gone"))
            session.flush()
            raise RuntimeError("power cut")
    with session_context as session:
        assert session.scalar(select(func.count(Branch.id))) == 0


def test_objects_readable_after_context(session_context):
    with session_context as session:
        member = MemberManager(session=session).register("C1", "Kept", email="k@example.org")
    assert (member.card_number, member.email) == ("C1", "k@example.org")
