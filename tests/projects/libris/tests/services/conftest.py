"""Services, factories and ready-made objects for the service tests."""

import logging
from datetime import date, timedelta

import pytest

from libris.models import Loan
from libris.services.branches import BranchManager
from libris.services.catalog import CatalogManager
from libris.services.holds import HoldManager
from libris.services.loans import LoanManager
from libris.services.members import MemberManager
from libris.services.notices import NoticeManager

log = logging.getLogger(__name__)


# --- services ------------------------------------------------------------------------


@pytest.fixture
def branch_manager(db_session):
    return BranchManager(session=db_session)


@pytest.fixture
def catalog_manager(branch_manager, db_session):
    return CatalogManager(branch_manager=branch_manager, session=db_session)


@pytest.fixture
def member_manager():
    # No session: MemberManager falls back to the thread's scoped session,
    # which is the one db_session hands out anyway.
    return MemberManager()


@pytest.fixture
def loan_manager(db_session, catalog_manager, member_manager):
    return LoanManager(db_session, catalog_manager=catalog_manager, member_manager=member_manager)


@pytest.fixture
def hold_manager(db_session):
    """HoldManager on its own; it builds its LoanManager (and the rest) when first needed."""
    return HoldManager(session=db_session)


@pytest.fixture
def notice_manager(fake_mailer, member_manager, db_session):
    return NoticeManager(mailer=fake_mailer, member_manager=member_manager, session=db_session)


# --- factories -----------------------------------------------------------------------


@pytest.fixture
def create_test_branch(branch_manager):
    def _create_branch(session, code="MAIN", name="Main Library", current=True):
        branch = branch_manager.open_branch(code, name, make_current=current)
        session.refresh(branch)
        return branch

    return _create_branch


@pytest.fixture
def create_test_book(catalog_manager):
    counter = {"n": 0}

    def _create_book(session, title="The Left Hand of Darkness", author="Ursula K. Le Guin",
                     isbn="978-0-441-47812-5", barcode=None, branch=None):
        counter["n"] += 1
        book = catalog_manager.add_book(
            barcode or f"B{counter['n']:05d}",
            isbn,
            title,
            author=author,
            branch_id=branch.id if branch is not None else None,
        )
        session.refresh(book, attribute_names=["branch"])
        return book

    return _create_book


@pytest.fixture
def create_test_member(member_manager):
    def _create_member(session, card_number="C0001", name="Ada Reader", email="ada@example.org"):
        member = member_manager.register(card_number, name, email=email)
        session.refresh(member)
        return member

    return _create_member


@pytest.fixture
def create_test_loan(request, loan_manager, today):
    """Lend books; ``@pytest.mark.due_in(n)`` sets the loan period (default 21 days)."""
    marker = request.node.get_closest_marker("due_in")
    days = marker.args[0] if marker else None

    def _create_loan(book, member):
        return loan_manager.checkout(book.id, member.id, days=days, today=today)

    return _create_loan


# --- objects -------------------------------------------------------------------------


@pytest.fixture
def main_branch(db_session, create_test_branch):
    """The current branch, MAIN."""
    branch = create_test_branch(db_session, "MAIN", "Main Library")
    try:
        # Old version returned the branch straight from BranchManager and tests
        # got "detached instance" on branch.books; loading it here fixed that.
        db_session.refresh(branch, attribute_names=["books"])
    except Exception as exc:
        log.warning("could not load books of %s: %s", branch.code, exc)
    return branch


@pytest.fixture
def reader(db_session, create_test_member):
    member = create_test_member(db_session)
    try:
        db_session.refresh(member, attribute_names=["loans", "holds"])
    except Exception as exc:  # pragma: no cover
        log.warning("could not refresh member %s: %s", member.card_number, exc)
    return member


@pytest.fixture
def second_reader(db_session, create_test_member):
    return create_test_member(db_session, "C0002", "Bo Borrower", email=None)


@pytest.fixture
def book(db_session, main_branch, create_test_book):
    book = create_test_book(db_session)
    try:
        db_session.refresh(main_branch, attribute_names=["books"])
    except Exception as exc:
        log.warning("could not refresh branch books: %s", exc)
    return book


@pytest.fixture
def loan(db_session, book, reader, loan_manager, today):
    loan = loan_manager.checkout(book.id, reader.id, today=today)
    try:
        db_session.refresh(loan, attribute_names=["book", "member"])
        db_session.refresh(reader, attribute_names=["loans"])  # so reader.loans shows it
    except Exception as exc:
        log.warning("could not refresh loan: %s", exc)
    return loan


# The first overdue_loan added the row by hand, which skipped the checks in
# LoanManager.checkout; it is kept until the old tests that relied on it go.
@pytest.fixture
def overdue_loan(db_session, book, reader, today):
    loan = Loan(book_id=book.id, member_id=reader.id, due_on=today - timedelta(days=10))
    db_session.add(loan)
    db_session.commit()
    return loan


@pytest.fixture
def overdue_loan(db_session, book, reader, loan_manager, today):  # noqa: F811
    """A loan of ``book`` to ``reader`` that was due three days before ``today``."""
    loan = loan_manager.checkout(book.id, reader.id, days=-3, today=today)
    try:
        db_session.refresh(loan, attribute_names=["book", "member"])
    except Exception as exc:
        log.warning("could not refresh overdue loan: %s", exc)
    return loan
