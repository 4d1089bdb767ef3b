"""Engine and sessions.

``DatabaseManager`` is a process-wide singleton holding the engine and a
``scoped_session`` registry, so every caller on a thread shares one session.
Services that are not handed a session call ``get_session()`` themselves.
"""

from __future__ import annotations

import logging
from typing import Optional

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from libris.models import Base

log = logging.getLogger(__name__)


class DatabaseManager:
    """The engine plus the thread-local session registry."""

    _instance: Optional[DatabaseManager] = None

    engine: Engine
    session: scoped_session

    def __init__(self, db_url: Optional[str] = None, engine: Optional[Engine] = None, **engine_kwargs):
        if engine is None:
            if db_url is None:
                raise ValueError("DatabaseManager needs a db_url or an engine")
            engine = create_engine(db_url, **engine_kwargs)
        self.engine = engine
        factory = sessionmaker(bind=engine, autoflush=False, expire_on_commit=False)
        self.session = scoped_session(factory)
        log.debug("database manager on %s", engine.url)

    @classmethod
    def get_instance(cls, db_url: Optional[str] = None, engine: Optional[Engine] = None) -> DatabaseManager:
        if cls._instance is None:
            cls._instance = cls(db_url=db_url, engine=engine)
        return cls._instance

    def create_tables(self) -> None:
        Base.metadata.create_all(self.engine)

    def get_session(self) -> Session:
        """The calling thread's session (created on first use)."""
        return self.session()

    def close_session(self) -> None:
        """Close the thread's session and forget it (``scoped_session.remove()``)."""
        self.session.remove()

    def dispose(self) -> None:
        self.engine.dispose()


class SessionContext:
    """``with SessionContext() as session:`` commits on success, rolls back on error."""

    def __init__(self, db: Optional[DatabaseManager] = None):
        self._db = db if db is not None else DatabaseManager.get_instance()
        self.session: Optional[Session] = None

    def __enter__(self) -> Session:
        self.session = self._db.get_session()
        return self.session

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.session.commit()
        else:
            log.debug("rolling back after %r", exc)
            self.session.rollback()
        self.session.close()
        self._db.close_session()


def init_db(db_url: Optional[str] = None) -> DatabaseManager:
    """Open (or reuse) the database and create missing tables."""
    if db_url is None and DatabaseManager._instance is None:
        from libris.config import get_database_url

        db_url = get_database_url()
    db = DatabaseManager.get_instance(db_url=db_url)
    db.create_tables()
    return db


def get_session() -> Session:
    """The current thread's session from the shared DatabaseManager."""
    return DatabaseManager.get_instance().get_session()


def close_session() -> None:
    DatabaseManager.get_instance().close_session()


def get_db_context() -> SessionContext:
    return SessionContext()
