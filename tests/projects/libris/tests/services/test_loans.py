from datetime import timedelta

import pytest

from libris.config import MAX_OPEN_LOANS
from libris.errors import BookNotFound, LoanError
from libris.models import Loan


class TestCheckout:
    def test_checkout(self, loan_manager, book, reader, today, db_session):
        loan = loan_manager.checkout(book.id, reader.id, today=today)
        assert loan.due_on == today + timedelta(days=21)
        assert db_session.get(Loan, loan.id).member_id == reader.id

    def test_copy_already_out(self, loan_manager, loan, second_reader):
        with pytest.raises(LoanError, match="already out"):
            loan_manager.checkout(loan.book_id, second_reader.id)

    def test_unknown_book(self, loan_manager, reader):
        with pytest.raises(BookNotFound):
            loan_manager.checkout("nope", reader.id)

    def test_suspended_member(self, loan_manager, member_manager, book, reader):
        member_manager.suspend(reader.id)
        with pytest.raises(LoanError, match="suspended"):
            loan_manager.checkout(book.id, reader.id)

    def test_loan_limit(self, loan_manager, main_branch, create_test_book, reader, db_session):
        books = [create_test_book(db_session, f"Book {i}", barcode=f"L{i}") for i in range(MAX_OPEN_LOANS + 1)]
        for b in books[:MAX_OPEN_LOANS]:
            loan_manager.checkout(b.id, reader.id)
        with pytest.raises(LoanError, match="already has"):
            loan_manager.checkout(books[-1].id, reader.id)

    @pytest.mark.due_in(7)
    def test_factory_uses_marker(self, create_test_loan, book, reader, today):
        assert create_test_loan(book, reader).due_on == today + timedelta(days=7)

    def test_factory_default_period(self, create_test_loan, book, reader, today):
        assert create_test_loan(book, reader).due_on == today + timedelta(days=21)


class TestReturnsAndRenewals:
    def test_return(self, loan_manager, loan, db_session):
        returned = loan_manager.return_book(loan.book_id)
        assert returned.id == loan.id
        assert db_session.get(Loan, loan.id).returned_at is not None
        assert loan_manager.open_loan_for(loan.book_id) is None

    def test_return_copy_not_out(self, loan_manager, book):
        with pytest.raises(LoanError, match="not out"):
            loan_manager.return_book(book.id)

    def test_renew(self, loan_manager, loan):
        due = loan.due_on
        renewed = loan_manager.renew(loan.id, days=14)
        assert renewed.due_on == due + timedelta(days=14)
        assert renewed.renewals == 1

    def test_renewals_run_out(self, loan_manager, loan):
        loan_manager.renew(loan.id)
        loan_manager.renew(loan.id)
        with pytest.raises(LoanError, match="No renewals"):
            loan_manager.renew(loan.id)


def test_overdue(loan_manager, overdue_loan, today):
    assert [l.id for l in loan_manager.overdue(today=today)] == [overdue_loan.id]
    assert overdue_loan.is_overdue(today)


def test_nothing_overdue_yet(loan_manager, loan, today):
    assert loan_manager.overdue(today=today) == []
    assert loan_manager.overdue(today=today + timedelta(days=30)) == [loan]


def test_checkout_rolled_back_in_savepoint(db_session, loan_manager, book, reader):
    savepoint = db_session.begin_nested()
    db_session.add(Loan(book_id=book.id, member_id=reader.id, due_on=book.created_at.date()))
    db_session.flush()
    savepoint.rollback()

    assert loan_manager.open_loan_for(book.id) is None
