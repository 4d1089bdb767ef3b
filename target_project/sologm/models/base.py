"""Declarative base and shared column helpers for sologm models."""

import uuid
from datetime import datetime

from sqlalchemy import DateTime
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def generate_unique_id() -> str:
    """Generate a unique string identifier for a model row."""
    return str(uuid.uuid4())


def _now() -> datetime:
    return datetime.now()


class Base(DeclarativeBase):
    """Base class for all sologm models."""


class TimestampMixin:
    """Adds ``created_at`` and ``modified_at`` columns."""

    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now, nullable=False)
    modified_at: Mapped[datetime] = mapped_column(
        DateTime, default=_now, onupdate=_now, nullable=False
    )
