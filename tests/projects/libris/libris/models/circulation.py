"""Loans, holds and the notices sent about them."""

from datetime import date, datetime
from typing import Optional

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from libris.models.base import Base, Timestamped, new_id
from libris.models.catalog import Book
from libris.models.people import Member


class Loan(Base, Timestamped):
    __tablename__ = "loans"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    book_id: Mapped[str] = mapped_column(ForeignKey("books.id"), nullable=False)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), nullable=False)
    due_on: Mapped[date] = mapped_column(Date, nullable=False)
    returned_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    renewals: Mapped[int] = mapped_column(default=0, nullable=False)

    book: Mapped[Book] = relationship(back_populates="loans")
    member: Mapped[Member] = relationship(back_populates="loans")

    @property
    def is_open(self) -> bool:
        return self.returned_at is None

    def is_overdue(self, today: Optional[date] = None) -> bool:
        return self.is_open and self.due_on < (today or date.today())


class Hold(Base, Timestamped):
    """A member waiting for a book that is out."""

    __tablename__ = "holds"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    book_id: Mapped[str] = mapped_column(ForeignKey("books.id"), nullable=False)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), nullable=False)
    ready: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)

    book: Mapped[Book] = relationship(back_populates="holds")
    member: Mapped[Member] = relationship(back_populates="holds")


class Notice(Base, Timestamped):
    """A message sent to a member (due reminder, hold ready)."""

    __tablename__ = "notices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    sent: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)

    member: Mapped[Member] = relationship(back_populates="notices")
