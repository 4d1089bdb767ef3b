import pytest

from libris.errors import ConfigurationError
from libris.integrations.mailer import Mailer
from libris.models import Notice
from libris.services.notices import NoticeManager


def test_notice_manager_needs_a_mail_server(db_session, monkeypatch):
    monkeypatch.delenv("LIBRIS_SMTP_URL", raising=False)
    with pytest.raises(ConfigurationError, match="LIBRIS_SMTP_URL"):
        NoticeManager(session=db_session)


def test_notice_manager_reads_mail_server_from_environment(db_session, monkeypatch):
    monkeypatch.setenv("LIBRIS_SMTP_URL", "smtp://desk:secret@mail.example.org")
    manager = NoticeManager(session=db_session)
    assert (manager.mailer.host, manager.mailer.port, manager.mailer.username) == ("mail.example.org", 587, "desk")


@pytest.mark.parametrize("url", ["http://mail.example.org", "smtp://"])
def test_mailer_rejects_bad_urls(url):
    with pytest.raises(ConfigurationError):
        Mailer(url)


class TestNotices:
    def test_due_reminders(self, notice_manager, loan, today):
        created = notice_manager.due_reminders(today=loan.due_on, within_days=0)
        assert [n.kind for n in created] == ["due"]
        assert "is due back on" in created[0].body

    def test_no_reminders_far_from_due_date(self, notice_manager, loan, today):
        assert notice_manager.due_reminders(today=today) == []

    def test_send_pending(self, notice_manager, fake_mailer, loan, db_session):
        notice_manager.due_reminders(today=loan.due_on)
        assert notice_manager.send_pending() == 1
        assert fake_mailer.sent[0][0] == "ada@example.org"
        assert db_session.query(Notice).filter(Notice.sent.is_(True)).count() == 1

    def test_members_without_email_are_skipped(self, notice_manager, fake_mailer, hold_manager, loan, second_reader):
        hold = hold_manager.place_hold(loan.book_id, second_reader.id)
        notice_manager.hold_ready(hold)
        assert notice_manager.send_pending() == 0
        assert fake_mailer.sent == []

    def test_notices_for(self, notice_manager, loan, reader):
        notice_manager.due_reminders(today=loan.due_on)
        assert [n.kind for n in notice_manager.notices_for(reader.card_number)] == ["due"]
