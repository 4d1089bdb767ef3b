import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from libris.errors import MemberError
from libris.models import Member


class TestMemberManager:
    def test_register(self, member_manager, db_session):
        member = member_manager.register(" C0100 ", "Cy Reader")
        assert db_session.get(Member, member.id).card_number == "C0100"

    def test_register_needs_a_name(self, member_manager):
        with pytest.raises(MemberError):
            member_manager.register("C0100", " ")

    def test_card_numbers_are_unique(self, member_manager, reader, db_session):
        with pytest.raises(IntegrityError):
            member_manager.register(reader.card_number, "Ada's twin")

        # the desk carries on with the same session
        assert member_manager.find_by_card(reader.card_number).name == "Ada Reader"
        assert db_session.scalar(select(func.count(Member.id))) == 1

    def test_find_by_card_unknown(self, member_manager):
        with pytest.raises(MemberError, match="No member"):
            member_manager.find_by_card("C9999")

    def test_suspend(self, member_manager, reader, db_session):
        member_manager.suspend(reader.id)
        assert db_session.get(Member, reader.id).suspended is True


class TestMemberLoans:
    def test_open_loans_from_fixture(self, member_manager, loan, reader):
        assert [l.id for l in member_manager.open_loans(reader.id)] == [loan.id]

    def test_open_loans_after_checkout(self, member_manager, loan_manager, reader, book, today):
        new_loan = loan_manager.checkout(book.id, reader.id, today=today)

        assert [l.id for l in member_manager.open_loans(reader.id)] == [new_loan.id]


def test_duplicate_card_rejected_by_database(db_session, reader):
    db_session.add(Member(card_number=reader.card_number, name="Imposter"))
    with pytest.raises(IntegrityError):
        db_session.commit()
    db_session.rollback()

    names = [m.name for m in db_session.scalars(select(Member))]
    assert names == ["Ada Reader"]


def test_duplicate_card_inside_savepoint(db_session, reader):
    with pytest.raises(IntegrityError):
        with db_session.begin_nested():
            db_session.add(Member(card_number=reader.card_number, name="Copycat"))

    # only the savepoint was lost
    db_session.add(Member(card_number="C0003", name="Cleo"))
    db_session.commit()
    assert db_session.scalar(select(func.count(Member.id))) == 2
