"""Tests for the scene manager."""

import pytest

from sologm.core.act import ActManager
from sologm.core.game import GameManager
from sologm.core.scene import SceneManager
from sologm.models.scene import Scene, SceneStatus
from sologm.utils.errors import SceneError


class TestSceneManager:
    """Tests for SceneManager."""

    def test_create_scene(self, scene_manager, test_act, db_session):
        scene = scene_manager.create_scene(
            title="The Tavern",
            description="Smoky and loud",
            act_id=test_act.id,
        )

        assert scene.id is not None
        assert scene.act_id == test_act.id
        assert scene.title == "The Tavern"
        assert scene.status == SceneStatus.ACTIVE
        assert scene.sequence == 1
        assert scene.is_active is True
        assert db_session.get(Scene, scene.id).slug == "scene-1-the-tavern"

    def test_create_scene_in_active_act(self, scene_manager, test_act):
        scene = scene_manager.create_scene("Implicit Act", "Uses the active act")
        assert scene.act_id == test_act.id

    def test_create_scene_empty_title(self, scene_manager, test_act):
        with pytest.raises(SceneError, match="cannot be empty"):
            scene_manager.create_scene("", act_id=test_act.id)

    def test_create_scene_missing_act(self, scene_manager, test_game):
        with pytest.raises(SceneError, match="not found"):
            scene_manager.create_scene("Nowhere", act_id="missing-act")

    def test_create_scene_duplicate_title(self, scene_manager, test_scene):
        with pytest.raises(SceneError, match="already exists"):
            scene_manager.create_scene(test_scene.title.upper(), act_id=test_scene.act_id)

    def test_create_scene_deactivates_previous(self, scene_manager, test_scene, db_session):
        second = scene_manager.create_scene("Second Scene", act_id=test_scene.act_id)

        assert db_session.get(Scene, test_scene.id).is_active is False
        assert db_session.get(Scene, second.id).is_active is True
        assert second.sequence == 2

    def test_list_scenes(self, scene_manager, test_game_with_scenes):
        game, scenes = test_game_with_scenes
        listed = scene_manager.list_scenes(scenes[0].act_id)
        assert [s.title for s in listed] == ["Scene 1", "Scene 2", "Scene 3"]

    def test_list_scenes_active_act(self, scene_manager, test_scene):
        assert [s.id for s in scene_manager.list_scenes()] == [test_scene.id]

    def test_get_scene(self, scene_manager, test_scene):
        assert scene_manager.get_scene(test_scene.id).title == "Test Scene"

    def test_get_active_scene(self, scene_manager, test_scene):
        active = scene_manager.get_active_scene()
        assert active is not None
        assert active.id == test_scene.id

    def test_get_active_scene_with_scenes(self, scene_manager, test_game_with_scenes):
        game, scenes = test_game_with_scenes
        assert scene_manager.get_active_scene().id == scenes[-1].id

    def test_get_active_scene_no_scenes(self, scene_manager, test_act):
        assert scene_manager.get_active_scene(test_act.id) is None

    def test_get_active_scene_in_new_act(self, scene_manager, act_manager, test_game):
        act = act_manager.create_act(game_id=test_game.id, title="New Act")
        scene = scene_manager.create_scene("Opening", "First scene", act_id=act.id)

        active = scene_manager.get_active_scene()
        assert active is not None
        assert active.id == scene.id

    def test_get_active_scene_no_active_act(self, scene_manager, monkeypatch):
        monkeypatch.setattr(scene_manager.act_manager, "get_active_act", lambda game_id=None: None)
        with pytest.raises(SceneError, match="No active act"):
            scene_manager.get_active_scene()

    def test_get_active_context(self, scene_manager, test_scene, test_act, test_game):
        context = scene_manager.get_active_context()
        assert context["game"].id == test_game.id
        assert context["act"].id == test_act.id
        assert context["scene"].id == test_scene.id

    def test_activate_scene(self, scene_manager, test_game_with_scenes, db_session):
        game, scenes = test_game_with_scenes

        scene_manager.activate_scene(scenes[0].id)

        states = {s.title: db_session.get(Scene, s.id).is_active for s in scenes}
        assert states == {"Scene 1": True, "Scene 2": False, "Scene 3": False}

    def test_complete_scene(self, scene_manager, test_scene, db_session):
        scene_manager.complete_scene(test_scene.id)
        assert db_session.get(Scene, test_scene.id).status == SceneStatus.COMPLETED

    def test_complete_scene_twice(self, scene_manager, test_scene):
        scene_manager.complete_scene(test_scene.id)
        with pytest.raises(SceneError, match="already completed"):
            scene_manager.complete_scene(test_scene.id)

    def test_update_scene(self, scene_manager, test_scene, assert_model_properties):
        updated = scene_manager.update_scene(test_scene.id, title="New Title", description="New description")
        assert_model_properties(updated, {"title": "New Title", "description": "New description"})

    def test_get_previous_scene(self, scene_manager, test_game_with_scenes):
        game, scenes = test_game_with_scenes
        assert scene_manager.get_previous_scene(scenes[2].id).id == scenes[1].id
        assert scene_manager.get_previous_scene(scenes[0].id) is None

    @pytest.mark.parametrize("method", ["activate_scene", "complete_scene", "get_previous_scene"])
    def test_missing_scene_raises(self, scene_manager, method):
        with pytest.raises(SceneError, match="not found"):
            getattr(scene_manager, method)("missing-scene")


def add_scenes(scene_manager, act, titles):
    """Helper: add scenes with ``titles`` to ``act`` through the manager."""
    return [scene_manager.create_scene(title, act_id=act.id) for title in titles]


def test_scene_sequences_from_helper(scene_manager, test_act, db_session):
    scenes = add_scenes(scene_manager, test_act, ["One", "Two", "Three"])

    rows = db_session.query(Scene).filter(Scene.act_id == test_act.id).order_by(Scene.sequence).all()
    assert [r.id for r in rows] == [s.id for s in scenes]
    assert [r.sequence for r in rows] == [1, 2, 3]


def test_scene_manager_lazy_chain(db_session):
    scene_manager = SceneManager(session=db_session)

    assert isinstance(scene_manager.act_manager, ActManager)
    assert isinstance(scene_manager.game_manager, GameManager)
    assert scene_manager.game_manager._session is db_session


def test_hierarchy_scenes(scene_manager, test_hierarchy):
    second_act = test_hierarchy["acts"][1]
    active = scene_manager.get_active_scene(second_act.id)
    assert active.title == "Act 2 Scene 2"


def test_scene_workflow_new_style(session_context):
    with session_context as session:
        game_manager = GameManager(session=session)
        act_manager = ActManager(game_manager=game_manager, session=session)
        scene_manager = SceneManager(act_manager=act_manager, session=session)
        game = game_manager.create_game("Scene Context Game")
        act = act_manager.create_act(game_id=game.id, title="Scene Context Act")
        scene = scene_manager.create_scene("Context Scene", act_id=act.id)
        assert scene_manager.get_scene(scene.id).title == "Context Scene"


def test_scene_status_values():
    assert [s.value for s in SceneStatus] == ["active", "completed"]
