"""Tests for the oracle manager."""

import pytest

from sologm.core.event import EventManager
from sologm.core.oracle import OracleManager
from sologm.core.scene import SceneManager
from sologm.integrations.anthropic import AnthropicClient
from sologm.models.event import Event
from sologm.models.oracle import Interpretation, InterpretationSet
from sologm.utils.errors import APIError, OracleError


def test_parse_interpretations(sample_oracle_response):
    parsed = OracleManager.parse_interpretations(sample_oracle_response)
    assert [p["title"] for p in parsed] == ["The Stranger Lies", "An Old Debt", "A Warning"]
    assert parsed[1]["description"] == "The stranger is here to collect on a debt."


def test_parse_interpretations_empty():
    assert OracleManager.parse_interpretations("No headings here") == []


def test_build_prompt_mentions_everything():
    prompt = OracleManager.build_prompt(
        game_description="Fantasy",
        scene_description="A tavern",
        recent_events=["A fight broke out"],
        context="Who started it?",
        oracle_results="Anger, Stranger",
        count=4,
    )
    for text in ("Fantasy", "A tavern", "A fight broke out", "Who started it?", "Anger, Stranger", "Give 4"):
        assert text in prompt


def test_build_prompt_with_previous_titles():
    prompt = OracleManager.build_prompt("G", "S", [], "C", "R", previous_titles=["Old One"])
    assert "No recent events" in prompt
    assert "Do not repeat these earlier interpretations: Old One" in prompt


class TestOracleManager:
    """Tests for OracleManager."""

    def test_get_interpretations(self, oracle_manager, mock_anthropic_client, test_scene, db_session):
        interp_set = oracle_manager.get_interpretations(
            test_scene.id, "Who is the stranger?", "Mystery, Debt", count=2
        )

        assert interp_set.is_current is True
        assert [i.title for i in interp_set.interpretations] == ["The Stranger Lies", "An Old Debt"]
        mock_anthropic_client.send_message.assert_called_once()
        assert db_session.query(Interpretation).count() == 2

    def test_get_interpretations_includes_events(
        self, oracle_manager, mock_anthropic_client, test_scene, test_events
    ):
        oracle_manager.get_interpretations(test_scene.id, "Context", "Results")

        prompt = mock_anthropic_client.send_message.call_args[0][0]
        assert "First test event" in prompt
        assert "A test game" in prompt

    def test_get_interpretations_replaces_current(self, oracle_manager, test_scene, db_session):
        first = oracle_manager.get_interpretations(test_scene.id, "Q", "R")
        second = oracle_manager.get_interpretations(test_scene.id, "Q", "R", retry_attempt=1)

        assert db_session.get(InterpretationSet, first.id).is_current is False
        assert db_session.get(InterpretationSet, second.id).is_current is True
        assert second.retry_attempt == 1

    def test_retry_mentions_previous_titles(self, oracle_manager, mock_anthropic_client, test_scene):
        oracle_manager.get_interpretations(test_scene.id, "Q", "R")
        oracle_manager.get_interpretations(test_scene.id, "Q", "R", retry_attempt=1)

        retry_prompt = mock_anthropic_client.send_message.call_args[0][0]
        assert "The Stranger Lies" in retry_prompt

    def test_get_interpretations_api_error(self, oracle_manager, mock_anthropic_client, test_scene, db_session):
        mock_anthropic_client.send_message.side_effect = APIError("rate limited")

        with pytest.raises(OracleError, match="rate limited"):
            oracle_manager.get_interpretations(test_scene.id, "Q", "R")
        assert db_session.query(InterpretationSet).count() == 0

    def test_get_interpretations_unparseable(self, oracle_manager, mock_anthropic_client, test_scene):
        mock_anthropic_client.send_message.return_value = "I don't know."
        with pytest.raises(OracleError, match="no interpretations"):
            oracle_manager.get_interpretations(test_scene.id, "Q", "R")

    def test_get_interpretations_missing_scene(self, oracle_manager, test_game):
        with pytest.raises(OracleError, match="not found"):
            oracle_manager.get_interpretations("missing-scene", "Q", "R")

    def test_get_current_interpretation_set(self, oracle_manager, test_interpretation_set, test_scene):
        current = oracle_manager.get_current_interpretation_set(test_scene.id)
        assert current.id == test_interpretation_set.id

    @pytest.mark.parametrize(
        "identifier,expected_title",
        [
            ("1", "Test Interpretation 1"),
            ("2", "Test Interpretation 2"),
            ("test interpretation 2", "Test Interpretation 2"),
        ],
    )
    def test_find_interpretation(
        self, oracle_manager, test_interpretation_set, test_interpretations, identifier, expected_title
    ):
        found = oracle_manager.find_interpretation(test_interpretation_set.id, identifier)
        assert found.title == expected_title

    def test_find_interpretation_by_id(self, oracle_manager, test_interpretation_set, test_interpretations):
        target = test_interpretations[1]
        assert oracle_manager.find_interpretation(test_interpretation_set.id, target.id).id == target.id

    @pytest.mark.parametrize("identifier", ["0", "3", "nothing like it"])
    def test_find_interpretation_errors(
        self, oracle_manager, test_interpretation_set, test_interpretations, identifier
    ):
        with pytest.raises(OracleError):
            oracle_manager.find_interpretation(test_interpretation_set.id, identifier)

    def test_select_interpretation(self, oracle_manager, test_interpretation_set, test_interpretations, db_session):
        oracle_manager.select_interpretation(test_interpretation_set.id, "2")

        selected = db_session.query(Interpretation).filter(Interpretation.is_selected == True).all()  # noqa: E712
        assert [i.id for i in selected] == [test_interpretations[1].id]

    def test_select_interpretation_adds_event(
        self, oracle_manager, test_interpretation_set, test_interpretations, test_scene, db_session
    ):
        oracle_manager.select_interpretation(test_interpretation_set.id, "1", add_event=True)

        event = db_session.query(Event).filter(Event.scene_id == test_scene.id).one()
        assert event.source.name == "oracle"
        assert event.interpretation_id == test_interpretations[0].id
        assert event.description.startswith("Test Interpretation 1:")

    def test_get_scene_for_set(self, oracle_manager, test_interpretation_set, test_scene):
        assert oracle_manager.get_scene_for_set(test_interpretation_set.id).id == test_scene.id


