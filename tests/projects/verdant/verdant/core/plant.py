"""Plants in beds."""

from typing import List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from verdant.core.base_manager import BaseManager
from verdant.core.bed import BedManager
from verdant.errors import VerdantError
from verdant.models import Bed, Plant


class BedFullError(VerdantError):
    pass


class PlantManager(BaseManager):
    def __init__(
        self, bed_manager: Optional[BedManager] = None, session: Optional[Session] = None
    ) -> None:
        super().__init__(session=session)
        self._bed_manager = bed_manager

    @property
    def bed_manager(self) -> BedManager:
        return self._lazy_init_manager("_bed_manager", "verdant.core.bed.BedManager")

    def add_plant(
        self,
        species: str,
        *,
        bed_id: Optional[str] = None,
        nickname: Optional[str] = None,
        water_every_days: int = 3,
    ) -> Plant:
        if bed_id is None:
            bed_id = self.bed_manager.get_active_bed().id

        def _add(session: Session) -> Plant:
            bed = self._get_or_404(session, Bed, bed_id)
            count = len(session.scalars(select(Plant.id).where(Plant.bed_id == bed.id)).all())
            if count >= bed.capacity:
                raise BedFullError(f"bed {bed.name!r} is full")
            plant = Plant(
                bed_id=bed.id,
                species=species,
                nickname=nickname,
                water_every_days=water_every_days,
            )
            session.add(plant)
            session.flush()
            return plant

        return self._execute_db_operation("add_plant", _add)

    def get_plant(self, plant_id: str) -> Plant:
        return self._execute_db_operation(
            "get_plant", lambda s: self._get_or_404(s, Plant, plant_id)
        )

    def list_plants(self, bed_id: str) -> List[Plant]:
        def _list(session: Session) -> List[Plant]:
            stmt = select(Plant).where(Plant.bed_id == bed_id).order_by(Plant.species)
            return list(session.scalars(stmt))

        return self._execute_db_operation("list_plants", _list)

    def rename(self, plant_id: str, nickname: str) -> Plant:
        def _rename(session: Session) -> Plant:
            plant = self._get_or_404(session, Plant, plant_id)
            plant.nickname = nickname
            return plant

        return self._execute_db_operation("rename", _rename)

    def remove_plant(self, plant_id: str) -> None:
        def _remove(session: Session) -> None:
            session.delete(self._get_or_404(session, Plant, plant_id))

        self._execute_db_operation("remove_plant", _remove)
