"""Dice roll model."""

from typing import TYPE_CHECKING, List, Optional

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sologm.models.base import Base, TimestampMixin, generate_unique_id

if TYPE_CHECKING:
    from sologm.models.scene import Scene


class DiceRoll(Base, TimestampMixin):
    """A recorded dice roll, optionally tied to a scene."""

    __tablename__ = "dice_rolls"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=generate_unique_id)
    notation: Mapped[str] = mapped_column(String, nullable=False)
    individual_results: Mapped[List[int]] = mapped_column(JSON, nullable=False)
    modifier: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    total: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    scene_id: Mapped[Optional[str]] = mapped_column(ForeignKey("scenes.id"), nullable=True)

    scene: Mapped[Optional["Scene"]] = relationship("Scene", back_populates="dice_rolls")

    @classmethod
    def create(
        cls,
        notation: str,
        individual_results: List[int],
        modifier: int,
        total: int,
        reason: Optional[str] = None,
        scene_id: Optional[str] = None,
    ) -> "DiceRoll":
        return cls(
            id=generate_unique_id(),
            notation=notation,
            individual_results=list(individual_results),
            modifier=modifier,
            total=total,
            reason=reason,
            scene_id=scene_id,
        )

    def __repr__(self) -> str:
        return f"<DiceRoll {self.notation} = {self.total}>"
