"""The catalogue: which copies a branch holds."""

from typing import TYPE_CHECKING, List, Optional

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from libris.errors import BookNotFound, CatalogError
from libris.models import Book
from libris.services.base import BaseManager

if TYPE_CHECKING:
    from libris.services.branches import BranchManager


def normalize_isbn(isbn: str) -> str:
    digits = "".join(ch for ch in isbn if ch.isdigit() or ch in "Xx").upper()
    if len(digits) not in (10, 13):
        raise CatalogError(f"Not an ISBN: {isbn!r}")
    return digits


class CatalogManager(BaseManager[Book, str]):
    def __init__(self, branch_manager: Optional["BranchManager"] = None, session: Optional[Session] = None):
        super().__init__(session=session)
        self._branch_manager = branch_manager

    @property
    def branch_manager(self) -> "BranchManager":
        return self._lazy_init_manager("_branch_manager", "libris.services.branches.BranchManager")

    def add_book(
        self,
        barcode: str,
        isbn: str,
        title: str,
        author: Optional[str] = None,
        branch_id: Optional[str] = None,
    ) -> Book:
        """Catalogue a copy at a branch (the current branch by default)."""
        isbn = normalize_isbn(isbn)
        if branch_id is None:
            branch_id = self.branch_manager.current_branch().id

        def _add(session: Session) -> Book:
            book = Book(branch_id=branch_id, barcode=barcode, isbn=isbn, title=title, author=author)
            session.add(book)
            session.flush()
            return book

        return self._execute_db_operation("add_book", _add)

    def get_book(self, book_id: str) -> Optional[Book]:
        return self._execute_db_operation("get_book", lambda session: session.get(Book, book_id))

    def find_on_shelf(self, isbn: str) -> Book:
        """A copy of ``isbn`` held by the current branch (walks ``branch.books``)."""
        isbn = normalize_isbn(isbn)
        branch = self.branch_manager.current_branch()
        for book in branch.books:
            if book.isbn == isbn and not book.withdrawn:
                return book
        raise BookNotFound(f"{branch.code} holds no copy of {isbn}")

    def search(self, text: str, include_withdrawn: bool = False) -> List[Book]:
        """Books whose title or author contains ``text``, across all branches."""
        session, should_close = self._get_session()
        pattern = f"%{text.strip()}%"
        query = select(Book).where(or_(Book.title.ilike(pattern), Book.author.ilike(pattern)))
        if not include_withdrawn:
            query = query.where(Book.withdrawn.is_(False))
        books = list(session.scalars(query.order_by(Book.title, Book.barcode)))
        if should_close:
            session.close()
        return books

    def withdraw(self, book_id: str) -> Book:
        def _withdraw(session: Session) -> Book:
            book = session.get(Book, book_id)
            if book is None:
                raise BookNotFound(book_id)
            book.withdrawn = True
            return book

        return self._execute_db_operation("withdraw", _withdraw)
