"""SQLAlchemy models for sologm.

Importing this package registers every model on ``Base.metadata``.
"""

from sologm.models.act import Act
from sologm.models.base import Base, TimestampMixin, generate_unique_id
from sologm.models.dice import DiceRoll
from sologm.models.event import Event
from sologm.models.event_source import EventSource
from sologm.models.game import Game
from sologm.models.oracle import Interpretation, InterpretationSet
from sologm.models.scene import Scene, SceneStatus

__all__ = [
    "Act",
    "Base",
    "DiceRoll",
    "Event",
    "EventSource",
    "Game",
    "Interpretation",
    "InterpretationSet",
    "Scene",
    "SceneStatus",
    "TimestampMixin",
    "generate_unique_id",
]
