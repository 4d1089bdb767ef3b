"""Dice rolling."""

import logging
import random
import re
from typing import TYPE_CHECKING, List, Optional, Tuple

from sqlalchemy.orm import Session

from sologm.core.base_manager import BaseManager
from sologm.models.dice import DiceRoll
from sologm.utils.errors import DiceError

if TYPE_CHECKING:
    from sologm.core.scene import SceneManager

logger = logging.getLogger(__name__)

NOTATION_RE = re.compile(r"^(\d*)d(\d+)([+-]\d+)?$")
MAX_DICE = 100


class DiceManager(BaseManager[DiceRoll, DiceRoll]):
    """Rolls dice in ``NdS+M`` notation and records the results."""

    def __init__(
        self,
        scene_manager: Optional["SceneManager"] = None,
        session: Optional[Session] = None,
    ):
        """Initialize the dice manager.

        Args:
            scene_manager: Optional SceneManager; created lazily when omitted.
            session: Optional database session (for tests or CLI contexts).
        """
        super().__init__(session=session)
        self._scene_manager = scene_manager

    @property
    def scene_manager(self) -> "SceneManager":
        """The SceneManager this manager uses (created on first access)."""
        return self._lazy_init_manager("_scene_manager", "sologm.core.scene.SceneManager")

    @staticmethod
    def parse_notation(notation: str) -> Tuple[int, int, int]:
        """Parse ``NdS+M`` into ``(count, sides, modifier)``.

        Raises:
            DiceError: If the notation is not valid.
        """
        match = NOTATION_RE.match(notation.strip().lower().replace(" ", ""))
        if not match:
            raise DiceError(f"Invalid dice notation: {notation}")
        count = int(match.group(1)) if match.group(1) else 1
        sides = int(match.group(2))
        modifier = int(match.group(3)) if match.group(3) else 0
        if count < 1 or count > MAX_DICE:
            raise DiceError(f"Dice count must be between 1 and {MAX_DICE}: {notation}")
        if sides < 2:
            raise DiceError(f"Dice must have at least 2 sides: {notation}")
        return count, sides, modifier

    def roll(
        self,
        notation: str,
        reason: Optional[str] = None,
        scene_id: Optional[str] = None,
    ) -> DiceRoll:
        """Roll ``notation`` and store the result."""
        count, sides, modifier = self.parse_notation(notation)
        results: List[int] = [random.randint(1, sides) for _ in range(count)]
        total = sum(results) + modifier
        logger.debug("Rolled %s: %s + %s = %s", notation, results, modifier, total)

        def _store_roll(session: Session) -> DiceRoll:
            dice_roll = DiceRoll.create(
                notation=notation,
                individual_results=results,
                modifier=modifier,
                total=total,
                reason=reason,
                scene_id=scene_id,
            )
            session.add(dice_roll)
            session.flush()
            return dice_roll

        return self._execute_db_operation("roll", _store_roll)

    def roll_for_active_scene(self, notation: str, reason: Optional[str] = None) -> DiceRoll:
        """Roll and attach the result to the active scene."""
        scene = self.scene_manager.get_active_scene()
        if scene is None:
            raise DiceError("No active scene to roll for")
        return self.roll(notation, reason=reason, scene_id=scene.id)

    def count_rolls(self, scene_id: Optional[str] = None) -> int:
        """How many rolls are stored, optionally only those of one scene (a plain read)."""
        session, _ = self._get_session()
        query = session.query(DiceRoll)
        if scene_id is not None:
            query = query.filter(DiceRoll.scene_id == scene_id)
        return query.count()

    def get_recent_rolls(self, scene_id: Optional[str] = None, limit: int = 5) -> List[DiceRoll]:
        """Return the most recent rolls, optionally only those of one scene."""
        filters = {"scene_id": scene_id} if scene_id is not None else None
        return self.list_entities(
            DiceRoll, filters=filters, order_by=DiceRoll.created_at.desc(), limit=limit
        )
