"""Database access for sologm."""

from sologm.database.session import (
    DatabaseManager,
    SessionContext,
    get_db_context,
    get_session,
    initialize_database,
)

__all__ = [
    "DatabaseManager",
    "SessionContext",
    "get_db_context",
    "get_session",
    "initialize_database",
]
