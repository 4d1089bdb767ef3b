"""Base class for all sologm managers."""

import importlib
import logging
from typing import Any, Callable, Generic, List, Optional, Tuple, Type, TypeVar

from sqlalchemy.orm import Session

T = TypeVar("T")  # domain model type returned to callers
M = TypeVar("M")  # SQLAlchemy model type stored in the database


class BaseManager(Generic[T, M]):
    """Common database plumbing for managers.

    A manager either receives a session (tests, CLI) or fetches the current
    thread's session from the ``scoped_session`` via ``get_session()``.
    Every write goes through ``_execute_db_operation``, which commits on
    success and rolls back on failure.
    """

    def __init__(self, session: Optional[Session] = None):
        """Initialize the manager.

        Args:
            session: Optional database session. When omitted the manager uses
                the thread-local session returned by ``get_session()``.
        """
        self._session = session
        self.logger = logging.getLogger(f"sologm.core.{self.__class__.__name__.lower()}")
        self.logger.debug(
            "Initialized %s with session %s",
            self.__class__.__name__,
            id(session) if session is not None else None,
        )

    def _get_session(self) -> Tuple[Session, bool]:
        """Return ``(session, should_close)``.

        ``should_close`` is True when the session was fetched here rather than
        injected, in which case the caller owns it.
        """
        if self._session is not None:
            self.logger.debug("Using injected session %s", id(self._session))
            return self._session, False

        from sologm.database.session import get_session

        session = get_session()
        self.logger.debug("Fetched scoped session %s", id(session))
        return session, True

    def _convert_to_domain(self, db_model: M) -> T:
        """Convert a database model to the domain model (identity by default)."""
        return db_model  # type: ignore[return-value]

    def _convert_to_db_model(self, domain_model: T, db_model: Optional[M] = None) -> M:
        """Convert a domain model to the database model (identity by default)."""
        return domain_model  # type: ignore[return-value]

    def _execute_db_operation(
        self,
        operation_name: str,
        operation: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Run ``operation(session, *args, **kwargs)`` in a transaction.

        Commits on success; rolls back and re-raises on failure.

        Args:
            operation_name: Name used in log messages.
            operation: Callable taking the session as its first argument.

        Returns:
            Whatever ``operation`` returns.
        """
        self.logger.debug("Executing database operation: %s", operation_name)
        session, should_close = self._get_session()
        try:
            result = operation(session, *args, **kwargs)
            self.logger.debug("Committing operation: %s", operation_name)
            session.commit()
            self.logger.debug(
                f"Operation {operation_name} completed (session {id(session)}, owned here: {should_close})"
            )
            return result
        except Exception as e:
            self.logger.debug("Rolling back %s after error: %s", operation_name, e)
            session.rollback()
            raise

    def _lazy_init_manager(self, attr_name: str, manager_class_path: str, **kwargs: Any) -> Any:
        """Create a related manager on first use and cache it on ``self``.

        Args:
            attr_name: Attribute that caches the manager, e.g. ``"_game_manager"``.
            manager_class_path: Dotted path, e.g. ``"sologm.core.game.GameManager"``.
            **kwargs: Extra constructor arguments.

        Returns:
            The cached or newly created manager.
        """
        if not hasattr(self, attr_name) or getattr(self, attr_name) is None:
            module_path, class_name = manager_class_path.rsplit(".", 1)
            module = importlib.import_module(module_path)
            manager_class = getattr(module, class_name)
            # Share our session so parent and child see the same objects.
            kwargs["session"] = self._session
            self.logger.debug(
                "Lazy-initializing %s with session %s",
                class_name,
                id(self._session) if self._session is not None else None,
            )
            setattr(self, attr_name, manager_class(**kwargs))
        return getattr(self, attr_name)

    # ------------------------------------------------------------------
    # Generic helpers built on _execute_db_operation
    # ------------------------------------------------------------------

    def get_entity_or_error(
        self,
        session: Session,
        model_class: Type[M],
        entity_id: str,
        error_class: Type[Exception],
        error_message: Optional[str] = None,
    ) -> M:
        """Fetch ``model_class`` by primary key or raise ``error_class``."""
        entity = session.get(model_class, entity_id)
        if entity is None:
            raise error_class(
                error_message or f"{model_class.__name__} with ID {entity_id} not found"
            )
        return entity

    def list_entities(
        self,
        model_class: Type[M],
        filters: Optional[dict] = None,
        order_by: Optional[Any] = None,
        limit: Optional[int] = None,
    ) -> List[M]:
        """List rows of ``model_class`` matching equality ``filters``."""

        def _list_operation(session: Session) -> List[M]:
            query = session.query(model_class)
            for attr, value in (filters or {}).items():
                query = query.filter(getattr(model_class, attr) == value)
            if order_by is not None:
                query = query.order_by(order_by)
            if limit is not None:
                query = query.limit(limit)
            return query.all()

        return self._execute_db_operation(f"list {model_class.__name__}", _list_operation)

    def _deactivate_all(self, session: Session, model_class: Type[M], **filters: Any) -> None:
        """Set ``is_active`` to False on every matching row."""
        query = session.query(model_class)
        for attr, value in filters.items():
            query = query.filter(getattr(model_class, attr) == value)
        for entity in query.filter(model_class.is_active == True).all():  # noqa: E712
            entity.is_active = False
