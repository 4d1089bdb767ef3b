"""Notices to members: due-date reminders and holds ready for pickup."""

from datetime import date, timedelta
from typing import TYPE_CHECKING, List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from libris.integrations.mailer import Mailer
from libris.models import Hold, Loan, Notice
from libris.services.base import BaseManager

if TYPE_CHECKING:
    from libris.services.members import MemberManager


class NoticeManager(BaseManager[Notice, str]):
    def __init__(
        self,
        mailer: Optional[Mailer] = None,
        member_manager: Optional["MemberManager"] = None,
        session: Optional[Session] = None,
    ):
        super().__init__(session=session)
        self.mailer = mailer or Mailer.from_env()
        self._member_manager = member_manager

    @property
    def member_manager(self) -> "MemberManager":
        return self._lazy_init_manager("_member_manager", "libris.services.members.MemberManager")

    def _record(self, session: Session, member_id: str, kind: str, body: str) -> Notice:
        notice = Notice(member_id=member_id, kind=kind, body=body)
        session.add(notice)
        return notice

    def send_pending(self) -> int:
        """Mail every notice not sent yet; members without an e-mail address are skipped."""

        def _send(session: Session) -> int:
            count = 0
            for notice in session.scalars(select(Notice).where(Notice.sent.is_(False)).order_by(Notice.created_at)):
                if not notice.member.email:
                    continue
                self.mailer.send(notice.member.email, f"Library notice: {notice.kind}", notice.body)
                notice.sent = True
                count += 1
            return count

        return self._execute_db_operation("send_pending", _send)

    def due_reminders(self, today: Optional[date] = None, within_days: int = 2) -> List[Notice]:
        today = today or date.today()
        horizon = today + timedelta(days=within_days)

        def _remind(session: Session) -> List[Notice]:
            loans = session.scalars(
                select(Loan).where(Loan.returned_at.is_(None), Loan.due_on >= today, Loan.due_on <= horizon)
            )
            notices = [
                self._record(session, loan.member_id, "due", f"'{loan.book.title}' is due back on {loan.due_on:%d %b %Y}.")
                for loan in loans
            ]
            session.flush()
            return notices

        return self._execute_db_operation("due_reminders", _remind)

    def hold_ready(self, hold: Hold) -> Notice:
        def _ready(session: Session) -> Notice:
            notice = self._record(
                session, hold.member_id, "hold", f"'{hold.book.title}' is waiting for you at the desk."
            )
            session.flush()
            return notice

        return self._execute_db_operation("hold_ready", _ready)

    def notices_for(self, card_number: str) -> List[Notice]:
        member = self.member_manager.find_by_card(card_number)
        return self._execute_db_operation(
            "notices_for",
            lambda session: list(session.scalars(select(Notice).where(Notice.member_id == member.id).order_by(Notice.created_at))),
        )
