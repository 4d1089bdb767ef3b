"""Holds: members queueing for a copy that is out."""

from typing import TYPE_CHECKING, List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from libris.errors import HoldError
from libris.models import Hold
from libris.services.base import BaseManager

if TYPE_CHECKING:
    from libris.services.loans import LoanManager


class HoldManager(BaseManager[Hold, str]):
    def __init__(self, loan_manager: Optional["LoanManager"] = None, session: Optional[Session] = None):
        super().__init__(session=session)
        self._loan_manager = loan_manager

    @property
    def loan_manager(self) -> "LoanManager":
        return self._lazy_init_manager("_loan_manager", "libris.services.loans.LoanManager")

    def place_hold(self, book_id: str, member_id: str) -> Hold:
        loan = self.loan_manager.open_loan_for(book_id)
        if loan is None:
            raise HoldError("That copy is on the shelf; borrow it instead")
        if loan.member_id == member_id:
            raise HoldError("You already have that copy")

        def _place(session: Session) -> Hold:
            hold = Hold(book_id=book_id, member_id=member_id)
            session.add(hold)
            session.flush()
            return hold

        return self._execute_db_operation("place_hold", _place)

    def queue(self, book_id: str) -> List[Hold]:
        def _queue(session: Session) -> List[Hold]:
            query = (
                select(Hold)
                .where(Hold.book_id == book_id, Hold.cancelled.is_(False), Hold.ready.is_(False))
                .order_by(Hold.created_at)
            )
            return list(session.scalars(query))

        return self._execute_db_operation("queue", _queue)

    def check_in(self, book_id: str) -> Optional[Hold]:
        """Take a copy back; the first member waiting for it gets it held at the desk."""
        self.loan_manager.return_book(book_id)
        waiting = self.queue(book_id)
        if not waiting:
            return None

        def _ready(session: Session) -> Hold:
            hold = session.get(Hold, waiting[0].id)
            hold.ready = True
            return hold

        return self._execute_db_operation("check_in", _ready)

    def cancel(self, hold_id: str) -> Hold:
        def _cancel(session: Session) -> Hold:
            hold = session.get(Hold, hold_id)
            if hold is None:
                raise HoldError(f"No hold {hold_id}")
            hold.cancelled = True
            return hold

        return self._execute_db_operation("cancel", _cancel)
