"""Beds inside a greenhouse."""

from typing import List, Optional

from sqlalchemy.orm import Session

from verdant.core.base_manager import BaseManager
from verdant.core.greenhouse import GreenhouseManager
from verdant.errors import NoActiveBedError
from verdant.models import Bed


class BedManager(BaseManager):
    def __init__(
        self,
        greenhouse_manager: Optional[GreenhouseManager] = None,
        session: Optional[Session] = None,
    ) -> None:
        super().__init__(session=session)
        self._greenhouse_manager = greenhouse_manager

    @property
    def greenhouse_manager(self) -> GreenhouseManager:
        return self._lazy_init_manager(
            "_greenhouse_manager", "verdant.core.greenhouse.GreenhouseManager"
        )

    def create_bed(
        self,
        greenhouse_id: str,
        name: str,
        *,
        capacity: int = 10,
        activate: bool = False,
    ) -> Bed:
        def _create(session: Session) -> Bed:
            if activate:
                for other in session.query(Bed).filter(Bed.greenhouse_id == greenhouse_id):
                    other.is_active = False
            bed = Bed(
                greenhouse_id=greenhouse_id, name=name, capacity=capacity, is_active=activate
            )
            session.add(bed)
            session.flush()
            return bed

        return self._execute_db_operation("create_bed", _create)

    def list_beds(self, greenhouse_id: str) -> List[Bed]:
        def _list(session: Session) -> List[Bed]:
            return (
                session.query(Bed)
                .filter(Bed.greenhouse_id == greenhouse_id)
                .order_by(Bed.name)
                .all()
            )

        return self._execute_db_operation("list_beds", _list)

    def get_active_bed(self) -> Bed:
        """The active bed of the active greenhouse (walks ``greenhouse.beds``)."""
        greenhouse = self.greenhouse_manager.require_active_greenhouse()
        for bed in greenhouse.beds:
            if bed.is_active:
                return bed
        raise NoActiveBedError(f"greenhouse {greenhouse.name!r} has no active bed")

    def free_slots(self, bed_id: str) -> int:
        def _free(session: Session) -> int:
            bed = self._get_or_404(session, Bed, bed_id)
            return bed.capacity - len(bed.plants)

        return self._execute_db_operation("free_slots", _free)
