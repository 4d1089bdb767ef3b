"""All libris tables; importing this module registers them on ``Base.metadata``."""

from libris.models.base import Base
from libris.models.catalog import Book, Branch
from libris.models.circulation import Hold, Loan, Notice
from libris.models.people import Member

__all__ = ["Base", "Book", "Branch", "Hold", "Loan", "Member", "Notice"]
