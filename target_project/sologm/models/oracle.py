"""Oracle interpretation models."""

from typing import TYPE_CHECKING, List

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sologm.models.base import Base, TimestampMixin, generate_unique_id

if TYPE_CHECKING:
    from sologm.models.event import Event
    from sologm.models.scene import Scene


class InterpretationSet(Base, TimestampMixin):
    """One request to the oracle and the interpretations it returned."""

    __tablename__ = "interpretation_sets"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=generate_unique_id)
    scene_id: Mapped[str] = mapped_column(ForeignKey("scenes.id"), nullable=False)
    context: Mapped[str] = mapped_column(Text, nullable=False)
    oracle_results: Mapped[str] = mapped_column(Text, nullable=False)
    retry_attempt: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    is_current: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)

    scene: Mapped["Scene"] = relationship("Scene", back_populates="interpretation_sets")
    interpretations: Mapped[List["Interpretation"]] = relationship(
        "Interpretation",
        back_populates="interpretation_set",
        cascade="all, delete-orphan",
        order_by="Interpretation.position",
    )

    @classmethod
    def create(
        cls,
        scene_id: str,
        context: str,
        oracle_results: str,
        retry_attempt: int = 0,
        is_current: bool = False,
    ) -> "InterpretationSet":
        return cls(
            id=generate_unique_id(),
            scene_id=scene_id,
            context=context,
            oracle_results=oracle_results,
            retry_attempt=retry_attempt,
            is_current=is_current,
        )


class Interpretation(Base, TimestampMixin):
    """A single interpretation of oracle results."""

    __tablename__ = "interpretations"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=generate_unique_id)
    set_id: Mapped[str] = mapped_column(ForeignKey("interpretation_sets.id"), nullable=False)
    title: Mapped[str] = mapped_column(String, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False)
    is_selected: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    position: Mapped[int] = mapped_column(Integer, default=0, nullable=False)

    interpretation_set: Mapped["InterpretationSet"] = relationship(
        "InterpretationSet", back_populates="interpretations"
    )
    events: Mapped[List["Event"]] = relationship("Event", back_populates="interpretation")

    @classmethod
    def create(
        cls,
        set_id: str,
        title: str,
        description: str,
        is_selected: bool = False,
        position: int = 0,
    ) -> "Interpretation":
        return cls(
            position=position,
            id=generate_unique_id(),
            set_id=set_id,
            title=title,
            description=description,
            is_selected=is_selected,
        )
