from libris.db.session import (
    DatabaseManager,
    SessionContext,
    close_session,
    get_db_context,
    get_session,
    init_db,
)

__all__ = [
    "DatabaseManager",
    "SessionContext",
    "close_session",
    "get_db_context",
    "get_session",
    "init_db",
]
