"""Game model."""

from typing import TYPE_CHECKING, List, Optional

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sologm.models.base import Base, TimestampMixin, generate_unique_id
from sologm.models.utils import slugify

if TYPE_CHECKING:
    from sologm.models.act import Act


class Game(Base, TimestampMixin):
    """A game: the top of the hierarchy game -> act -> scene -> event."""

    __tablename__ = "games"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=generate_unique_id)
    slug: Mapped[str] = mapped_column(String, unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String, nullable=False)
    description: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)

    acts: Mapped[List["Act"]] = relationship(
        "Act",
        back_populates="game",
        cascade="all, delete-orphan",
        order_by="Act.sequence",
    )

    @classmethod
    def create(cls, name: str, description: Optional[str] = None) -> "Game":
        """Build a new (unsaved) game with a generated id and slug."""
        return cls(
            id=generate_unique_id(),
            name=name,
            slug=slugify(name),
            description=description,
            is_active=False,
        )

    def __repr__(self) -> str:
        return f"<Game {self.slug!r} active={self.is_active}>"
