"""Scene management."""

import logging
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from sqlalchemy import func
from sqlalchemy.orm import Session

from sologm.core.base_manager import BaseManager
from sologm.models.act import Act
from sologm.models.scene import Scene, SceneStatus
from sologm.utils.errors import SceneError

if TYPE_CHECKING:
    from sologm.core.act import ActManager
    from sologm.core.game import GameManager

logger = logging.getLogger(__name__)


class SceneManager(BaseManager[Scene, Scene]):
    """Creates, lists and navigates scenes within acts."""

    def __init__(
        self,
        act_manager: Optional["ActManager"] = None,
        session: Optional[Session] = None,
    ):
        """Initialize the scene manager.

        Args:
            act_manager: Optional ActManager; created lazily when omitted.
            session: Optional database session (for tests or CLI contexts).
        """
        super().__init__(session=session)
        self._act_manager = act_manager

    @property
    def act_manager(self) -> "ActManager":
        """The ActManager this manager uses (created on first access)."""
        return self._lazy_init_manager("_act_manager", "sologm.core.act.ActManager")

    @property
    def game_manager(self) -> "GameManager":
        """The GameManager, reached through the act manager."""
        return self.act_manager.game_manager

    # ------------------------------------------------------------------

    def _resolve_act_id(self, act_id: Optional[str]) -> str:
        if act_id is not None:
            return act_id
        act = self.act_manager.get_active_act()
        if act is None:
            raise SceneError("No active act. Create or activate an act first.")
        return act.id

    def create_scene(
        self,
        title: str,
        description: Optional[str] = None,
        act_id: Optional[str] = None,
        make_active: bool = True,
    ) -> Scene:
        """Create a scene at the end of an act (the active act by default).

        Raises:
            SceneError: If the title is empty, the act does not exist, or the act
                already has a scene with this title.
        """
        if not title or not title.strip():
            raise SceneError("Scene title cannot be empty")
        target_act_id = self._resolve_act_id(act_id)

        def _create_scene(session: Session) -> Scene:
            act = session.get(Act, target_act_id)
            if act is None:
                raise SceneError(f"Act {target_act_id} not found")
            clash = (
                session.query(Scene)
                .filter(Scene.act_id == target_act_id, func.lower(Scene.title) == title.lower())
                .first()
            )
            if clash is not None:
                raise SceneError(f"A scene titled '{title}' already exists in this act")
            max_sequence = (
                session.query(func.max(Scene.sequence))
                .filter(Scene.act_id == target_act_id)
                .scalar()
            )
            if make_active:
                self._deactivate_all(session, Scene, act_id=target_act_id)
            scene = Scene.create(
                act_id=target_act_id,
                title=title,
                description=description,
                sequence=(max_sequence or 0) + 1,
            )
            scene.is_active = make_active
            session.add(scene)
            session.flush()
            return scene

        return self._execute_db_operation("create_scene", _create_scene)

    def get_scene(self, scene_id: str) -> Optional[Scene]:
        """Return the scene with ``scene_id`` or None."""

        def _get_scene(session: Session) -> Optional[Scene]:
            return session.get(Scene, scene_id)

        return self._execute_db_operation(f"get_scene {scene_id}", _get_scene)

    def list_scenes(self, act_id: Optional[str] = None) -> List[Scene]:
        """List the scenes of an act (the active act by default), in order."""
        target_act_id = self._resolve_act_id(act_id)
        return self.list_entities(Scene, filters={"act_id": target_act_id}, order_by=Scene.sequence)

    def get_active_scene(self, act_id: Optional[str] = None) -> Optional[Scene]:
        """Return the active scene of an act (the active act by default).

        Walks ``act.scenes`` and returns the scene flagged active, or None.

        Raises:
            SceneError: If ``act_id`` is None and there is no active act.
        """
        if act_id is None:
            act = self.act_manager.get_active_act()
            if act is None:
                raise SceneError("No active act. Create or activate an act first.")
        else:
            act = self.act_manager.get_act(act_id)
            if act is None:
                raise SceneError(f"Act {act_id} not found")
        for scene in act.scenes:
            if scene.is_active:
                return scene
        return None

    def get_active_context(self) -> Dict[str, Any]:
        """Return ``{"game": ..., "act": ..., "scene": ...}`` for the active scene.

        Raises:
            SceneError: If any level has nothing active.
        """
        scene = self.get_active_scene()
        if scene is None:
            raise SceneError("No active scene. Add or activate a scene first.")
        return {"game": scene.act.game, "act": scene.act, "scene": scene}

    def activate_scene(self, scene_id: str) -> Scene:
        """Make ``scene_id`` the only active scene of its act."""

        def _activate(session: Session) -> Scene:
            scene = self.get_entity_or_error(
                session, Scene, scene_id, SceneError, f"Scene {scene_id} not found"
            )
            self._deactivate_all(session, Scene, act_id=scene.act_id)
            scene.is_active = True
            return scene

        return self._execute_db_operation(f"activate_scene {scene_id}", _activate)

    def complete_scene(self, scene_id: str) -> Scene:
        """Mark a scene completed.

        Raises:
            SceneError: If the scene does not exist or is already completed.
        """

        def _complete(session: Session) -> Scene:
            scene = self.get_entity_or_error(
                session, Scene, scene_id, SceneError, f"Scene {scene_id} not found"
            )
            if scene.status == SceneStatus.COMPLETED:
                raise SceneError(f"Scene {scene_id} is already completed")
            scene.status = SceneStatus.COMPLETED
            return scene

        return self._execute_db_operation(f"complete_scene {scene_id}", _complete)

    def update_scene(
        self,
        scene_id: str,
        title: Optional[str] = None,
        description: Optional[str] = None,
    ) -> Scene:
        """Change a scene's title and/or description."""

        def _update(session: Session) -> Scene:
            scene = self.get_entity_or_error(
                session, Scene, scene_id, SceneError, f"Scene {scene_id} not found"
            )
            if title is not None:
                scene.title = title
            if description is not None:
                scene.description = description
            return scene

        return self._execute_db_operation(f"update_scene {scene_id}", _update)

    def get_previous_scene(self, scene_id: str) -> Optional[Scene]:
        """Return the scene before ``scene_id`` in the same act, if any."""

        def _previous(session: Session) -> Optional[Scene]:
            scene = self.get_entity_or_error(
                session, Scene, scene_id, SceneError, f"Scene {scene_id} not found"
            )
            return (
                session.query(Scene)
                .filter(Scene.act_id == scene.act_id, Scene.sequence < scene.sequence)
                .order_by(Scene.sequence.desc())
                .first()
            )

        return self._execute_db_operation(f"get_previous_scene {scene_id}", _previous)
