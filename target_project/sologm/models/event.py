"""Event model."""

from typing import TYPE_CHECKING, Optional

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sologm.models.base import Base, TimestampMixin, generate_unique_id

if TYPE_CHECKING:
    from sologm.models.event_source import EventSource
    from sologm.models.oracle import Interpretation
    from sologm.models.scene import Scene


class Event(Base, TimestampMixin):
    """Something that happened in a scene."""

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=generate_unique_id)
    scene_id: Mapped[str] = mapped_column(ForeignKey("scenes.id"), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False)
    source_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("event_sources.id"), nullable=False
    )
    interpretation_id: Mapped[Optional[str]] = mapped_column(
        ForeignKey("interpretations.id"), nullable=True
    )

    scene: Mapped["Scene"] = relationship("Scene", back_populates="events")
    source: Mapped["EventSource"] = relationship("EventSource", back_populates="events")
    interpretation: Mapped[Optional["Interpretation"]] = relationship(
        "Interpretation", back_populates="events"
    )

    @property
    def source_name(self) -> str:
        return self.source.name if self.source is not None else "unknown"

    @classmethod
    def create(
        cls,
        scene_id: str,
        description: str,
        source_id: int,
        interpretation_id: Optional[str] = None,
    ) -> "Event":
        return cls(
            id=generate_unique_id(),
            scene_id=scene_id,
            description=description,
            source_id=source_id,
            interpretation_id=interpretation_id,
        )

    def __repr__(self) -> str:
        return f"<Event {self.description[:20]!r}>"
