"""Tests for dice rolling."""

import random

import pytest

from sologm.core.dice import DiceManager
from sologm.core.scene import SceneManager
from sologm.models.dice import DiceRoll
from sologm.utils.errors import DiceError


@pytest.mark.parametrize(
    "notation,expected",
    [
        ("d6", (1, 6, 0)),
        ("1d20", (1, 20, 0)),
        ("2d6+1", (2, 6, 1)),
        ("3d8-2", (3, 8, -2)),
        ("4D10", (4, 10, 0)),
        (" 2d6 + 3 ", (2, 6, 3)),
    ],
)
def test_parse_notation(notation, expected):
    assert DiceManager.parse_notation(notation) == expected


@pytest.mark.parametrize("notation", ["", "abc", "2x6", "0d6", "2d1", "101d6", "d"])
def test_parse_invalid_notation(notation):
    with pytest.raises(DiceError):
        DiceManager.parse_notation(notation)


class TestDiceManager:
    """Tests for DiceManager."""

    def test_roll(self, dice_manager, db_session, fixed_dice):
        fixed_dice.values = [2, 5]
        roll = dice_manager.roll("2d6+1", reason="Attack")

        assert roll.individual_results == [2, 5]
        assert roll.modifier == 1
        assert roll.total == 8
        assert roll.reason == "Attack"
        assert db_session.get(DiceRoll, roll.id).total == 8

    def test_roll_range(self, dice_manager):
        for _ in range(20):
            roll = dice_manager.roll("3d6")
            assert 3 <= roll.total <= 18
            assert all(1 <= r <= 6 for r in roll.individual_results)

    def test_roll_invalid(self, dice_manager, db_session):
        with pytest.raises(DiceError):
            dice_manager.roll("banana")
        assert db_session.query(DiceRoll).count() == 0

    def test_roll_with_scene(self, dice_manager, test_scene, db_session):
        roll = dice_manager.roll("1d20", scene_id=test_scene.id)
        assert db_session.get(DiceRoll, roll.id).scene_id == test_scene.id

    def test_roll_for_active_scene(self, dice_manager, test_scene):
        roll = dice_manager.roll_for_active_scene("1d6", reason="Luck")
        assert roll.scene_id == test_scene.id

    def test_roll_for_active_scene_none(self, dice_manager, test_act):
        with pytest.raises(DiceError, match="No active scene"):
            dice_manager.roll_for_active_scene("1d6")

    def test_roll_for_active_scene_patched(self, dice_manager, test_scene, monkeypatch):
        monkeypatch.setattr(dice_manager.scene_manager, "get_active_scene", lambda act_id=None: test_scene)
        roll = dice_manager.roll_for_active_scene("2d4")
        assert roll.scene_id == test_scene.id

    def test_get_recent_rolls(self, dice_manager, test_dice_roll, fixed_dice):
        dice_manager.roll("1d6", reason="Newer")

        rolls = dice_manager.get_recent_rolls(limit=5)
        assert len(rolls) == 2
        assert rolls[0].reason == "Newer"
        assert rolls[1].id == test_dice_roll.id

    def test_get_recent_rolls_for_scene(self, dice_manager, test_dice_roll):
        dice_manager.roll("1d6", reason="No scene")

        rolls = dice_manager.get_recent_rolls(scene_id=test_dice_roll.scene_id)
        assert [r.id for r in rolls] == [test_dice_roll.id]

    def test_get_recent_rolls_limit(self, dice_manager):
        for _ in range(4):
            dice_manager.roll("1d6")
        assert len(dice_manager.get_recent_rolls(limit=3)) == 3

    def test_count_rolls(self, dice_manager, test_dice_roll):
        dice_manager.roll("1d6", reason="No scene")

        assert dice_manager.count_rolls() == 2
        assert dice_manager.count_rolls(scene_id=test_dice_roll.scene_id) == 1

    @pytest.mark.dice_seed(20)
    def test_seeded_rolls_are_known(self, create_test_dice_roll):
        roll = create_test_dice_roll("3d6", reason="Seeded")

        random.seed(20)
        assert roll.individual_results == [random.randint(1, 6) for _ in range(3)]
        assert roll.reason == "Seeded"

    def test_factory_roll_defaults(self, create_test_dice_roll, db_session):
        roll = create_test_dice_roll()

        assert 2 <= roll.total <= 12
        assert db_session.get(DiceRoll, roll.id).notation == "2d6"

    def test_dice_roll_fixture(self, test_dice_roll, test_scene):
        assert test_dice_roll.scene.id == test_scene.id
        assert test_dice_roll.total == 8


def test_dice_manager_fixture_creates_its_scene_manager_on_first_use(dice_manager, db_session):
    assert dice_manager._scene_manager is None

    scenes = dice_manager.scene_manager

    assert isinstance(scenes, SceneManager)
    assert dice_manager._scene_manager is scenes
    assert scenes._session is db_session


def test_dice_manager_lazy_scene_manager(db_session):
    dice_manager = DiceManager(session=db_session)
    assert isinstance(dice_manager.scene_manager, SceneManager)


def test_roll_new_style(session_context, fixed_dice):
    fixed_dice.values = [6]
    with session_context as session:
        dice_manager = DiceManager(session=session)
        roll = dice_manager.roll("1d6+2")
        assert roll.total == 8
        assert session.query(DiceRoll).count() == 1
