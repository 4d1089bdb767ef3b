"""Shared pytest fixtures for sologm.

Sub-package conftests star-import this module so that every test package sees
the same fixtures. The database is an in-memory SQLite database that lives for
one test; ``database_manager`` points the application singleton at it.
"""

import logging
import random
from typing import Any, Callable, Dict, List, Optional
from unittest.mock import MagicMock

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from sologm.cli.console import Console
from sologm.core.act import ActManager
from sologm.core.dice import DiceManager
from sologm.core.event import EventManager
from sologm.core.game import GameManager
from sologm.core.oracle import OracleManager
from sologm.core.scene import SceneManager
from sologm.database.session import DatabaseManager, get_db_context
from sologm.integrations.anthropic import AnthropicClient
from sologm.models.act import Act
from sologm.models.base import Base
from sologm.models.dice import DiceRoll
from sologm.models.event import Event
from sologm.models.event_source import DEFAULT_EVENT_SOURCES, EventSource
from sologm.models.game import Game
from sologm.models.oracle import Interpretation, InterpretationSet
from sologm.models.scene import Scene

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# Database plumbing
# ---------------------------------------------------------------------------


@pytest.fixture
def db_engine():
    """In-memory SQLite engine with every table created.

    StaticPool keeps a single connection, so every session sees the same
    in-memory database.
    """
    engine = create_engine(
        "sqlite:///:memory:",
        connect_args={"check_same_thread": False},
        poolclass=StaticPool,
    )
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def database_manager(db_engine):
    """Point the DatabaseManager singleton at the test engine for one test."""
    old_instance = DatabaseManager._instance
    db_manager = DatabaseManager(engine=db_engine)
    DatabaseManager._instance = db_manager
    yield db_manager
    DatabaseManager._instance = old_instance


@pytest.fixture
def db_session(database_manager):
    """The thread-local session from the test DatabaseManager."""
    session = database_manager.get_session()
    yield session
    session.close()
    database_manager.close_session()


@pytest.fixture
def session_context():
    """A SessionContext over the test database (``with session_context as session:``)."""
    return get_db_context()


# Old version, from before DatabaseManager had get_session():
# @pytest.fixture
# def db_session(db_engine):
#     Session = sessionmaker(bind=db_engine)
#     session = Session()
#     yield session
#     session.rollback()
#     session.close()


@pytest.fixture(autouse=True)
def initialize_event_sources(session_context):
    """Seed the event_sources lookup table, as initialize_database() does."""
    with session_context as session:
        existing = {name for (name,) in session.query(EventSource.name).all()}
        for name in DEFAULT_EVENT_SOURCES:
            if name not in existing:
                session.add(EventSource.create(name))


# ---------------------------------------------------------------------------
# Non-database fixtures
# ---------------------------------------------------------------------------


@pytest.fixture
def mock_anthropic_client():
    """An AnthropicClient that never talks to the network."""
    client = MagicMock(spec=AnthropicClient)
    client.send_message.return_value = (
        "## The Stranger Lies\nThe stranger is hiding their true purpose.\n\n"
        "## An Old Debt\nThe stranger is here to collect on a debt.\n"
    )
    return client


@pytest.fixture
def mock_console(monkeypatch):
    """Replace the CLI console in every command module with a mock."""
    console = MagicMock(spec=Console)
    for module in ("game", "act", "scene", "event", "dice"):
        monkeypatch.setattr(f"sologm.cli.{module}.console", console)
    monkeypatch.setattr("sologm.cli.main.console", console)
    return console


