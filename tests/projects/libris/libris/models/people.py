"""Library members."""

from typing import TYPE_CHECKING, List, Optional

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from libris.models.base import Base, Timestamped, new_id

if TYPE_CHECKING:
    from libris.models.circulation import Hold, Loan, Notice


class Member(Base, Timestamped):
    __tablename__ = "members"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    card_number: Mapped[str] = mapped_column(String(16), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    email: Mapped[Optional[str]] = mapped_column(String(200))
    suspended: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)

    loans: Mapped[List["Loan"]] = relationship(back_populates="member", order_by="Loan.due_on")
    holds: Mapped[List["Hold"]] = relationship(back_populates="member")
    notices: Mapped[List["Notice"]] = relationship(back_populates="member")

    def __repr__(self) -> str:
        return f"<Member {self.card_number}>"
