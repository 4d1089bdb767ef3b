"""Act model."""

from typing import TYPE_CHECKING, List, Optional

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sologm.models.base import Base, TimestampMixin, generate_unique_id
from sologm.models.utils import slugify

if TYPE_CHECKING:
    from sologm.models.game import Game
    from sologm.models.scene import Scene


class Act(Base, TimestampMixin):
    """An act groups scenes within a game."""

    __tablename__ = "acts"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=generate_unique_id)
    slug: Mapped[str] = mapped_column(String, nullable=False)
    game_id: Mapped[str] = mapped_column(ForeignKey("games.id"), nullable=False)
    title: Mapped[Optional[str]] = mapped_column(String, nullable=True)
    summary: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    sequence: Mapped[int] = mapped_column(Integer, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)

    game: Mapped["Game"] = relationship("Game", back_populates="acts")
    scenes: Mapped[List["Scene"]] = relationship(
        "Scene",
        back_populates="act",
        cascade="all, delete-orphan",
        order_by="Scene.sequence",
    )

    @classmethod
    def create(
        cls,
        game_id: str,
        title: Optional[str],
        summary: Optional[str],
        sequence: int,
    ) -> "Act":
        """Build a new (unsaved) act.

        Acts may be untitled while they are still being played; the slug then
        falls back to the sequence number.
        """
        slug = f"act-{sequence}-{slugify(title)}" if title else f"act-{sequence}-untitled"
        return cls(
            id=generate_unique_id(),
            game_id=game_id,
            slug=slug,
            title=title,
            summary=summary,
            sequence=sequence,
            is_active=False,
        )

    def __repr__(self) -> str:
        return f"<Act {self.sequence} {self.title!r} active={self.is_active}>"
