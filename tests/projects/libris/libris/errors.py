"""Errors the services raise; the CLI prints them without a traceback."""


class LibrisError(Exception):
    """Base class for expected, user-facing errors."""


class BranchError(LibrisError):
    pass


class CatalogError(LibrisError):
    pass


class BookNotFound(CatalogError):
    pass


class MemberError(LibrisError):
    pass


class LoanError(LibrisError):
    pass


class HoldError(LibrisError):
    pass


class ConfigurationError(LibrisError):
    """Something the library has to set up first (a mail server, say)."""
