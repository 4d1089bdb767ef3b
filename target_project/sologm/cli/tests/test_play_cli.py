"""Tests for the act, scene, event and dice commands."""

from sologm.models.act import Act
from sologm.models.dice import DiceRoll
from sologm.models.event import Event
from sologm.models.scene import Scene


def test_act_create(run_cli, test_game, db_session):
    code, out, _ = run_cli("act", "create", "--title", "Opening Act")

    assert code == 0
    assert "Created act 1: Opening Act" in out
    assert db_session.query(Act).filter(Act.game_id == test_game.id).count() == 1


def test_act_create_without_game(run_cli):
    code, _, err = run_cli("act", "create", "--title", "Nowhere")
    assert code == 1
    assert "No active game" in err


def test_act_list(run_cli, test_act):
    code, out, _ = run_cli("act", "list")
    assert code == 0
    assert "* 1. Test Act" in out


def test_scene_add(run_cli, test_act, db_session):
    code, out, _ = run_cli("scene", "add", "--title", "Crossroads", "--description", "Dusty")

    assert code == 0
    assert "Added scene 1: Crossroads" in out
    assert db_session.query(Scene).filter(Scene.act_id == test_act.id).count() == 1


def test_scene_info(run_cli, test_scene):
    code, out, _ = run_cli("scene", "info")
    assert code == 0
    assert "Scene: Test Scene" in out


def test_scene_list(run_cli, test_game_with_scenes):
    code, out, _ = run_cli("scene", "list")
    assert code == 0
    assert out.count("(active)") == 3
    assert "* 3. Scene 3" in out


def test_event_add(run_cli, test_scene, db_session):
    code, out, _ = run_cli("event", "add", "--description", "The bridge collapses")

    assert code == 0
    assert "Added event: The bridge collapses" in out
    assert db_session.query(Event).filter(Event.scene_id == test_scene.id).count() == 1


def test_event_add_bad_source(run_cli, test_scene):
    code, _, err = run_cli("event", "add", "--description", "Hmm", "--source", "dream")
    assert code == 1
    assert "Invalid event source" in err


def test_event_list(run_cli, test_events):
    code, out, _ = run_cli("event", "list")
    assert code == 0
    assert "- [manual] First test event" in out
    assert "- [dice] Second test event" in out


def test_event_list_empty(run_cli, test_scene):
    code, out, _ = run_cli("event", "list")
    assert code == 0
    assert "No events in this scene yet." in out


def test_event_sources(run_cli):
    code, out, _ = run_cli("event", "sources")
    assert code == 0
    assert out.split() == ["dice", "manual", "oracle"]


def test_dice_roll_without_scene(run_cli, db_session):
    code, out, _ = run_cli("dice", "roll", "1d4+5")
    assert code == 0
    assert "= " in out
    roll = db_session.query(DiceRoll).one()
    assert roll.scene_id is None


def test_dice_roll_in_scene(run_cli, test_scene, db_session, monkeypatch):
    monkeypatch.setattr("random.randint", lambda low, high: high)
    code, out, _ = run_cli("dice", "roll", "2d6", "--reason", "Climb")

    assert code == 0
    assert "2d6: [6, 6] +0 = 12" in out
    assert db_session.query(DiceRoll).one().scene_id == test_scene.id


def test_dice_history(run_cli, test_dice_roll):
    code, out, _ = run_cli("dice", "history")
    assert code == 0
    assert "2d6+1 = 8  Test roll" in out


def test_no_command_prints_help(run_cli):
    code, out, _ = run_cli()
    assert code == 2
    assert "usage: sologm" in out
