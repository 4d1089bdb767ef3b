"""Game management."""

import logging
from typing import List, Optional

from sqlalchemy.orm import Session

from sologm.core.base_manager import BaseManager
from sologm.models.game import Game
from sologm.models.utils import slugify
from sologm.utils.errors import GameError

logger = logging.getLogger(__name__)


class GameManager(BaseManager[Game, Game]):
    """Creates, lists, activates, updates and deletes games."""

    def __init__(self, session: Optional[Session] = None):
        """Initialize the game manager.

        Args:
            session: Optional database session (for tests or CLI contexts).
        """
        super().__init__(session=session)

    def create_game(self, name: str, description: Optional[str] = None, is_active: bool = True) -> Game:
        """Create a new game, by default making it the active one.

        Raises:
            GameError: If the name is empty or a game with the same slug exists.
        """
        if not name or not name.strip():
            raise GameError("Game name cannot be empty")

        def _create_game(session: Session) -> Game:
            slug = slugify(name)
            existing = session.query(Game).filter(Game.slug == slug).first()
            if existing is not None:
                raise GameError(f"A game with name '{name}' already exists")
            if is_active:
                self._deactivate_all(session, Game)
            game = Game.create(name=name.strip(), description=description)
            game.is_active = is_active
            session.add(game)
            session.flush()
            logger.debug("Created game %s", game.id)
            return game

        return self._execute_db_operation("create_game", _create_game)

    def list_games(self) -> List[Game]:
        """Return every game, ordered by creation time."""
        return self.list_entities(Game, order_by=Game.created_at)

    def get_game(self, game_id: str) -> Optional[Game]:
        """Return the game with ``game_id`` or None."""

        def _get_game(session: Session) -> Optional[Game]:
            return session.get(Game, game_id)

        return self._execute_db_operation(f"get_game {game_id}", _get_game)

    def get_game_by_slug(self, slug: str) -> Optional[Game]:
        """Return the game with ``slug`` or None."""

        def _get_by_slug(session: Session) -> Optional[Game]:
            return session.query(Game).filter(Game.slug == slug).first()

        return self._execute_db_operation(f"get_game_by_slug {slug}", _get_by_slug)

    def get_active_game(self) -> Optional[Game]:
        """Return the active game, or None if no game is active."""

        def _get_active(session: Session) -> Optional[Game]:
            return session.query(Game).filter(Game.is_active == True).first()  # noqa: E712

        return self._execute_db_operation("get_active_game", _get_active)

    def activate_game(self, game_id: str) -> Game:
        """Make ``game_id`` the only active game.

        Raises:
            GameError: If the game does not exist.
        """

        def _activate(session: Session) -> Game:
            game = self.get_entity_or_error(session, Game, game_id, GameError, f"Game {game_id} not found")
            self._deactivate_all(session, Game)
            game.is_active = True
            return game

        return self._execute_db_operation(f"activate_game {game_id}", _activate)

    def deactivate_all_games(self) -> None:
        """Mark every game inactive."""

        def _deactivate(session: Session) -> None:
            self._deactivate_all(session, Game)

        self._execute_db_operation("deactivate_all_games", _deactivate)

    def update_game(
        self,
        game_id: str,
        name: Optional[str] = None,
        description: Optional[str] = None,
    ) -> Game:
        """Change a game's name and/or description.

        Raises:
            GameError: If the game does not exist or the new name is taken.
        """

        def _update(session: Session) -> Game:
            game = self.get_entity_or_error(session, Game, game_id, GameError, f"Game {game_id} not found")
            if name is not None and name != game.name:
                new_slug = slugify(name)
                clash = session.query(Game).filter(Game.slug == new_slug, Game.id != game_id).first()
                if clash is not None:
                    raise GameError(f"A game with name '{name}' already exists")
                game.name = name
                game.slug = new_slug
            if description is not None:
                game.description = description
            return game

        return self._execute_db_operation(f"update_game {game_id}", _update)

    def delete_game(self, game_id: str) -> bool:
        """Delete a game and everything under it. Returns False if it did not exist."""

        def _delete(session: Session) -> bool:
            game = session.get(Game, game_id)
            if game is None:
                return False
            session.delete(game)
            return True

        return self._execute_db_operation(f"delete_game {game_id}", _delete)