@pytest.fixture
def mock_config(monkeypatch, tmp_path):
    """Isolated configuration: data dir in tmp_path, no API key, known oracle settings."""
    from sologm.utils import config as config_module

    monkeypatch.setenv("SOLOGM_HOME", str(tmp_path))
    monkeypatch.delenv("SOLOGM_ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setattr(config_module.Config, "_instance", None)
    monkeypatch.setitem(config_module.DEFAULTS, "oracle_interpretations", 2)
    return config_module.get_config()


@pytest.fixture
def sample_oracle_response():
    return "## First\nOne.\n## Second\nTwo.\n"


# ---------------------------------------------------------------------------
# Managers
# ---------------------------------------------------------------------------


@pytest.fixture
def game_manager(db_session):
    """GameManager bound to the test session."""
    return GameManager(session=db_session)


@pytest.fixture
def act_manager(db_session, game_manager):
    """ActManager bound to the test session."""
    return ActManager(game_manager=game_manager, session=db_session)


@pytest.fixture
def scene_manager(db_session, act_manager):
    return SceneManager(act_manager=act_manager, session=db_session)


@pytest.fixture
def event_manager(scene_manager):
    # No session on purpose: EventManager falls back to the thread's scoped
    # session, which is the very session db_session hands out.
    return EventManager(scene_manager=scene_manager)


@pytest.fixture
def dice_manager(db_session):
    """DiceManager on its own: it creates its SceneManager the first time it needs one."""
    return DiceManager(session=db_session)


@pytest.fixture
def oracle_manager(
    scene_manager,
    event_manager,
    db_session,  # Inject db_session
    mock_anthropic_client,
):
    """OracleManager with a mocked Anthropic client."""
    return OracleManager(
        anthropic_client=mock_anthropic_client,
        scene_manager=scene_manager,
        event_manager=event_manager,
        session=db_session,
    )


# ---------------------------------------------------------------------------
# Factories
# ---------------------------------------------------------------------------


@pytest.fixture
def create_test_game(db_session, game_manager):
    """Factory creating games through the GameManager."""

    def _create_game(
        name: str = "Test Game",
        description: str = "A test game",
        is_active: bool = True,
    ) -> Game:
        game = game_manager.create_game(name, description, is_active=is_active)
        return db_session.merge(game)

    return _create_game


@pytest.fixture
def create_test_act(
    db_session,  # Inject db_session
    act_manager,  # Inject act_manager
):
    """Factory creating acts through the ActManager."""

    def _create_act(
        game_id: str,
        title: Optional[str] = "Test Act",
        summary: Optional[str] = "A test act",
        is_active: bool = True,
    ) -> Act:
        act = act_manager.create_act(
            game_id=game_id,
            title=title,
            summary=summary,
            make_active=is_active,
        )
        # Make sure the game relationship is loaded for callers.
        db_session.refresh(act, attribute_names=["game"])
        return act

    return _create_act


@pytest.fixture
def create_test_scene(db_session, scene_manager):
    """Factory creating scenes through the SceneManager."""

    def _create_scene(
        act_id: str,
        title: str = "Test Scene",
        description: str = "A test scene",
        is_active: bool = True,
    ) -> Scene:
        scene = scene_manager.create_scene(
            title=title,
            description=description,
            act_id=act_id,
            make_active=is_active,
        )
        db_session.refresh(scene, attribute_names=["act"])
        return scene

    return _create_scene


@pytest.fixture
def create_test_event(db_session, event_manager):
    """Factory creating events through the EventManager."""

    def _create_event(
        scene_id: str,
        description: str = "Test event",
        source: str = "manual",
        interpretation_id: Optional[str] = None,
    ) -> Event:
        event = event_manager.add_event(
            description=description,
            scene_id=scene_id,
            source=source,
            interpretation_id=interpretation_id,
        )
        db_session.refresh(event, attribute_names=["source", "scene"])
        return event

    return _create_event


@pytest.fixture
def create_test_dice_roll(request, dice_manager):
    """Factory rolling dice through the DiceManager.

    ``@pytest.mark.dice_seed(n)`` seeds the dice, so a test can know the results.
    """
    marker = request.node.get_closest_marker("dice_seed")
    if marker is not None:
        random.seed(marker.args[0])

    def _create_dice_roll(
        notation: str = "2d6",
        reason: Optional[str] = None,
        scene_id: Optional[str] = None,
    ) -> DiceRoll:
        return dice_manager.roll(notation, reason=reason, scene_id=scene_id)

    return _create_dice_roll


# ---------------------------------------------------------------------------
# Objects
# ---------------------------------------------------------------------------


@pytest.fixture
def test_game(db_session, create_test_game):
    """An active game."""
    game = create_test_game(name="Test Game", description="A test game")
    try:
        # Load the acts so tests can inspect them without a lazy load.
        db_session.refresh(game, attribute_names=["acts"])
    except Exception as e:
        logger.warning("Could not refresh game relationships: %s", e)
    return game


@pytest.fixture
def test_act(db_session, test_game, create_test_act):
    """An active act in test_game."""
    act = create_test_act(
        game_id=test_game.id,
        title="Test Act",
        summary="A test act",
    )
    try:
        db_session.refresh(act, attribute_names=["scenes"])
        db_session.refresh(test_game, attribute_names=["acts"])
    except Exception as e:
        logger.warning("Could not refresh act relationships: %s", e)
    return act


@pytest.fixture
def test_scene(db_session, test_act, create_test_scene):
    """An active scene in test_act."""
    scene = create_test_scene(
        act_id=test_act.id,
        title="Test Scene",
        description="A test scene",
    )
    try:
        db_session.refresh(scene, attribute_names=["events", "dice_rolls"])
        db_session.refresh(test_act, attribute_names=["scenes"])
    except Exception as e:
        logger.warning("Could not refresh scene relationships: %s", e)
    return scene


@pytest.fixture
def test_inactive_game(db_session, game_manager):
    """A second game, not active: test_game (when used too) stays the active one."""
    game = game_manager.create_game("Shelved Game", "Put aside for now", is_active=False)
    try:
        # Without this the acts were loaded lazily after the session had gone
        # (DetachedInstanceError in the old CLI tests).
        db_session.refresh(game, attribute_names=["acts"])
    except Exception as e:
        logger.warning("Could not refresh the inactive game: %s", e)
    return game


@pytest.fixture
def test_oracle_event(db_session, test_scene, event_manager):
    """An event in test_scene that the oracle produced."""
    # It used to be a bare Event(...) added to db_session, which skipped the
    # source lookup; going through the manager gives it a real EventSource.
    event = event_manager.add_event(
        description="The oracle says: betrayal",
        scene_id=test_scene.id,
        source="oracle",
    )
    try:
        db_session.refresh(event, attribute_names=["source", "scene"])
    except Exception as e:
        logger.warning("Could not refresh the oracle event: %s", e)
    return event


@pytest.fixture
def test_events(db_session, test_scene, event_manager):
    """Two events in test_scene (old version, superseded below)."""
    events = [
        event_manager.add_event(description=f"Test event {i}", scene_id=test_scene.id)
        for i in range(1, 3)
    ]
    return events


@pytest.fixture
def test_dice_roll(db_session, test_scene):
    """A stored 2d6+1 roll in test_scene."""
    dice_roll = DiceRoll.create(
        notation="2d6+1",
        individual_results=[3, 4],
        modifier=1,
        total=8,
        reason="Test roll",
        scene_id=test_scene.id,
    )
    db_session.add(dice_roll)
    db_session.flush()
    try:
        db_session.refresh(dice_roll, attribute_names=["scene"])
    except Exception as e:
        logger.warning("Could not refresh dice roll: %s", e)
    return dice_roll


@pytest.fixture
def test_interpretation_set(db_session, test_scene):
    """A current interpretation set in test_scene (no interpretations yet)."""
    interp_set = InterpretationSet.create(
        scene_id=test_scene.id,
        context="Who is the stranger?",
        oracle_results="Mystery, Debt",
        retry_attempt=0,
        is_current=True,
    )
    db_session.add(interp_set)
    db_session.flush()
    try:
        db_session.refresh(interp_set, attribute_names=["scene"])
    except Exception as e:
        logger.warning("Could not refresh interpretation set: %s", e)
    return interp_set


@pytest.fixture
def test_interpretations(db_session, test_interpretation_set):
    """Two interpretations in test_interpretation_set."""
    interpretations = []
    for i in range(1, 3):
        interp = Interpretation.create(
            set_id=test_interpretation_set.id,
            title=f"Test Interpretation {i}",
            description=f"Test description {i}",
            position=i,
        )
        db_session.add(interp)
        interpretations.append(interp)
    db_session.flush()
    try:
        db_session.refresh(test_interpretation_set, attribute_names=["interpretations"])
    except Exception as e:
        logger.warning("Could not refresh interpretations: %s", e)
    return interpretations


# @pytest.fixture
# def test_scene_with_events(db_session, test_scene):
#     for i in range(3):
#         db_session.add(Event(scene_id=test_scene.id, description=f"Event {i}", source="manual"))
#     db_session.commit()
#     return test_scene


@pytest.fixture
def test_events(
    db_session,  # Inject db_session
    test_scene,
    create_test_event,
):
    """Two events in test_scene, created through the factory."""
    events = [
        create_test_event(test_scene.id, "First test event"),
        create_test_event(test_scene.id, "Second test event", source="dice"),
    ]
    try:
        db_session.refresh(test_scene, attribute_names=["events"])
    except Exception as e:
        logger.warning("Could not refresh scene events: %s", e)
    return events


# ---------------------------------------------------------------------------
# Bigger builders
# ---------------------------------------------------------------------------


@pytest.fixture
def test_game_with_scenes(
    db_session,
    create_test_game,
    create_test_act,
    create_test_scene,
):
    """A game with one act and three scenes; the last scene is active.

    Returns:
        (game, scenes)
    """
    game = create_test_game(name="Game with Scenes", description="Has scenes")
    act = create_test_act(game_id=game.id, title="Act with Scenes")
    scenes = [
        create_test_scene(
            act_id=act.id,
            title=f"Scene {i}",
            description=f"Test scene {i}",
            is_active=(i == 3),
        )
        for i in range(1, 4)
    ]
    try:
        db_session.refresh(game, attribute_names=["acts"])
        db_session.refresh(act, attribute_names=["scenes"])
    except Exception as e:
        logger.warning("Could not refresh hierarchy: %s", e)
    return game, scenes


@pytest.fixture
def test_hierarchy(
    db_session,
    create_test_game,
    create_test_act,
    create_test_scene,
    create_test_event,
):
    """A complete game: two acts, two scenes each, two events per scene.

    The second act and its last scene are active.
    """
    game = create_test_game(name="Hierarchy Game", description="Complete hierarchy")
    acts: List[Act] = []
    scenes: List[Scene] = []
    events: List[Event] = []
    for act_number in range(1, 3):
        act = create_test_act(
            game_id=game.id,
            title=f"Hierarchy Act {act_number}",
            is_active=(act_number == 2),
        )
        acts.append(act)
        for scene_number in range(1, 3):
            scene = create_test_scene(
                act.id,
                title=f"Act {act_number} Scene {scene_number}",
                is_active=(scene_number == 2),
            )
            scenes.append(scene)
            for event_number in range(1, 3):
                events.append(
                    create_test_event(
                        scene_id=scene.id,
                        description=f"Event {act_number}.{scene_number}.{event_number}",
                    )
                )
    try:
        db_session.refresh(game, attribute_names=["acts"])
        for act in acts:
            db_session.refresh(act, attribute_names=["scenes"])
    except Exception as e:
        logger.warning("Could not refresh hierarchy: %s", e)
    return {"game": game, "acts": acts, "scenes": scenes, "events": events}


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


@pytest.fixture
def assert_model_properties():
    """Return a helper asserting that a model has the expected attribute values."""

    def _assert_model_properties(model: Any, expected: Dict[str, Any]) -> None:
        for attr, value in expected.items():
            assert hasattr(model, attr), f"{type(model).__name__} has no attribute {attr}"
            actual = getattr(model, attr)
            assert actual == value, f"{type(model).__name__}.{attr}: {actual!r} != {value!r}"

    return _assert_model_properties


@pytest.fixture
def sample_oracle_response():
    """A model answer with three interpretations (this definition wins)."""
    return (
        "## The Stranger Lies\nThe stranger is hiding their true purpose.\n\n"
        "## An Old Debt\nThe stranger is here to collect on a debt.\n\n"
        "## A Warning\nThe stranger brings news of danger.\n"
    )
