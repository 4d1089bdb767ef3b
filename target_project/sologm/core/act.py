"""Act management."""

import logging
from typing import TYPE_CHECKING, List, Optional

from sqlalchemy import func
from sqlalchemy.orm import Session

from sologm.core.base_manager import BaseManager
from sologm.models.act import Act
from sologm.models.game import Game
from sologm.models.utils import slugify
from sologm.utils.errors import ActError

if TYPE_CHECKING:
    from sologm.core.game import GameManager

logger = logging.getLogger(__name__)


class ActManager(BaseManager[Act, Act]):
    """Creates and navigates the acts of a game."""

    def __init__(
        self,
        game_manager: Optional["GameManager"] = None,
        session: Optional[Session] = None,
    ):
        """Initialize the act manager.

        Args:
            game_manager: Optional GameManager; created lazily when omitted.
            session: Optional database session (for tests or CLI contexts).
        """
        super().__init__(session=session)
        self._game_manager = game_manager

    @property
    def game_manager(self) -> "GameManager":
        """The GameManager this manager uses (created on first access)."""
        return self._lazy_init_manager("_game_manager", "sologm.core.game.GameManager")

    # ------------------------------------------------------------------

    def _resolve_game(self, game_id: Optional[str]) -> Game:
        """Return the game ``game_id``, or the active game when it is None."""
        if game_id is None:
            game = self.game_manager.get_active_game()
            if game is None:
                raise ActError("No active game. Create or activate a game first.")
            return game
        game = self.game_manager.get_game(game_id)
        if game is None:
            raise ActError(f"Game {game_id} not found")
        return game

    def create_act(
        self,
        game_id: Optional[str] = None,
        title: Optional[str] = None,
        summary: Optional[str] = None,
        make_active: bool = True,
    ) -> Act:
        """Create an act at the end of a game (the active game by default).

        Raises:
            ActError: If there is no such game, or another act already has the title.
        """
        game = self._resolve_game(game_id)
        target_game_id = game.id

        def _create_act(session: Session) -> Act:
            if title:
                slug_tail = slugify(title)
                clash = (
                    session.query(Act)
                    .filter(Act.game_id == target_game_id, Act.title == title)
                    .first()
                )
                if clash is not None:
                    raise ActError(f"An act titled '{title}' already exists ({slug_tail})")
            max_sequence = (
                session.query(func.max(Act.sequence))
                .filter(Act.game_id == target_game_id)
                .scalar()
            )
            sequence = (max_sequence or 0) + 1
            if make_active:
                self._deactivate_all(session, Act, game_id=target_game_id)
            act = Act.create(
                game_id=target_game_id,
                title=title,
                summary=summary,
                sequence=sequence,
            )
            act.is_active = make_active
            session.add(act)
            session.flush()
            logger.debug("Created act %s (sequence %s) in game %s", act.id, sequence, target_game_id)
            return act

        return self._execute_db_operation("create_act", _create_act)

    def get_act(self, act_id: str) -> Optional[Act]:
        """Return the act with ``act_id`` or None."""

        def _get_act(session: Session) -> Optional[Act]:
            return session.get(Act, act_id)

        return self._execute_db_operation(f"get_act {act_id}", _get_act)

    def list_acts(self, game_id: Optional[str] = None) -> List[Act]:
        """List the acts of a game (the active game by default), in order."""
        game = self._resolve_game(game_id)
        return self.list_entities(Act, filters={"game_id": game.id}, order_by=Act.sequence)

    def get_active_act(self, game_id: Optional[str] = None) -> Optional[Act]:
        """Return the active act of a game (the active game by default).

        Walks ``game.acts`` and returns the act flagged active, or None.

        Raises:
            ActError: If ``game_id`` is None and no game is active.
        """
        game = self._resolve_game(game_id)
        for act in game.acts:
            if act.is_active:
                return act
        logger.debug("Game %s has no active act among %d acts", game.id, len(game.acts))
        return None

    def activate_act(self, act_id: str) -> Act:
        """Make ``act_id`` the only active act of its game."""

        def _activate(session: Session) -> Act:
            act = self.get_entity_or_error(session, Act, act_id, ActError, f"Act {act_id} not found")
            self._deactivate_all(session, Act, game_id=act.game_id)
            act.is_active = True
            return act

        return self._execute_db_operation(f"activate_act {act_id}", _activate)

    def edit_act(
        self,
        act_id: str,
        title: Optional[str] = None,
        summary: Optional[str] = None,
    ) -> Act:
        """Change an act's title and/or summary."""

        def _edit(session: Session) -> Act:
            act = self.get_entity_or_error(session, Act, act_id, ActError, f"Act {act_id} not found")
            if title is not None:
                act.title = title
                act.slug = f"act-{act.sequence}-{slugify(title)}"
            if summary is not None:
                act.summary = summary
            return act

        return self._execute_db_operation(f"edit_act {act_id}", _edit)

    def complete_act(self, act_id: str, summary: Optional[str] = None) -> Act:
        """Close an act: it is no longer active; optionally record a summary."""

        def _complete(session: Session) -> Act:
            act = self.get_entity_or_error(session, Act, act_id, ActError, f"Act {act_id} not found")
            act.is_active = False
            if summary is not None:
                act.summary = summary
            return act

        return self._execute_db_operation(f"complete_act {act_id}", _complete)

    def delete_act(self, act_id: str) -> bool:
        """Delete an act and its scenes. Returns False if it did not exist."""

        def _delete(session: Session) -> bool:
            act = session.get(Act, act_id)
            if act is None:
                return False
            session.delete(act)
            return True

        return self._execute_db_operation(f"delete_act {act_id}", _delete)
