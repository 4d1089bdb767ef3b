"""Branches and the books on their shelves."""

from typing import TYPE_CHECKING, List, Optional

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from libris.models.base import Base, Timestamped, new_id

if TYPE_CHECKING:
    from libris.models.circulation import Hold, Loan


class Branch(Base, Timestamped):
    """A library branch. Exactly one is the desk's current branch."""

    __tablename__ = "branches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(12), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    is_current: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)

    books: Mapped[List["Book"]] = relationship(
        back_populates="branch", cascade="all, delete-orphan", order_by="Book.title"
    )

    def __repr__(self) -> str:
        return f"<Branch {self.code}>"


class Book(Base, Timestamped):
    """One physical copy, identified by its barcode; several copies may share an ISBN."""

    __tablename__ = "books"
    __table_args__ = (UniqueConstraint("branch_id", "barcode", name="uq_books_branch_barcode"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    branch_id: Mapped[str] = mapped_column(ForeignKey("branches.id"), nullable=False)
    barcode: Mapped[str] = mapped_column(String(20), nullable=False)
    isbn: Mapped[str] = mapped_column(String(17), nullable=False, index=True)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    author: Mapped[Optional[str]] = mapped_column(String(120))
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)

    branch: Mapped[Branch] = relationship(back_populates="books")
    loans: Mapped[List["Loan"]] = relationship(back_populates="book", cascade="all, delete-orphan")
    holds: Mapped[List["Hold"]] = relationship(back_populates="book", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"<Book {self.barcode} {self.title!r}>"
