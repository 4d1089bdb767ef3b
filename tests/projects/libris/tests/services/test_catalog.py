import pytest
from sqlalchemy.exc import IntegrityError

from libris.errors import BookNotFound, BranchError, CatalogError
from libris.models import Book
from libris.services.catalog import normalize_isbn


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("978-0-441-47812-5", "9780441478125"),
        ("0 441 47812 3", "0441478123"),
        ("155404295x", "155404295X"),
    ],
)
def test_normalize_isbn(raw, expected):
    assert normalize_isbn(raw) == expected


@pytest.mark.parametrize("raw", ["12345", "not an isbn"])
def test_normalize_isbn_rejects(raw):
    with pytest.raises(CatalogError):
        normalize_isbn(raw)


class TestCatalog:
    def test_add_book_to_current_branch(self, catalog_manager, main_branch, db_session):
        book = catalog_manager.add_book("B1", "9780441478125", "The Left Hand of Darkness")
        assert db_session.get(Book, book.id).branch_id == main_branch.id

    def test_add_book_needs_a_branch(self, catalog_manager):
        with pytest.raises(BranchError):
            catalog_manager.add_book("B1", "9780441478125", "Orphan")

    def test_same_barcode_twice_in_a_branch(self, catalog_manager, book, db_session):
        with pytest.raises(IntegrityError):
            catalog_manager.add_book(book.barcode, "9780261102385", "The Lord of the Rings")

        # the failed insert was rolled back; the catalogue is as it was
        assert [b.title for b in catalog_manager.search("")] == [book.title]
        assert db_session.query(Book).count() == 1

    def test_search(self, catalog_manager, main_branch, create_test_book, db_session):
        create_test_book(db_session, "A Wizard of Earthsea", isbn="9780547773742")
        create_test_book(db_session, "Emma", author="Jane Austen", isbn="9780141439587")

        assert [b.title for b in catalog_manager.search("le guin")] == ["A Wizard of Earthsea"]
        assert [b.title for b in catalog_manager.search("austen")] == ["Emma"]

    def test_search_skips_withdrawn(self, catalog_manager, book):
        catalog_manager.withdraw(book.id)
        assert catalog_manager.search("darkness") == []
        assert [b.id for b in catalog_manager.search("darkness", include_withdrawn=True)] == [book.id]


class TestShelf:
    def test_find_on_shelf(self, catalog_manager, book):
        assert catalog_manager.find_on_shelf("978-0-441-47812-5").id == book.id

    def test_find_on_shelf_after_cataloguing(self, catalog_manager, main_branch):
        added = catalog_manager.add_book("B77", "9780547773742", "A Wizard of Earthsea")

        found = catalog_manager.find_on_shelf("9780547773742")

        assert found.id == added.id

    def test_find_on_shelf_other_branch(self, catalog_manager, main_branch, create_test_branch, create_test_book, db_session):
        west = create_test_branch(db_session, "WEST", "West End", current=False)
        create_test_book(db_session, isbn="9780547773742", title="A Wizard of Earthsea", branch=west)
        with pytest.raises(BookNotFound):
            catalog_manager.find_on_shelf("9780547773742")


def test_catalog_builds_branch_manager_lazily(db_session):
    from libris.services.catalog import CatalogManager

    catalog = CatalogManager(session=db_session)
    assert catalog._branch_manager is None
    assert catalog.branch_manager._session is db_session
