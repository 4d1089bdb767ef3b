"""Watering, feeding and pruning logs."""

from datetime import datetime, timedelta, timezone
from typing import List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from verdant.core.base_manager import BaseManager
from verdant.core.plant import PlantManager
from verdant.errors import VerdantError
from verdant.models import CareLog, Plant

CARE_KINDS = ("water", "feed", "prune", "forecast")


class CareManager(BaseManager):
    def __init__(
        self, session: Optional[Session] = None, plant_manager: Optional[PlantManager] = None
    ) -> None:
        super().__init__(session=session)
        self._plant_manager = plant_manager

    @property
    def plant_manager(self) -> PlantManager:
        return self._lazy_init_manager("_plant_manager", "verdant.core.plant.PlantManager")

    def log_care(
        self,
        plant_id: str,
        kind: str,
        *,
        amount_ml: Optional[int] = None,
        note: Optional[str] = None,
    ) -> CareLog:
        if kind not in CARE_KINDS:
            raise VerdantError(f"unknown care kind {kind!r}")

        def _log(session: Session) -> CareLog:
            self._get_or_404(session, Plant, plant_id)
            entry = CareLog(plant_id=plant_id, kind=kind, amount_ml=amount_ml, note=note)
            session.add(entry)
            session.flush()
            return entry

        return self._execute_db_operation("log_care", _log)

    def history(self, plant_id: str, *, kind: Optional[str] = None) -> List[CareLog]:
        def _history(session: Session) -> List[CareLog]:
            stmt = select(CareLog).where(CareLog.plant_id == plant_id)
            if kind:
                stmt = stmt.where(CareLog.kind == kind)
            return list(session.scalars(stmt.order_by(CareLog.created_at)))

        return self._execute_db_operation("history", _history)

    def needs_water(self, plant_id: str, *, now: Optional[datetime] = None) -> bool:
        now = now or datetime.now(timezone.utc)
        plant = self.plant_manager.get_plant(plant_id)
        waterings = self.history(plant_id, kind="water")
        if not waterings:
            return True
        last = waterings[-1].created_at
        if last.tzinfo is None:
            last = last.replace(tzinfo=timezone.utc)
        return now - last >= timedelta(days=plant.water_every_days)

    def water_active_bed(self, amount_ml: int) -> List[CareLog]:
        bed = self.plant_manager.bed_manager.get_active_bed()
        return [
            self.log_care(p.id, "water", amount_ml=amount_ml)
            for p in self.plant_manager.list_plants(bed.id)
        ]
