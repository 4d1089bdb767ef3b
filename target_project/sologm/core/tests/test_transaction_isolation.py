"""Commit and rollback behaviour of SessionContext."""

import pytest

from sologm.core.game import GameManager
from sologm.database.session import DatabaseManager, SessionContext, get_db_context
from sologm.models.event_source import EventSource
from sologm.models.game import Game


def test_get_db_context_uses_singleton(database_manager):
    context = get_db_context()
    assert isinstance(context, SessionContext)
    assert context._db is database_manager
    assert DatabaseManager.get_instance() is database_manager


def test_context_commits_on_success(database_manager):
    with SessionContext(database_manager) as session:
        session.add(Game.create(name="Committed Game"))

    with SessionContext(database_manager) as session:
        assert session.query(Game).filter(Game.slug == "committed-game").count() == 1


def test_context_rolls_back_on_error(database_manager):
    with pytest.raises(RuntimeError):
        with SessionContext(database_manager) as session:
            session.add(Game.create(name="Rolled Back Game"))
            session.flush()
            raise RuntimeError("abort")

    with SessionContext(database_manager) as session:
        assert session.query(Game).count() == 0


def test_context_does_not_swallow_exceptions(session_context):
    with pytest.raises(KeyError):
        with session_context:
            raise KeyError("missing")


def test_rollback_keeps_earlier_commits(session_context):
    with session_context as session:
        session.add(Game.create(name="Keeper"))

    with pytest.raises(ValueError):
        with session_context as session:
            session.add(Game.create(name="Loser"))
            session.flush()
            raise ValueError("nope")

    with session_context as session:
        assert [g.name for g in session.query(Game).all()] == ["Keeper"]


def test_session_closed_after_context(session_context):
    with session_context as session:
        session.add(Game.create(name="Closing Game"))
        assert session.in_transaction()

    assert not session.in_transaction()


def test_objects_usable_after_context(session_context):
    """expire_on_commit=False: attributes stay loaded after the context closes."""
    with session_context as session:
        game = Game.create(name="Survivor", description="Still readable")
        session.add(game)

    assert game.name == "Survivor"
    assert game.description == "Still readable"


def test_manager_writes_visible_in_next_context(session_context):
    with session_context as session:
        game_manager = GameManager(session=session)
        game_manager.create_game("Manager Game", "Through the manager")

    with session_context as session:
        game_manager = GameManager(session=session)
        assert game_manager.get_game_by_slug("manager-game").description == "Through the manager"


def test_seeded_sources_visible(session_context):
    with session_context as session:
        names = sorted(name for (name,) in session.query(EventSource.name))
    assert names == ["dice", "manual", "oracle"]


@pytest.mark.parametrize("count", [1, 3])
def test_many_rows_in_one_context(session_context, count):
    with session_context as session:
        for i in range(count):
            session.add(Game.create(name=f"Bulk {i}"))

    with session_context as session:
        assert session.query(Game).count() == count
