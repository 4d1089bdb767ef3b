import pytest
from sqlalchemy.exc import IntegrityError

from verdant.core.bed import BedManager
from verdant.core.greenhouse import GreenhouseManager
from verdant.errors import NoActiveBedError, NoActiveGreenhouseError
from verdant.models import Bed
from verdant.tests.helpers import fill_bed

pytestmark = pytest.mark.usefixtures("test_greenhouse")


def test_create_bed(bed_manager, test_greenhouse, db_session):
    bed = bed_manager.create_bed(test_greenhouse.id, "South", capacity=8)
    assert db_session.get(Bed, bed.id).capacity == 8


def test_create_bed_default_capacity(bed_manager, test_greenhouse):
    bed = bed_manager.create_bed(test_greenhouse.id, "East")
    assert bed.capacity == 10
    assert bed.is_active is False


def test_duplicate_bed_name(bed_manager, test_greenhouse, db_session):
    bed_manager.create_bed(test_greenhouse.id, "West")
    with pytest.raises(IntegrityError):
        bed_manager.create_bed(test_greenhouse.id, "West")
    assert db_session.query(Bed).filter_by(name="West").count() == 1


def test_list_beds(bed_manager, test_greenhouse, create_test_bed):
    create_test_bed(test_greenhouse.id, "B")
    create_test_bed(test_greenhouse.id, name="A", capacity=2)
    assert [b.name for b in bed_manager.list_beds(test_greenhouse.id)] == ["A", "B"]


def test_active_bed(bed_manager, test_bed):
    assert bed_manager.get_active_bed().id == test_bed.id


def test_active_bed_created_later(bed_manager, test_greenhouse):
    """Known failure before the refactoring: ``test_greenhouse.beds`` is stale."""
    bed = bed_manager.create_bed(test_greenhouse.id, "Late", activate=True)
    assert bed_manager.get_active_bed().id == bed.id


def test_no_active_bed(bed_manager):
    with pytest.raises(NoActiveBedError):
        bed_manager.get_active_bed()


def test_no_active_greenhouse(db_session, test_greenhouse):
    test_greenhouse.is_active = False
    db_session.commit()
    manager = BedManager(session=db_session)
    with pytest.raises(NoActiveGreenhouseError):
        manager.get_active_bed()


def test_lazy_greenhouse_manager(db_session):
    manager = BedManager(session=db_session)
    assert isinstance(manager.greenhouse_manager, GreenhouseManager)
    assert manager.greenhouse_manager._session is db_session


def test_injected_greenhouse_manager(bed_manager, greenhouse_manager):
    assert bed_manager.greenhouse_manager is greenhouse_manager


def test_free_slots(bed_manager, plant_manager, test_bed):
    fill_bed(plant_manager, test_bed.id, "Basil", 3)
    assert bed_manager.free_slots(test_bed.id) == 1


def test_free_slots_seeded(bed_manager, seeded_bed):
    assert bed_manager.free_slots(seeded_bed.id) == 4


def test_bed_belongs_to_greenhouse(test_bed, test_greenhouse):
    assert test_bed.greenhouse.id == test_greenhouse.id
    assert test_bed.greenhouse.name == "Main House"


@pytest.mark.parametrize("capacity", [1, 5, 20])
def test_capacity_parametrized(bed_manager, test_greenhouse, capacity):
    bed = bed_manager.create_bed(test_greenhouse.id, f"Cap {capacity}", capacity=capacity)
    assert bed_manager.free_slots(bed.id) == capacity


def test_manual_nested_transaction(bed_manager, test_greenhouse, db_session):
    nested = db_session.begin_nested()
    db_session.add(Bed(greenhouse_id=test_greenhouse.id, name="Temp"))
    nested.rollback()
    assert [b.name for b in bed_manager.list_beds(test_greenhouse.id)] == []
