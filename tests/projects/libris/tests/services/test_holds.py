import pytest

from libris.errors import HoldError
from libris.models import Hold
from libris.services.holds import HoldManager
from libris.services.loans import LoanManager


def test_hold_manager_builds_its_services_on_first_use(hold_manager, db_session):
    assert hold_manager._loan_manager is None

    loans = hold_manager.loan_manager

    assert isinstance(loans, LoanManager)
    assert hold_manager._loan_manager is loans
    assert loans._session is db_session
    assert loans.catalog_manager._session is db_session


class TestHolds:
    def test_place_hold(self, hold_manager, loan, second_reader, db_session):
        hold = hold_manager.place_hold(loan.book_id, second_reader.id)
        assert db_session.get(Hold, hold.id).ready is False
        assert [h.id for h in hold_manager.queue(loan.book_id)] == [hold.id]

    def test_hold_on_shelf_copy(self, hold_manager, book, second_reader):
        with pytest.raises(HoldError, match="on the shelf"):
            hold_manager.place_hold(book.id, second_reader.id)

    def test_hold_own_loan(self, hold_manager, loan, reader):
        with pytest.raises(HoldError, match="already have"):
            hold_manager.place_hold(loan.book_id, reader.id)

    def test_check_in_readies_first_hold(self, hold_manager, loan, second_reader, create_test_member, db_session):
        first = hold_manager.place_hold(loan.book_id, second_reader.id)
        third = create_test_member(db_session, "C0003", "Cleo")
        hold_manager.place_hold(loan.book_id, third.id)

        ready = hold_manager.check_in(loan.book_id)

        assert ready.id == first.id
        assert [h.member_id for h in hold_manager.queue(loan.book_id)] == [third.id]

    def test_check_in_without_holds(self, hold_manager, loan):
        assert hold_manager.check_in(loan.book_id) is None

    def test_cancel(self, hold_manager, loan, second_reader):
        hold = hold_manager.place_hold(loan.book_id, second_reader.id)
        hold_manager.cancel(hold.id)
        assert hold_manager.queue(loan.book_id) == []


def test_hold_manager_with_session_set_later(db_session, loan, second_reader):
    holds = HoldManager()
    holds._session = db_session  # as the desk's old batch script did

    hold = holds.place_hold(loan.book_id, second_reader.id)

    assert db_session.get(Hold, hold.id).member_id == second_reader.id


def test_holds_in_a_context(session_context, loan, second_reader):
    with session_context as session:
        hold = HoldManager(session=session).place_hold(loan.book_id, second_reader.id)
    with session_context as session:
        assert session.get(Hold, hold.id) is not None
