from datetime import datetime, timedelta, timezone

import pytest

from verdant.core.care import CARE_KINDS, CareManager
from verdant.core.plant import PlantManager
from verdant.errors import NotFoundError, VerdantError
from verdant.models import CareLog


def test_log_water(care_manager, test_plant, db_session):
    entry = care_manager.log_care(test_plant.id, "water", amount_ml=150)
    assert db_session.get(CareLog, entry.id).amount_ml == 150


@pytest.mark.parametrize("kind", ["water", "feed", "prune"])
def test_log_kinds(care_manager, test_plant, kind):
    entry = care_manager.log_care(test_plant.id, kind, note=f"{kind} it")
    assert entry.kind == kind
    assert entry.note == f"{kind} it"


def test_log_unknown_kind(care_manager, test_plant):
    with pytest.raises(VerdantError):
        care_manager.log_care(test_plant.id, "sing")


def test_log_unknown_plant(care_manager):
    with pytest.raises(NotFoundError):
        care_manager.log_care("ghost", "water")


def test_history(care_manager, watered_plant):
    history = care_manager.history(watered_plant.id)
    assert [h.amount_ml for h in history] == [300]


def test_history_filter(care_manager, watered_plant, create_test_care_log):
    create_test_care_log(watered_plant.id, kind="feed", amount_ml=None, note="tomato feed")
    assert len(care_manager.history(watered_plant.id)) == 2
    assert len(care_manager.history(watered_plant.id, kind="feed")) == 1


def test_needs_water_never_watered(care_manager, test_plant):
    assert care_manager.needs_water(test_plant.id) is True


def test_needs_water_recently_watered(care_manager, watered_plant):
    assert care_manager.needs_water(watered_plant.id) is False


def test_needs_water_later(care_manager, watered_plant):
    later = datetime.now(timezone.utc) + timedelta(days=4)
    assert care_manager.needs_water(watered_plant.id, now=later) is True


def test_water_active_bed(care_manager, test_plants):
    """Known failure before the refactoring (stale ``greenhouse.beds``)."""
    logs = care_manager.water_active_bed(100)
    assert len(logs) == 3


def test_lazy_plant_manager_is_shared(care_manager, plant_manager):
    assert care_manager.plant_manager is plant_manager


def test_lazy_plant_manager_created(db_session):
    manager = CareManager(session=db_session)
    assert isinstance(manager.plant_manager, PlantManager)
    assert manager.plant_manager._session is db_session


def test_care_kinds_constant():
    assert "water" in CARE_KINDS
    assert len(CARE_KINDS) == 4


def test_care_log_relationship(create_test_care_log, test_plant):
    entry = create_test_care_log(test_plant.id)
    assert entry.plant.species == "Tomato"


def test_history_monkeypatched_now(care_manager, watered_plant, monkeypatch):
    import verdant.core.care as care_module

    real = care_module.datetime

    class FrozenDatetime(real):
        @classmethod
        def now(cls, tz=None):
            return real.now(tz) + timedelta(days=10)

    monkeypatch.setattr(care_module, "datetime", FrozenDatetime)
    assert care_manager.needs_water(watered_plant.id) is True
