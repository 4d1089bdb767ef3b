"""Event source lookup table (manual, oracle, dice)."""

from typing import TYPE_CHECKING, List

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sologm.models.base import Base

if TYPE_CHECKING:
    from sologm.models.event import Event

DEFAULT_EVENT_SOURCES = ("manual", "oracle", "dice")


class EventSource(Base):
    """Where an event came from."""

    __tablename__ = "event_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String, unique=True, nullable=False)

    events: Mapped[List["Event"]] = relationship("Event", back_populates="source")

    @classmethod
    def create(cls, name: str) -> "EventSource":
        return cls(name=name)

    def __repr__(self) -> str:
        return f"<EventSource {self.name!r}>"
