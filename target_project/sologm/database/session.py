"""Database session management for sologm.

The application talks to the database through a single ``DatabaseManager``.
It owns the engine and a thread-local ``scoped_session`` registry, so any code
that calls ``get_session()`` on the same thread gets the same ``Session``.

Typical use from the CLI::

    with get_db_context() as session:
        game_manager = GameManager(session=session)
        ...
"""

import logging
from typing import Any, Optional, Type

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from sologm.models.base import Base

logger = logging.getLogger(__name__)


class DatabaseManager:
    """Owns the engine and the ``scoped_session`` registry.

    A process normally has a single instance, reached through
    ``DatabaseManager.get_instance()``; tests swap ``_instance`` to point the
    application at an in-memory database.
    """

    _instance: Optional["DatabaseManager"] = None

    engine: Engine
    session: scoped_session

    @classmethod
    def get_instance(
        cls, db_url: Optional[str] = None, engine: Optional[Engine] = None
    ) -> "DatabaseManager":
        """Return the process-wide instance, creating it on first use.

        Args:
            db_url: Database URL used when the instance is first created.
            engine: A ready engine, used instead of ``db_url``.

        Returns:
            The shared DatabaseManager.
        """
        if cls._instance is None:
            logger.debug("Creating DatabaseManager instance")
            cls._instance = cls(db_url=db_url, engine=engine)
        return cls._instance

    def __init__(
        self,
        db_url: Optional[str] = None,
        engine: Optional[Engine] = None,
        **engine_kwargs: Any,
    ) -> None:
        """Create the engine (unless one is given) and the session registry.

        Args:
            db_url: SQLAlchemy URL, e.g. ``sqlite:///~/.sologm/sologm.db``.
            engine: Pre-configured engine (tests pass an in-memory one).
            **engine_kwargs: Extra arguments for ``create_engine``.
        """
        if engine is not None:
            self.engine = engine
        elif db_url is not None:
            self.engine = create_engine(db_url, **engine_kwargs)
        else:
            raise ValueError("Either db_url or engine must be provided")

        logger.debug("Initializing DatabaseManager with engine %s", self.engine.url)

        # expire_on_commit=False keeps objects usable after the CLI's context
        # has committed and closed the session (we print them afterwards).
        session_factory = sessionmaker(
            bind=self.engine,
            autocommit=False,
            autoflush=False,
            expire_on_commit=False,
        )
        # Thread-local registry: get_session() on one thread always returns the
        # same Session until close_session() removes it.
        self.session = scoped_session(session_factory)

    def create_tables(self) -> None:
        """Create all tables known to ``Base.metadata``."""
        # Import the models so every table is registered on the metadata.
        import sologm.models  # noqa: F401

        logger.debug("Creating tables")
        Base.metadata.create_all(self.engine)

    def get_session(self) -> Session:
        """Return the current thread's session from the ``scoped_session``.

        Returns:
            The thread-local SQLAlchemy session.
        """
        return self.session()

    def close_session(self) -> None:
        """Close and discard the current thread's session (``scoped_session.remove``)."""
        logger.debug("Removing scoped session")
        self.session.remove()

    def dispose(self) -> None:
        """Release every connection held by the engine."""
        logger.debug("Disposing engine")
        self.engine.dispose()


class SessionContext:
    """Context manager around a database session.

    Commits when the block exits normally and rolls back when it raises::

        with SessionContext() as session:
            session.add(obj)
    """

    def __init__(self, db_manager: Optional[DatabaseManager] = None) -> None:
        """Use ``db_manager`` or the process-wide instance."""
        self._db = db_manager or DatabaseManager.get_instance()
        self.session: Optional[Session] = None

    def __enter__(self) -> Session:
        self.session = self._db.get_session()
        logger.debug("Entered session context")
        return self.session

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_val: Optional[BaseException],
        exc_tb: Any,
    ) -> None:
        if exc_type is not None:
            logger.debug("Rolling back session after %s", exc_type.__name__)
            self.session.rollback()
        else:
            logger.debug("Committing session")
            self.session.commit()

        self.session.close()
        self._db.close_session()


def initialize_database(
    db_url: Optional[str] = None, engine: Optional[Engine] = None
) -> DatabaseManager:
    """Create (or reuse) the DatabaseManager and make sure the tables exist.

    Args:
        db_url: Database URL, used if no instance exists yet.
        engine: Engine, used instead of ``db_url``.

    Returns:
        The shared DatabaseManager.
    """
    if db_url is None and engine is None and DatabaseManager._instance is None:
        from sologm.utils.config import get_database_url

        db_url = get_database_url()
    db_manager = DatabaseManager.get_instance(db_url=db_url, engine=engine)
    db_manager.create_tables()
    _seed_event_sources(db_manager)
    return db_manager


def _seed_event_sources(db_manager: DatabaseManager) -> None:
    """Make sure the default event sources exist."""
    from sologm.models.event_source import DEFAULT_EVENT_SOURCES, EventSource

    with SessionContext(db_manager) as session:
        existing = {name for (name,) in session.query(EventSource.name).all()}
        for name in DEFAULT_EVENT_SOURCES:
            if name not in existing:
                logger.debug("Seeding event source %s", name)
                session.add(EventSource.create(name))


def get_session() -> Session:
    """Return the current thread's session from the shared DatabaseManager.

    Managers that were not given a session fall back to this.
    """
    return DatabaseManager.get_instance().get_session()


def get_db_context() -> SessionContext:
    """Return a ``SessionContext`` over the shared DatabaseManager."""
    return SessionContext()
