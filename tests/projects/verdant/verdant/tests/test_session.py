import pytest

from verdant.core.greenhouse import GreenhouseManager
from verdant.database.session import DatabaseManager, SessionContext
from verdant.models import Greenhouse


def test_context_commits(session_context):
    with session_context as session:
        session.add(Greenhouse(name="Committed"))
    with session_context as session:
        assert session.query(Greenhouse).count() == 1


def test_context_rolls_back(session_context):
    with pytest.raises(RuntimeError):
        with session_context as session:
            session.add(Greenhouse(name="Rolled back"))
            session.flush()
            raise RuntimeError("boom")
    with session_context as session:
        assert session.query(Greenhouse).count() == 0


def test_context_uses_singleton(database_manager):
    ctx = SessionContext()
    assert ctx._db is DatabaseManager.get_instance()


def test_manager_in_context(session_context):
    with session_context as session:
        GreenhouseManager(session=session).create_greenhouse("In Context")
    with session_context as session:
        names = [g.name for g in GreenhouseManager(session=session).list_greenhouses()]
    assert names == ["In Context"]


def test_db_session_commit(db_session):
    db_session.add(Greenhouse(name="Direct"))
    db_session.commit()
    assert db_session.query(Greenhouse).filter_by(name="Direct").one().is_active is False
