"""Greenhouses."""

from typing import List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from verdant.core.base_manager import BaseManager
from verdant.errors import NoActiveGreenhouseError
from verdant.models import Greenhouse


class GreenhouseManager(BaseManager):
    def __init__(self, session: Optional[Session] = None) -> None:
        super().__init__(session=session)

    def create_greenhouse(
        self, name: str, *, location: Optional[str] = None, activate: bool = False
    ) -> Greenhouse:
        def _create(session: Session) -> Greenhouse:
            if activate:
                for other in session.scalars(select(Greenhouse).where(Greenhouse.is_active)):
                    other.is_active = False
            gh = Greenhouse(name=name, location=location, is_active=activate)
            session.add(gh)
            session.flush()
            return gh

        return self._execute_db_operation("create_greenhouse", _create)

    def list_greenhouses(self) -> List[Greenhouse]:
        def _list(session: Session) -> List[Greenhouse]:
            return list(session.scalars(select(Greenhouse).order_by(Greenhouse.name)))

        return self._execute_db_operation("list_greenhouses", _list)

    def get_active_greenhouse(self) -> Optional[Greenhouse]:
        def _active(session: Session) -> Optional[Greenhouse]:
            return session.scalars(select(Greenhouse).where(Greenhouse.is_active)).first()

        return self._execute_db_operation("get_active_greenhouse", _active)

    def require_active_greenhouse(self) -> Greenhouse:
        gh = self.get_active_greenhouse()
        if gh is None:
            raise NoActiveGreenhouseError("no active greenhouse; run `verdant greenhouse use`")
        return gh

    def activate(self, greenhouse_id: str) -> Greenhouse:
        def _activate(session: Session) -> Greenhouse:
            target = self._get_or_404(session, Greenhouse, greenhouse_id)
            for gh in session.scalars(select(Greenhouse)):
                gh.is_active = gh.id == target.id
            return target

        return self._execute_db_operation("activate", _activate)
