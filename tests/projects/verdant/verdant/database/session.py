"""Session handling for verdant.

One ``DatabaseManager`` per process holds the engine and a ``scoped_session``
registry; code on the same thread calling ``get_session()`` shares a session.
"""

import logging
import os
from pathlib import Path
from typing import Any, Optional

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from verdant.models.base import Base

log = logging.getLogger(__name__)


def default_database_url() -> str:
    """``VERDANT_DATABASE_URL`` or a SQLite file under ``VERDANT_HOME`` (default ``~/.verdant``)."""
    url = os.environ.get("VERDANT_DATABASE_URL")
    if url:
        return url
    home = Path(os.environ.get("VERDANT_HOME", Path.home() / ".verdant"))
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'verdant.db'}"


class DatabaseManager:
    """Process-wide engine + scoped_session registry."""

    _instance: Optional["DatabaseManager"] = None

    def __init__(self, db_url: Optional[str] = None, engine: Optional[Engine] = None) -> None:
        if engine is None:
            engine = create_engine(db_url or default_database_url())
        self.engine = engine
        factory = sessionmaker(
            bind=self.engine, autoflush=False, expire_on_commit=False
        )
        # thread-local: everyone on this thread gets the same Session
        self.session = scoped_session(factory)

    @classmethod
    def get_instance(
        cls, db_url: Optional[str] = None, engine: Optional[Engine] = None
    ) -> "DatabaseManager":
        if cls._instance is None:
            cls._instance = cls(db_url=db_url, engine=engine)
        return cls._instance

    def create_tables(self) -> None:
        import verdant.models  # noqa: F401

        Base.metadata.create_all(self.engine)

    def get_session(self) -> Session:
        """The current thread's session (from the scoped_session registry)."""
        return self.session()

    def close_session(self) -> None:
        """Drop the current thread's session."""
        self.session.remove()


class SessionContext:
    """``with SessionContext() as session:`` commits on success, rolls back on error."""

    def __init__(self, db: Optional[DatabaseManager] = None) -> None:
        self._db = db or DatabaseManager.get_instance()
        self.session: Optional[Session] = None

    def __enter__(self) -> Session:
        self.session = self._db.get_session()
        return self.session

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.session.commit()
        else:
            log.debug("rolling back after %s", exc_type.__name__)
            self.session.rollback()
        self.session.close()
        self._db.close_session()


def init_db(db_url: Optional[str] = None) -> DatabaseManager:
    db = DatabaseManager.get_instance(db_url=db_url)
    db.create_tables()
    return db


def get_session() -> Session:
    """Shortcut for ``DatabaseManager.get_instance().get_session()``."""
    return DatabaseManager.get_instance().get_session()


def db_context() -> SessionContext:
    return SessionContext()
