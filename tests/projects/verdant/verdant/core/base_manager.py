"""Shared plumbing for verdant's managers."""

import importlib
import logging
from typing import Any, Callable, Optional, Tuple, Type, TypeVar

from sqlalchemy.orm import Session

from verdant.errors import NotFoundError

M = TypeVar("M")


class BaseManager:
    """Base for managers. Uses the injected session or the thread's scoped session."""

    def __init__(self, session: Optional[Session] = None) -> None:
        self._session = session
        self.log = logging.getLogger(f"verdant.{type(self).__name__}")

    def _get_session(self) -> Tuple[Session, bool]:
        """Return (session, should_close)."""
        if self._session is not None:
            return self._session, False
        from verdant.database.session import get_session

        return get_session(), True

    def _execute_db_operation(
        self, name: str, operation: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        session, should_close = self._get_session()
        try:
            result = operation(session, *args, **kwargs)
            session.commit()
            self.log.debug("%s done (own session: %s)", name, should_close)
            return result
        except Exception:
            self.log.debug("%s failed, rolling back", name)
            session.rollback()
            raise

    def _lazy_init_manager(self, attr_name: str, class_path: str, **kwargs: Any) -> Any:
        if getattr(self, attr_name, None) is None:
            module_name, class_name = class_path.rsplit(".", 1)
            cls = getattr(importlib.import_module(module_name), class_name)
            kwargs["session"] = self._session
            setattr(self, attr_name, cls(**kwargs))
        return getattr(self, attr_name)

    def _get_or_404(self, session: Session, model: Type[M], entity_id: str) -> M:
        obj = session.get(model, entity_id)
        if obj is None:
            raise NotFoundError(f"{model.__name__} {entity_id} not found")
        return obj
