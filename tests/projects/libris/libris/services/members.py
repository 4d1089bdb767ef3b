"""Members and their cards."""

from typing import List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from libris.errors import MemberError
from libris.models import Loan, Member
from libris.services.base import BaseManager


class MemberManager(BaseManager[Member, str]):
    def __init__(self, session: Optional[Session] = None):
        super().__init__(session=session)

    def register(self, card_number: str, name: str, email: Optional[str] = None) -> Member:
        """Register a member. Card numbers are unique; the database checks that."""
        if not name.strip():
            raise MemberError("A member needs a name")

        def _register(session: Session) -> Member:
            member = Member(card_number=card_number.strip(), name=name.strip(), email=email)
            session.add(member)
            return member

        return self._execute_db_operation("register", _register)

    def get(self, member_id: str) -> Optional[Member]:
        return self._execute_db_operation("get_member", lambda session: session.get(Member, member_id))

    def find_by_card(self, card_number: str) -> Member:
        session, _ = self._get_session()
        member = session.scalar(select(Member).where(Member.card_number == card_number))
        if member is None:
            raise MemberError(f"No member with card {card_number}")
        return member

    def open_loans(self, member_id: str) -> List[Loan]:
        """The member's loans not yet returned (walks ``member.loans``)."""
        member = self.get(member_id)
        if member is None:
            raise MemberError(f"No member {member_id}")
        return [loan for loan in member.loans if loan.is_open]

    def suspend(self, member_id: str, suspended: bool = True) -> Member:
        def _suspend(session: Session) -> Member:
            member = session.get(Member, member_id)
            if member is None:
                raise MemberError(f"No member {member_id}")
            member.suspended = suspended
            return member

        return self._execute_db_operation("suspend", _suspend)
