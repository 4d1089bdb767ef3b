from verdant.database.session import (
    DatabaseManager,
    SessionContext,
    db_context,
    get_session,
    init_db,
)

__all__ = ["DatabaseManager", "SessionContext", "db_context", "get_session", "init_db"]
