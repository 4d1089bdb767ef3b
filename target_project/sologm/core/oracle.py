"""Oracle interpretation: ask an LLM what oracle results mean in the current scene."""

import logging
import re
from typing import TYPE_CHECKING, Dict, List, Optional

from sqlalchemy.orm import Session

from sologm.core.base_manager import BaseManager
from sologm.integrations.anthropic import AnthropicClient
from sologm.models.event import Event
from sologm.models.oracle import Interpretation, InterpretationSet
from sologm.models.scene import Scene
from sologm.utils.errors import OracleError

if TYPE_CHECKING:
    from sologm.core.event import EventManager
    from sologm.core.scene import SceneManager

logger = logging.getLogger(__name__)

_HEADING_RE = re.compile(r"^##\s+(.+?)\s*$", re.MULTILINE)


class OracleManager(BaseManager[InterpretationSet, InterpretationSet]):
    """Builds oracle prompts, stores interpretations and turns a chosen one into an event."""

    def __init__(
        self,
        anthropic_client: Optional[AnthropicClient] = None,
        scene_manager: Optional["SceneManager"] = None,
        event_manager: Optional["EventManager"] = None,
        session: Optional[Session] = None,
    ):
        """Initialize the oracle manager.

        Args:
            anthropic_client: Client for the LLM; built from the API key when omitted.
            scene_manager: Optional SceneManager; created lazily when omitted.
            event_manager: Optional EventManager; created lazily when omitted.
            session: Optional database session (for tests or CLI contexts).
        """
        super().__init__(session=session)
        # Build the client right away: a missing API key (SOLOGM_ANTHROPIC_API_KEY or
        # config.json) should stop us here, not halfway through an oracle question.
        self.anthropic_client = anthropic_client or AnthropicClient()
        self._scene_manager = scene_manager
        self._event_manager = event_manager

    @property
    def scene_manager(self) -> "SceneManager":
        return self._lazy_init_manager("_scene_manager", "sologm.core.scene.SceneManager")

    @property
    def event_manager(self) -> "EventManager":
        return self._lazy_init_manager(
            "_event_manager",
            "sologm.core.event.EventManager",
            scene_manager=self.scene_manager,
        )

    # ------------------------------------------------------------------
    # Prompt building and parsing (no database)
    # ------------------------------------------------------------------

    @staticmethod
    def build_prompt(
        game_description: str,
        scene_description: str,
        recent_events: List[str],
        context: str,
        oracle_results: str,
        count: int = 3,
        previous_titles: Optional[List[str]] = None,
    ) -> str:
        """Build the prompt sent to the model."""
        events = "\n".join(f"- {e}" for e in recent_events) or "No recent events"
        prompt = (
            "You are interpreting oracle results for a solo RPG.\n\n"
            f"Game: {game_description}\n"
            f"Current scene: {scene_description}\n"
            f"Recent events:\n{events}\n\n"
            f"User's question/context: {context}\n"
            f"Oracle results: {oracle_results}\n\n"
            f"Give {count} different interpretations. Format each as:\n"
            "## Title\nDescription\n"
        )
        if previous_titles:
            prompt += "\nDo not repeat these earlier interpretations: " + ", ".join(previous_titles) + "\n"
        return prompt

    @staticmethod
    def parse_interpretations(response_text: str) -> List[Dict[str, str]]:
        """Split ``## Title`` / description blocks out of the model's answer."""
        headings = list(_HEADING_RE.finditer(response_text))
        parsed: List[Dict[str, str]] = []
        for i, heading in enumerate(headings):
            end = headings[i + 1].start() if i + 1 < len(headings) else len(response_text)
            description = response_text[heading.end():end].strip()
            parsed.append({"title": heading.group(1).strip(), "description": description})
        return parsed

    # ------------------------------------------------------------------
    # Database operations
    # ------------------------------------------------------------------

    def get_interpretations(
        self,
        scene_id: str,
        context: str,
        oracle_results: str,
        count: int = 3,
        retry_attempt: int = 0,
    ) -> InterpretationSet:
        """Ask the model for interpretations and store them as the current set.

        Raises:
            OracleError: If the scene does not exist, the API fails, or the
                answer contains no interpretations.
        """
        scene = self.scene_manager.get_scene(scene_id)
        if scene is None:
            raise OracleError(f"Scene {scene_id} not found")
        recent = [e.description for e in self.event_manager.list_events(scene_id=scene_id, limit=5)]

        previous_titles: List[str] = []
        if retry_attempt > 0:
            current = self.get_current_interpretation_set(scene_id)
            if current is not None:
                previous_titles = [i.title for i in current.interpretations]

        prompt = self.build_prompt(
            game_description=scene.act.game.description or scene.act.game.name,
            scene_description=scene.description or scene.title,
            recent_events=recent,
            context=context,
            oracle_results=oracle_results,
            count=count,
            previous_titles=previous_titles,
        )
        try:
            response_text = self.anthropic_client.send_message(prompt)
        except Exception as e:
            raise OracleError(f"Failed to get interpretations: {e}") from e

        parsed = self.parse_interpretations(response_text)
        if not parsed:
            raise OracleError("The oracle returned no interpretations")

        def _store_interpretations(session: Session) -> InterpretationSet:
            for old in (
                session.query(InterpretationSet)
                .filter(InterpretationSet.scene_id == scene_id, InterpretationSet.is_current == True)  # noqa: E712
                .all()
            ):
                old.is_current = False
            interp_set = InterpretationSet.create(
                scene_id=scene_id,
                context=context,
                oracle_results=oracle_results,
                retry_attempt=retry_attempt,
                is_current=True,
            )
            session.add(interp_set)
            session.flush()
            for position, item in enumerate(parsed, start=1):
                session.add(
                    Interpretation.create(
                        set_id=interp_set.id,
                        title=item["title"],
                        description=item["description"],
                        position=position,
                    )
                )
            session.flush()
            session.refresh(interp_set, attribute_names=["interpretations"])
            return interp_set

        return self._execute_db_operation("get_interpretations", _store_interpretations)

    def get_current_interpretation_set(self, scene_id: str) -> Optional[InterpretationSet]:
        """Return the scene's current interpretation set, if any."""

        def _current(session: Session) -> Optional[InterpretationSet]:
            return (
                session.query(InterpretationSet)
                .filter(InterpretationSet.scene_id == scene_id, InterpretationSet.is_current == True)  # noqa: E712
                .first()
            )

        return self._execute_db_operation("get_current_interpretation_set", _current)

    def find_interpretation(self, set_id: str, identifier: str) -> Interpretation:
        """Find an interpretation of a set by 1-based number, id, or title.

        Raises:
            OracleError: If nothing matches.
        """

        def _find(session: Session) -> Interpretation:
            interpretations = (
                session.query(Interpretation)
                .filter(Interpretation.set_id == set_id)
                .order_by(Interpretation.position, Interpretation.created_at)
                .all()
            )
            if not interpretations:
                raise OracleError(f"Interpretation set {set_id} has no interpretations")
            if identifier.isdigit():
                index = int(identifier) - 1
                if 0 <= index < len(interpretations):
                    return interpretations[index]
                raise OracleError(
                    f"Interpretation number {identifier} out of range (1-{len(interpretations)})"
                )
            for interp in interpretations:
                if interp.id == identifier or interp.title.lower() == identifier.lower():
                    return interp
            raise OracleError(f"No interpretation matching '{identifier}'")

        return self._execute_db_operation("find_interpretation", _find)

    def select_interpretation(
        self, set_id: str, identifier: str, add_event: bool = False
    ) -> Interpretation:
        """Mark one interpretation of a set as selected, optionally recording an event."""
        chosen = self.find_interpretation(set_id, identifier)

        def _select(session: Session) -> Interpretation:
            for interp in session.query(Interpretation).filter(Interpretation.set_id == set_id):
                interp.is_selected = interp.id == chosen.id
            return chosen

        selected = self._execute_db_operation("select_interpretation", _select)
        if add_event:
            self.add_interpretation_event(selected)
        return selected

    def add_interpretation_event(
        self, interpretation: Interpretation, custom_description: Optional[str] = None
    ) -> Event:
        """Record an interpretation as an ``oracle`` event in its scene."""
        description = custom_description or f"{interpretation.title}: {interpretation.description}"
        return self.event_manager.add_event(
            description=description,
            scene_id=interpretation.interpretation_set.scene_id,
            source="oracle",
            interpretation_id=interpretation.id,
        )

    def get_scene_for_set(self, set_id: str) -> Scene:
        """Return the scene an interpretation set belongs to."""

        def _scene(session: Session) -> Scene:
            interp_set = self.get_entity_or_error(
                session, InterpretationSet, set_id, OracleError, f"Interpretation set {set_id} not found"
            )
            return interp_set.scene

        return self._execute_db_operation("get_scene_for_set", _scene)
