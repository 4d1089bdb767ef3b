"""Event management."""

import logging
from typing import TYPE_CHECKING, List, Optional

from sqlalchemy.orm import Session

from sologm.core.base_manager import BaseManager
from sologm.models.event import Event
from sologm.models.event_source import EventSource
from sologm.models.scene import Scene
from sologm.utils.errors import EventError

if TYPE_CHECKING:
    from sologm.core.scene import SceneManager

logger = logging.getLogger(__name__)


class EventManager(BaseManager[Event, Event]):
    """Records and lists the events of scenes."""

    def __init__(
        self,
        scene_manager: Optional["SceneManager"] = None,
        session: Optional[Session] = None,
    ):
        """Initialize the event manager.

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

    # ------------------------------------------------------------------

    def _resolve_scene_id(self, scene_id: Optional[str]) -> str:
        if scene_id is not None:
            return scene_id
        scene = self.scene_manager.get_active_scene()
        if scene is None:
            raise EventError("No active scene. Add or activate a scene first.")
        return scene.id

    def _get_source(self, session: Session, source: str) -> EventSource:
        event_source = session.query(EventSource).filter(EventSource.name == source).first()
        if event_source is None:
            valid = ", ".join(s.name for s in session.query(EventSource).order_by(EventSource.name))
            raise EventError(f"Invalid event source '{source}'. Valid sources: {valid}")
        return event_source

    def add_event(
        self,
        description: str,
        scene_id: Optional[str] = None,
        source: str = "manual",
        interpretation_id: Optional[str] = None,
    ) -> Event:
        """Add an event to a scene (the active scene by default).

        Raises:
            EventError: If the description is empty, the scene does not exist,
                there is no active scene, or the source is unknown.
        """
        if not description or not description.strip():
            raise EventError("Event description cannot be empty")
        target_scene_id = self._resolve_scene_id(scene_id)

        def _add_event(session: Session) -> Event:
            if session.get(Scene, target_scene_id) is None:
                raise EventError(f"Scene {target_scene_id} not found")
            event_source = self._get_source(session, source)
            event = Event.create(
                scene_id=target_scene_id,
                description=description,
                source_id=event_source.id,
                interpretation_id=interpretation_id,
            )
            session.add(event)
            session.flush()
            return event

        return self._execute_db_operation("add_event", _add_event)

    def get_event(self, event_id: str) -> Optional[Event]:
        """Return the event with ``event_id`` or None."""

        def _get_event(session: Session) -> Optional[Event]:
            return session.get(Event, event_id)

        return self._execute_db_operation(f"get_event {event_id}", _get_event)

    def list_events(self, scene_id: Optional[str] = None, limit: Optional[int] = None) -> List[Event]:
        """List the events of a scene (the active scene by default), newest first."""
        target_scene_id = self._resolve_scene_id(scene_id)
        return self.list_entities(
            Event,
            filters={"scene_id": target_scene_id},
            order_by=Event.created_at.desc(),
            limit=limit,
        )

    def update_event(
        self, event_id: str, description: str, source: Optional[str] = None
    ) -> Event:
        """Change an event's description and optionally its source."""

        def _update(session: Session) -> Event:
            event = self.get_entity_or_error(
                session, Event, event_id, EventError, f"Event {event_id} not found"
            )
            event.description = description
            if source is not None:
                event.source = self._get_source(session, source)
            return event

        return self._execute_db_operation(f"update_event {event_id}", _update)

    def delete_event(self, event_id: str) -> bool:
        """Delete an event. Returns False if it did not exist."""

        def _delete(session: Session) -> bool:
            event = session.get(Event, event_id)
            if event is None:
                return False
            session.delete(event)
            return True

        return self._execute_db_operation(f"delete_event {event_id}", _delete)

    def add_event_source(self, name: str) -> EventSource:
        """Register another kind of event source; the database keeps names unique."""

        def _add_source(session: Session) -> EventSource:
            source = EventSource.create(name.strip().lower())
            session.add(source)
            session.flush()
            return source

        return self._execute_db_operation(f"add_event_source {name}", _add_source)

    def get_event_sources(self) -> List[EventSource]:
        """Return every known event source, by name."""
        return self.list_entities(EventSource, order_by=EventSource.name)
