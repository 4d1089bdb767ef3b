from sqlalchemy import select

from libris import __version__
from libris.models import Book, Branch, Hold, Loan, Member


def test_version(invoke):
    result = invoke("--version")
    assert result.exit_code == 0
    assert __version__ in result.output


def test_books_list_empty(invoke):
    result = invoke("books", "list")
    assert result.exit_code == 0, result.output
    assert "No books catalogued yet." in result.output


def test_books_list(invoke, create_test_shelf, db_session):
    create_test_shelf(db_session)
    result = invoke("books", "list")
    assert result.output.splitlines() == ["EAST001  Dune  (Various)", "EAST002  Emma  (Various)"]


class TestBranchCommands:
    def test_open_and_list(self, invoke, db_session):
        assert invoke("branch", "open", "north", "North Point", "--use").exit_code == 0
        result = invoke("branch", "list")
        assert "* NORTH  North Point" in result.output
        assert db_session.scalar(select(Branch.code)) == "NORTH"

    def test_use_unknown_branch(self, invoke):
        result = invoke("branch", "use", "nowhere")
        assert result.exit_code == 1
        assert "No branch nowhere" in result.output


class TestCatalogCommands:
    def test_add_to_current_branch(self, invoke, create_test_shelf, db_session):
        branch = create_test_shelf(db_session, titles=())
        result = invoke("books", "add", "EAST900", "9780547773742", "A Wizard of Earthsea", "--author", "Le Guin")
        assert result.exit_code == 0, result.output
        book = db_session.scalars(select(Book).where(Book.barcode == "EAST900")).one()
        assert book.branch_id == branch.id

    def test_add_without_branch(self, invoke):
        result = invoke("books", "add", "X1", "9780547773742", "Homeless")
        assert result.exit_code == 1
        assert "No current branch" in result.output

    def test_search(self, invoke, create_test_shelf, db_session):
        create_test_shelf(db_session, code="WEST")
        result = invoke("books", "search", "emm")
        assert result.output.strip() == "WEST002  Emma  [WEST]"


class TestLoanCommands:
    def test_lend_and_take_back(self, invoke, create_test_shelf, desk_member, db_session):
        create_test_shelf(db_session)

        out = invoke("loans", "out", "EAST001", "C0042")
        assert out.exit_code == 0, out.output
        assert "Dune lent to Dee Desk" in out.output

        back = invoke("loans", "in", "EAST001")
        assert back.exit_code == 0, back.output
        assert db_session.scalars(select(Loan)).one().returned_at is not None

    def test_take_back_with_hold(self, invoke, create_test_shelf, desk_member, db_session):
        create_test_shelf(db_session)
        invoke("loans", "out", "EAST001", "C0042")
        member = Member(card_number="C0043", name="Hal Holder")
        db_session.add(member)
        db_session.flush()
        book = db_session.scalars(select(Book).where(Book.barcode == "EAST001")).one()
        db_session.add(Hold(book_id=book.id, member_id=member.id))
        db_session.commit()

        result = invoke("loans", "in", "EAST001")

        assert "Keep it at the desk for Hal Holder" in result.output

    def test_nothing_overdue(self, invoke):
        result = invoke("loans", "overdue")
        assert result.output.strip() == "Nothing overdue."

    def test_add_member(self, invoke, session_context):
        result = invoke("members", "add", "C0500", "Mo Member", "--email", "mo@example.org")
        assert result.exit_code == 0
        with session_context as session:
            assert session.scalars(select(Member.name)).all() == ["Mo Member"]
