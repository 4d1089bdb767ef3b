"""Lending books out and taking them back."""

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from libris.config import DEFAULT_LOAN_DAYS, MAX_OPEN_LOANS
from libris.errors import BookNotFound, LoanError
from libris.models import Book, Loan, Member
from libris.services.base import BaseManager

if TYPE_CHECKING:
    from libris.services.catalog import CatalogManager
    from libris.services.members import MemberManager

MAX_RENEWALS = 2


class LoanManager(BaseManager[Loan, str]):
    def __init__(
        self,
        session: Optional[Session] = None,
        catalog_manager: Optional["CatalogManager"] = None,
        member_manager: Optional["MemberManager"] = None,
    ):
        super().__init__(session=session)
        self._catalog_manager = catalog_manager
        self._member_manager = member_manager

    @property
    def catalog_manager(self) -> "CatalogManager":
        return self._lazy_init_manager("_catalog_manager", "libris.services.catalog.CatalogManager")

    @property
    def member_manager(self) -> "MemberManager":
        return self._lazy_init_manager("_member_manager", "libris.services.members.MemberManager")

    def open_loan_for(self, book_id: str) -> Optional[Loan]:
        def _open(session: Session) -> Optional[Loan]:
            return session.scalar(select(Loan).where(Loan.book_id == book_id, Loan.returned_at.is_(None)))

        return self._execute_db_operation("open_loan_for", _open)

    def checkout(self, book_id: str, member_id: str, days: Optional[int] = None, today: Optional[date] = None) -> Loan:
        member = self.member_manager.get(member_id)
        if member is None:
            raise LoanError(f"No member {member_id}")
        if member.suspended:
            raise LoanError(f"{member.name}'s card is suspended")
        if self.catalog_manager.get_book(book_id) is None:
            raise BookNotFound(book_id)
        if self.open_loan_for(book_id) is not None:
            raise LoanError("That copy is already out")
        due_on = (today or date.today()) + timedelta(days=DEFAULT_LOAN_DAYS if days is None else days)

        def _checkout(session: Session) -> Loan:
            open_count = len(
                session.scalars(select(Loan).where(Loan.member_id == member_id, Loan.returned_at.is_(None))).all()
            )
            if open_count >= MAX_OPEN_LOANS:
                raise LoanError(f"{member.name} already has {open_count} books out")
            loan = Loan(book_id=book_id, member_id=member_id, due_on=due_on)
            session.add(loan)
            session.flush()
            return loan

        return self._execute_db_operation("checkout", _checkout)

    def return_book(self, book_id: str) -> Loan:
        def _return(session: Session) -> Loan:
            loan = session.scalar(select(Loan).where(Loan.book_id == book_id, Loan.returned_at.is_(None)))
            if loan is None:
                raise LoanError("That copy is not out")
            loan.returned_at = datetime.now()
            return loan

        return self._execute_db_operation("return_book", _return)

    def renew(self, loan_id: str, days: int = DEFAULT_LOAN_DAYS) -> Loan:
        def _renew(session: Session) -> Loan:
            loan = session.get(Loan, loan_id)
            if loan is None or not loan.is_open:
                raise LoanError("Only open loans can be renewed")
            if loan.renewals >= MAX_RENEWALS:
                raise LoanError("No renewals left")
            loan.due_on = loan.due_on + timedelta(days=days)
            loan.renewals += 1
            return loan

        return self._execute_db_operation("renew", _renew)

    def overdue(self, today: Optional[date] = None) -> List[Loan]:
        today = today or date.today()

        def _overdue(session: Session) -> List[Loan]:
            query = (
                select(Loan)
                .join(Book)
                .join(Member)
                .where(Loan.returned_at.is_(None), Loan.due_on < today)
                .order_by(Loan.due_on, Member.name)
            )
            return list(session.scalars(query))

        return self._execute_db_operation("overdue", _overdue)