def test_oracle_manager_lazy_dependencies(db_session, mock_anthropic_client):
    oracle_manager = OracleManager(anthropic_client=mock_anthropic_client, session=db_session)

    assert isinstance(oracle_manager.scene_manager, SceneManager)
    assert isinstance(oracle_manager.event_manager, EventManager)
    assert oracle_manager.event_manager.scene_manager is oracle_manager.scene_manager
    assert oracle_manager.anthropic_client is mock_anthropic_client


def test_anthropic_client_requires_key(mock_config):
    with pytest.raises(APIError, match="No Anthropic API key"):
        AnthropicClient()


def test_config_defaults_patched(mock_config):
    assert mock_config.get("oracle_interpretations") == 2
    assert mock_config.get("missing", "fallback") == "fallback"


def test_oracle_new_style(session_context, mock_anthropic_client):
    with session_context as session:
        from sologm.core.act import ActManager
        from sologm.core.game import GameManager

        game_manager = GameManager(session=session)
        act_manager = ActManager(game_manager=game_manager, session=session)
        scene_manager = SceneManager(act_manager=act_manager, session=session)
        event_manager = EventManager(scene_manager=scene_manager, session=session)
        oracle_manager = OracleManager(
            anthropic_client=mock_anthropic_client,
            scene_manager=scene_manager,
            event_manager=event_manager,
            session=session,
        )
        game = game_manager.create_game("Oracle Context Game")
        act = act_manager.create_act(game_id=game.id)
        scene = scene_manager.create_scene("Oracle Scene", act_id=act.id)
        interp_set = oracle_manager.get_interpretations(scene.id, "Q", "R")
        assert len(interp_set.interpretations) == 2
