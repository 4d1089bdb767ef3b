"""Tests for the game manager."""

import pytest
from sqlalchemy.exc import IntegrityError

from sologm.core.act import ActManager
from sologm.core.game import GameManager
from sologm.models.act import Act
from sologm.models.game import Game
from sologm.models.utils import slugify
from sologm.utils.errors import GameError


class TestGameManager:
    """Tests for GameManager."""

    def test_create_game(self, game_manager, db_session):
        game = game_manager.create_game("Test Game", "A test game")

        assert game.id is not None
        assert game.name == "Test Game"
        assert game.slug == "test-game"
        assert game.description == "A test game"
        assert game.is_active is True

        db_game = db_session.query(Game).filter(Game.id == game.id).first()
        assert db_game is not None
        assert db_game.name == "Test Game"

    def test_create_game_inactive(self, game_manager, db_session):
        game = game_manager.create_game("Quiet Game", is_active=False)

        assert game.is_active is False
        assert db_session.get(Game, game.id).is_active is False

    def test_create_game_deactivates_others(self, game_manager, db_session):
        first = game_manager.create_game("First Game")
        second = game_manager.create_game("Second Game")

        db_session.refresh(first)
        assert first.is_active is False
        assert second.is_active is True
        active = db_session.query(Game).filter(Game.is_active == True).all()  # noqa: E712
        assert [g.id for g in active] == [second.id]

    def test_create_game_duplicate_name(self, game_manager, test_game):
        with pytest.raises(GameError, match="already exists"):
            game_manager.create_game(test_game.name)

    @pytest.mark.parametrize("name", ["", "   "])
    def test_create_game_empty_name(self, game_manager, name):
        with pytest.raises(GameError, match="cannot be empty"):
            game_manager.create_game(name)

    def test_list_games_empty(self, game_manager):
        assert game_manager.list_games() == []

    def test_list_games(self, game_manager, create_test_game):
        create_test_game("Game One", "First")
        create_test_game(name="Game Two", description="Second", is_active=False)

        games = game_manager.list_games()
        assert [g.name for g in games] == ["Game One", "Game Two"]

    def test_get_game(self, game_manager, test_game):
        game = game_manager.get_game(test_game.id)
        assert game is not None
        assert game.id == test_game.id
        assert game.name == test_game.name

    def test_get_game_missing(self, game_manager):
        assert game_manager.get_game("does-not-exist") is None

    def test_get_game_by_slug(self, game_manager, test_game):
        game = game_manager.get_game_by_slug("test-game")
        assert game.id == test_game.id

    def test_get_active_game(self, game_manager, test_game):
        active = game_manager.get_active_game()
        assert active is not None
        assert active.id == test_game.id

    def test_get_active_game_none(self, game_manager, create_test_game):
        create_test_game(name="Inactive", is_active=False)
        assert game_manager.get_active_game() is None

    def test_activate_game(self, game_manager, create_test_game, db_session):
        first = create_test_game(name="First")
        second = create_test_game(name="Second", is_active=False)

        game_manager.activate_game(second.id)

        assert db_session.get(Game, second.id).is_active is True
        assert db_session.get(Game, first.id).is_active is False

    def test_activate_shelved_game(self, game_manager, test_game, test_inactive_game):
        game_manager.activate_game(test_inactive_game.id)

        assert game_manager.get_active_game().id == test_inactive_game.id
        assert [g.name for g in game_manager.list_games() if g.is_active] == ["Shelved Game"]

    def test_activate_missing_game(self, game_manager):
        with pytest.raises(GameError, match="not found"):
            game_manager.activate_game("nope")

    def test_deactivate_all_games(self, game_manager, test_game, db_session):
        game_manager.deactivate_all_games()
        assert db_session.query(Game).filter(Game.is_active == True).count() == 0  # noqa: E712

    def test_update_game(self, game_manager, test_game, assert_model_properties):
        updated = game_manager.update_game(test_game.id, name="Renamed Game", description="New")
        assert_model_properties(
            updated,
            {"name": "Renamed Game", "slug": "renamed-game", "description": "New"},
        )

    def test_update_game_description_only(self, game_manager, test_game):
        updated = game_manager.update_game(test_game.id, description="Only this")
        assert updated.name == "Test Game"
        assert updated.description == "Only this"

    def test_update_game_name_clash(self, game_manager, create_test_game):
        create_test_game(name="Taken")
        other = create_test_game(name="Other")
        with pytest.raises(GameError, match="already exists"):
            game_manager.update_game(other.id, name="Taken")

    def test_delete_game(self, game_manager, test_game, db_session):
        assert game_manager.delete_game(test_game.id) is True
        assert db_session.get(Game, test_game.id) is None

    def test_delete_game_missing(self, game_manager):
        assert game_manager.delete_game("missing") is False

    def test_delete_game_cascades_to_acts(self, game_manager, test_act, db_session):
        game_manager.delete_game(test_act.game_id)
        assert db_session.query(Act).count() == 0


