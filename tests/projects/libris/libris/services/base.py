"""What every service (manager) shares: session handling and transactions."""

from __future__ import annotations

import importlib
import logging
from typing import Any, Callable, Generic, Optional, Tuple, TypeVar

from sqlalchemy.orm import Session

ModelT = TypeVar("ModelT")
KeyT = TypeVar("KeyT")


class BaseManager(Generic[ModelT, KeyT]):
    """Base of the libris services.

    A service gets a session from its caller, or, when none is given, uses the
    thread's session from ``libris.db.session.get_session()``.
    """

    def __init__(self, session: Optional[Session] = None):
        self._session = session
        self.logger = logging.getLogger(f"libris.services.{type(self).__name__}")

    def _get_session(self) -> Tuple[Session, bool]:
        """``(session, should_close)``: should_close is True for a session fetched here."""
        if self._session is not None:
            return self._session, False
        from libris.db.session import get_session

        return get_session(), True

    def _execute_db_operation(self, operation_name: str, operation: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``operation(session, ...)`` and commit; roll back and re-raise on error."""
        session, should_close = self._get_session()
        try:
            result = operation(session, *args, **kwargs)
            session.commit()
            return result
        except Exception:
            self.logger.debug("%s failed, rolling back", operation_name)
            session.rollback()
            raise
        finally:
            self.logger.debug(f"{operation_name}: done (session {id(session):#x}, owned={should_close})")

    def _lazy_init_manager(self, attr_name: str, class_path: str, **kwargs: Any) -> Any:
        """Build a collaborating service on first use, on the same session."""
        if getattr(self, attr_name, None) is None:
            module_name, _, class_name = class_path.rpartition(".")
            cls = getattr(importlib.import_module(module_name), class_name)
            kwargs["session"] = self._session
            setattr(self, attr_name, cls(**kwargs))
        return getattr(self, attr_name)
