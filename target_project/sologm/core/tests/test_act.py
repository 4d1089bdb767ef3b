"""Tests for the act manager."""

import pytest

from sologm.core.act import ActManager
from sologm.core.game import GameManager
from sologm.models.act import Act
from sologm.models.game import Game
from sologm.utils.errors import ActError


def create_act_sequence(game_manager, act_manager, game_name, count):
    """Create a game with ``count`` acts; the last one is active."""
    game = game_manager.create_game(game_name, f"{game_name} description")
    acts = [
        act_manager.create_act(game_id=game.id, title=f"{game_name} Act {i}")
        for i in range(1, count + 1)
    ]
    return game, acts


class TestActManager:
    """Tests for ActManager."""

    def test_create_act(self, act_manager, test_game, db_session):
        act = act_manager.create_act(
            game_id=test_game.id,
            title="The Beginning",
            summary="Where it starts",
        )

        assert act.id is not None
        assert act.game_id == test_game.id
        assert act.title == "The Beginning"
        assert act.summary == "Where it starts"
        assert act.sequence == 1
        assert act.is_active is True
        assert db_session.get(Act, act.id) is not None

    def test_create_untitled_act(self, act_manager, test_game):
        act = act_manager.create_act(game_id=test_game.id)
        assert act.title is None
        assert act.slug == "act-1-untitled"

    def test_create_act_uses_active_game(self, act_manager, test_game):
        act = act_manager.create_act(title="Implicit Game")
        assert act.game_id == test_game.id

    def test_create_act_without_active_game(self, act_manager, create_test_game):
        create_test_game(name="Sleeping", is_active=False)
        with pytest.raises(ActError, match="No active game"):
            act_manager.create_act(title="Orphan")

    def test_create_act_missing_game(self, act_manager):
        with pytest.raises(ActError, match="not found"):
            act_manager.create_act(game_id="missing-game", title="Lost")

    def test_create_act_duplicate_title(self, act_manager, test_act):
        with pytest.raises(ActError, match="already exists"):
            act_manager.create_act(game_id=test_act.game_id, title=test_act.title)

    def test_sequence_increments(self, act_manager, test_game):
        first = act_manager.create_act(game_id=test_game.id, title="One")
        second = act_manager.create_act(game_id=test_game.id, title="Two")
        third = act_manager.create_act(game_id=test_game.id, title="Three")
        assert [first.sequence, second.sequence, third.sequence] == [1, 2, 3]

    def test_create_act_deactivates_previous(self, act_manager, test_act, db_session):
        new_act = act_manager.create_act(game_id=test_act.game_id, title="Second Act")

        assert db_session.get(Act, test_act.id).is_active is False
        assert db_session.get(Act, new_act.id).is_active is True

    def test_create_inactive_act_keeps_active(self, act_manager, test_act, db_session):
        act_manager.create_act(game_id=test_act.game_id, title="Later", make_active=False)
        assert db_session.get(Act, test_act.id).is_active is True

    def test_list_acts(self, act_manager, test_game, create_test_act):
        create_test_act(test_game.id, "First Act")
        create_test_act(game_id=test_game.id, title="Second Act", is_active=False)

        acts = act_manager.list_acts(test_game.id)
        assert [a.title for a in acts] == ["First Act", "Second Act"]

    def test_list_acts_active_game(self, act_manager, test_act):
        assert [a.id for a in act_manager.list_acts()] == [test_act.id]

    def test_get_act(self, act_manager, test_act):
        assert act_manager.get_act(test_act.id).title == "Test Act"

    def test_get_active_act(self, act_manager, test_act):
        active = act_manager.get_active_act()
        assert active is not None
        assert active.id == test_act.id

    def test_get_active_act_no_acts(self, act_manager, test_game):
        assert act_manager.get_active_act(test_game.id) is None

    def test_get_active_act_after_create(self, act_manager, test_game):
        act = act_manager.create_act(game_id=test_game.id, title="Fresh Act")

        active = act_manager.get_active_act()
        assert active is not None
        assert active.id == act.id

    def test_get_active_act_no_active_game(self, act_manager, monkeypatch):
        monkeypatch.setattr(act_manager.game_manager, "get_active_game", lambda: None)
        with pytest.raises(ActError, match="No active game"):
            act_manager.get_active_act()

    def test_get_active_act_uses_game_manager(self, act_manager, test_act, test_game, monkeypatch):
        calls = []

        def fake_get_active_game():
            calls.append(True)
            return test_game

        monkeypatch.setattr(act_manager.game_manager, "get_active_game", fake_get_active_game)
        assert act_manager.get_active_act().id == test_act.id
        assert calls == [True]

    def test_activate_act(self, act_manager, test_act, create_test_act, db_session):
        other = create_test_act(test_act.game_id, title="Other Act", is_active=False)

        act_manager.activate_act(other.id)

        assert db_session.get(Act, other.id).is_active is True
        assert db_session.get(Act, test_act.id).is_active is False

    def test_activate_missing_act(self, act_manager):
        with pytest.raises(ActError):
            act_manager.activate_act("nope")

    def test_edit_act(self, act_manager, test_act, assert_model_properties):
        edited = act_manager.edit_act(test_act.id, title="Renamed", summary="Changed")
        assert_model_properties(
            edited, {"title": "Renamed", "summary": "Changed", "slug": "act-1-renamed"}
        )

    def test_complete_act(self, act_manager, test_act, db_session):
        act_manager.complete_act(test_act.id, summary="It ended")

        act = db_session.get(Act, test_act.id)
        assert act.is_active is False
        assert act.summary == "It ended"

    def test_delete_act(self, act_manager, test_act, db_session):
        assert act_manager.delete_act(test_act.id) is True
        assert db_session.query(Act).filter(Act.id == test_act.id).count() == 0

    def test_acts_from_helper(self, game_manager, act_manager, db_session):
        game, acts = create_act_sequence(game_manager, act_manager, "Helper Game", 3)

        assert [a.sequence for a in acts] == [1, 2, 3]
        active = db_session.query(Act).filter(Act.game_id == game.id, Act.is_active == True).all()  # noqa: E712
        assert [a.id for a in active] == [acts[-1].id]


