"""Tests for the event manager."""

import pytest
from sqlalchemy.exc import IntegrityError

from sologm.core.event import EventManager
from sologm.core.game import GameManager
from sologm.core.act import ActManager
from sologm.core.scene import SceneManager
from sologm.models.event import Event
from sologm.models.event_source import EventSource
from sologm.utils.errors import EventError


class TestEventManager:
    """Tests for EventManager."""

    def test_add_event(self, event_manager, test_scene, db_session):
        event = event_manager.add_event(
            description="Something happened",
            scene_id=test_scene.id,
            source="manual",
        )

        assert event.id is not None
        assert event.scene_id == test_scene.id
        assert event.description == "Something happened"
        db_event = db_session.get(Event, event.id)
        assert db_event.source.name == "manual"

    def test_add_event_with_active_scene(self, event_manager, scene_manager, act_manager, test_game):
        act = act_manager.create_act(game_id=test_game.id, title="Active Act")
        scene = scene_manager.create_scene(
            title="Active Scene",
            description="The scene events should land in",
            act_id=act.id,
        )

        event = event_manager.add_event(description="Event in the active scene")

        assert event.scene_id == scene.id
        assert event.source_name == "manual"

    def test_add_event_to_fixture_scene_implicitly(self, event_manager, test_scene):
        event = event_manager.add_event(description="Implicit scene")
        assert event.scene_id == test_scene.id

    @pytest.mark.parametrize("source", ["manual", "oracle", "dice"])
    def test_add_event_sources(self, event_manager, test_scene, source):
        event = event_manager.add_event("Sourced event", scene_id=test_scene.id, source=source)
        assert event.source.name == source

    def test_add_event_invalid_source(self, event_manager, test_scene):
        with pytest.raises(EventError, match="Invalid event source"):
            event_manager.add_event("Bad source", scene_id=test_scene.id, source="telepathy")

    def test_add_event_empty_description(self, event_manager, test_scene):
        with pytest.raises(EventError, match="cannot be empty"):
            event_manager.add_event("  ", scene_id=test_scene.id)

    def test_add_event_missing_scene(self, event_manager, test_game):
        with pytest.raises(EventError, match="not found"):
            event_manager.add_event("Lost event", scene_id="missing-scene")

    def test_add_event_no_active_scene(self, event_manager, test_act):
        with pytest.raises(EventError, match="No active scene"):
            event_manager.add_event("Nowhere to go")

    def test_list_events(self, event_manager, test_scene, test_events):
        events = event_manager.list_events(scene_id=test_scene.id)
        assert {e.description for e in events} == {"First test event", "Second test event"}

    def test_list_events_limit(self, event_manager, test_scene, create_test_event):
        for i in range(5):
            create_test_event(test_scene.id, f"Event {i}")

        events = event_manager.list_events(scene_id=test_scene.id, limit=3)
        assert len(events) == 3
        assert events[0].description == "Event 4"

    def test_list_events_active_scene(self, event_manager, test_events):
        assert len(event_manager.list_events()) == 2

    def test_list_events_for_new_scene(self, event_manager, scene_manager, test_act, create_test_event):
        scene = scene_manager.create_scene("Later Scene", act_id=test_act.id)
        create_test_event(scene.id, "In the later scene")

        events = event_manager.list_events()
        assert [e.description for e in events] == ["In the later scene"]

    def test_get_event(self, event_manager, test_events):
        event = event_manager.get_event(test_events[0].id)
        assert event.description == "First test event"

    def test_update_event(self, event_manager, test_events, db_session):
        event_manager.update_event(test_events[0].id, "Rewritten", source="oracle")

        db_event = db_session.get(Event, test_events[0].id)
        assert db_event.description == "Rewritten"
        assert db_event.source.name == "oracle"

    def test_update_missing_event(self, event_manager):
        with pytest.raises(EventError, match="not found"):
            event_manager.update_event("missing", "Nope")

    def test_delete_event(self, event_manager, test_events, db_session):
        assert event_manager.delete_event(test_events[1].id) is True
        assert db_session.query(Event).count() == 1

    def test_get_event_sources(self, event_manager):
        names = [s.name for s in event_manager.get_event_sources()]
        assert names == ["dice", "manual", "oracle"]

    def test_oracle_event_fixture(self, event_manager, test_oracle_event):
        events = event_manager.list_events(scene_id=test_oracle_event.scene_id)

        assert [e.id for e in events] == [test_oracle_event.id]
        assert test_oracle_event.source.name == "oracle"

    def test_add_event_source_twice(self, event_manager):
        event_manager.add_event_source("Omen")
        with pytest.raises(IntegrityError):
            event_manager.add_event_source("omen")

        # the failed insert must not take the first one with it
        names = [s.name for s in event_manager.get_event_sources()]
        assert names == ["dice", "manual", "omen", "oracle"]

    def test_events_in_hierarchy(self, event_manager, test_hierarchy):
        scene = test_hierarchy["scenes"][0]
        events = event_manager.list_events(scene_id=scene.id)
        assert sorted(e.description for e in events) == ["Event 1.1.1", "Event 1.1.2"]


def test_event_manager_lazy_scene_manager(db_session):
    event_manager = EventManager(session=db_session)
    assert isinstance(event_manager.scene_manager, SceneManager)
    assert event_manager.scene_manager._session is db_session


def test_standalone_event_manager_finds_the_active_scene(standalone_event_manager, test_scene):
    event = standalone_event_manager.add_event("Heard in the tavern")

    assert event.scene_id == test_scene.id
    assert standalone_event_manager._scene_manager is not None


def test_event_sources_seeded(db_session):
    assert db_session.query(EventSource).count() == 3


def test_event_fixture_sources(test_events):
    assert [e.source.name for e in test_events] == ["manual", "dice"]


def test_add_event_new_style(session_context):
    with session_context as session:
        game_manager = GameManager(session=session)
        act_manager = ActManager(game_manager=game_manager, session=session)
        scene_manager = SceneManager(act_manager=act_manager, session=session)
        event_manager = EventManager(scene_manager=scene_manager, session=session)
        game = game_manager.create_game("Event Context Game")
        act = act_manager.create_act(game_id=game.id, title="Event Context Act")
        scene = scene_manager.create_scene("Event Context Scene", act_id=act.id)
        event = event_manager.add_event("Context event", scene_id=scene.id)
        assert session.get(Event, event.id).scene_id == scene.id


def test_event_repr_truncates():
    event = Event(description="A very long description that goes on and on")
    assert repr(event) == "<Event 'A very long descript'>"
