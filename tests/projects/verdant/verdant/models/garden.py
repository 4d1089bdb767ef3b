"""Greenhouses, beds and plants."""

from typing import List, Optional

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from verdant.models.base import Base, TimestampMixin


class Greenhouse(TimestampMixin, Base):
    __tablename__ = "greenhouses"

    name: Mapped[str] = mapped_column(String(80), unique=True)
    location: Mapped[Optional[str]] = mapped_column(String(120), nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)

    beds: Mapped[List["Bed"]] = relationship(
        back_populates="greenhouse", cascade="all, delete-orphan"
    )


class Bed(TimestampMixin, Base):
    __tablename__ = "beds"
    __table_args__ = (UniqueConstraint("greenhouse_id", "name"),)

    greenhouse_id: Mapped[str] = mapped_column(ForeignKey("greenhouses.id"))
    name: Mapped[str] = mapped_column(String(80))
    capacity: Mapped[int] = mapped_column(Integer, default=10)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)

    greenhouse: Mapped[Greenhouse] = relationship(back_populates="beds")
    plants: Mapped[List["Plant"]] = relationship(
        back_populates="bed", cascade="all, delete-orphan"
    )


class Plant(TimestampMixin, Base):
    __tablename__ = "plants"

    bed_id: Mapped[str] = mapped_column(ForeignKey("beds.id"))
    species: Mapped[str] = mapped_column(String(80))
    nickname: Mapped[Optional[str]] = mapped_column(String(80), nullable=True)
    water_every_days: Mapped[int] = mapped_column(Integer, default=3)

    bed: Mapped[Bed] = relationship(back_populates="plants")
    care_logs: Mapped[List["CareLog"]] = relationship(  # noqa: F821
        back_populates="plant", cascade="all, delete-orphan"
    )
