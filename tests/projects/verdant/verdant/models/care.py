"""Care log entries."""

from typing import Optional

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from verdant.models.base import Base, TimestampMixin


class CareLog(TimestampMixin, Base):
    __tablename__ = "care_logs"

    plant_id: Mapped[str] = mapped_column(ForeignKey("plants.id"))
    kind: Mapped[str] = mapped_column(String(20))  # water, feed, prune, forecast
    amount_ml: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    note: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)

    plant: Mapped["Plant"] = relationship(back_populates="care_logs")  # noqa: F821