def test_lazy_game_manager_shares_session(db_session):
    act_manager = ActManager(session=db_session)

    game_manager = act_manager.game_manager

    assert isinstance(game_manager, GameManager)
    assert game_manager._session is db_session
    assert act_manager.game_manager is game_manager


def test_hierarchy_active_act(act_manager, test_hierarchy):
    active = act_manager.get_active_act(test_hierarchy["game"].id)
    assert active.id == test_hierarchy["acts"][1].id


def test_acts_in_two_games_are_independent(act_manager, create_test_game, create_test_act, db_session):
    game_a = create_test_game(name="Game A")
    game_b = create_test_game(name="Game B")
    create_test_act(game_a.id, title="A1")
    create_test_act(game_b.id, title="B1")
    create_test_act(game_b.id, title="B2")

    counts = {
        game.name: db_session.query(Act).filter(Act.game_id == game.id).count()
        for game in db_session.query(Game).all()
    }
    assert counts == {"Game A": 1, "Game B": 2}


def test_create_act_new_style(session_context):
    with session_context as session:
        game_manager = GameManager(session=session)
        act_manager = ActManager(game_manager=game_manager, session=session)
        game = game_manager.create_game("Context Act Game")
        act = act_manager.create_act(game_id=game.id, title="Context Act")
        assert act.sequence == 1
        assert session.query(Act).filter(Act.game_id == game.id).count() == 1


@pytest.mark.parametrize(
    "title,sequence,expected",
    [
        ("The Beginning", 1, "act-1-the-beginning"),
        ("Into the Dark!", 2, "act-2-into-the-dark"),
        (None, 3, "act-3-untitled"),
    ],
)
def test_act_slug(title, sequence, expected):
    act = Act.create(game_id="g", title=title, summary=None, sequence=sequence)
    assert act.slug == expected
