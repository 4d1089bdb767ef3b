"""Scene model."""

import enum
from typing import TYPE_CHECKING, List, Optional

from sqlalchemy import Boolean, Enum, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sologm.models.base import Base, TimestampMixin, generate_unique_id
from sologm.models.utils import slugify

if TYPE_CHECKING:
    from sologm.models.act import Act
    from sologm.models.dice import DiceRoll
    from sologm.models.event import Event
    from sologm.models.oracle import InterpretationSet


class SceneStatus(enum.Enum):
    ACTIVE = "active"
    COMPLETED = "completed"


class Scene(Base, TimestampMixin):
    """A scene within an act."""

    __tablename__ = "scenes"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=generate_unique_id)
    slug: Mapped[str] = mapped_column(String, nullable=False)
    act_id: Mapped[str] = mapped_column(ForeignKey("acts.id"), nullable=False)
    title: Mapped[str] = mapped_column(String, nullable=False)
    description: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    status: Mapped[SceneStatus] = mapped_column(
        Enum(SceneStatus), default=SceneStatus.ACTIVE, nullable=False
    )
    sequence: Mapped[int] = mapped_column(Integer, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)

    act: Mapped["Act"] = relationship("Act", back_populates="scenes")
    events: Mapped[List["Event"]] = relationship(
        "Event", back_populates="scene", cascade="all, delete-orphan"
    )
    dice_rolls: Mapped[List["DiceRoll"]] = relationship(
        "DiceRoll", back_populates="scene", cascade="all, delete-orphan"
    )
    interpretation_sets: Mapped[List["InterpretationSet"]] = relationship(
        "InterpretationSet", back_populates="scene", cascade="all, delete-orphan"
    )

    @classmethod
    def create(
        cls,
        act_id: str,
        title: str,
        description: Optional[str],
        sequence: int,
    ) -> "Scene":
        """Build a new (unsaved) scene."""
        return cls(
            id=generate_unique_id(),
            act_id=act_id,
            slug=f"scene-{sequence}-{slugify(title)}",
            title=title,
            description=description,
            status=SceneStatus.ACTIVE,
            sequence=sequence,
            is_active=False,
        )

    def __repr__(self) -> str:
        return f"<Scene {self.sequence} {self.title!r} active={self.is_active}>"