def test_execute_db_operation_returns_result(game_manager, db_session):
    def _insert(session, name):
        game = Game.create(name=name)
        session.add(game)
        session.flush()
        return game

    game = game_manager._execute_db_operation("insert game", _insert, "Direct Game")

    assert game.slug == "direct-game"
    assert db_session.get(Game, game.id) is game


def test_execute_db_operation_reraises(game_manager, db_session):
    def _failing(session):
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        game_manager._execute_db_operation("failing", _failing)

    assert db_session.query(Game).count() == 0


def test_execute_db_operation_passes_kwargs(game_manager, test_game):
    def _rename(session, game_id, *, suffix):
        game = session.get(Game, game_id)
        game.description = f"{game.description} {suffix}"
        return game.description

    result = game_manager._execute_db_operation("rename", _rename, test_game.id, suffix="(edited)")
    assert result == "A test game (edited)"


def test_commit_inside_test(db_session, game_manager):
    game = Game.create(name="Manual Game")
    db_session.add(game)
    db_session.commit()

    assert game_manager.get_game_by_slug("manual-game") is not None


def test_nested_transaction_rolls_back_inner_work(db_session, test_game):
    nested = db_session.begin_nested()
    db_session.add(Game.create(name="Nested Game"))
    db_session.flush()
    nested.rollback()

    names = {g.name for g in db_session.query(Game).all()}
    assert names == {test_game.name}


def test_act_manager_built_in_test(db_session, game_manager, test_game):
    act_manager = ActManager(session=db_session, game_manager=game_manager)
    assert act_manager.game_manager is game_manager
    assert act_manager.list_acts(test_game.id) == []


def test_create_game_new_style(session_context):
    with session_context as session:
        game_manager = GameManager(session=session)
        game = game_manager.create_game("Context Game", "Created in a context")
        assert session.get(Game, game.id).name == "Context Game"


@pytest.mark.parametrize(
    "name,expected",
    [
        ("Simple", "simple"),
        ("Two Words", "two-words"),
        ("  Trim me  ", "trim-me"),
        ("Punctuation! Here?", "punctuation-here"),
        ("!!!", "untitled"),
    ],
)
def test_slugify(name, expected):
    assert slugify(name) == expected


def test_duplicate_slug_rejected_by_database(db_session, test_game):
    # Bypass GameManager's own check: the unique slug is the database's to enforce.
    db_session.add(Game.create(name=test_game.name.upper()))
    with pytest.raises(IntegrityError):
        db_session.commit()
    db_session.rollback()

    assert [g.name for g in db_session.query(Game).all()] == ["Test Game"]


def test_game_manager_given_its_session_afterwards(db_session):
    games = GameManager()
    games._session = db_session  # how the old import script wired its managers

    game = games.create_game("Imported Game", "From the old notebook")

    assert db_session.get(Game, game.id).description == "From the old notebook"
