import pytest

from verdant.core.plant import BedFullError, PlantManager
from verdant.errors import NotFoundError
from verdant.models import Plant
from verdant.tests.helpers import fill_bed


class TestPlantManager:
    @pytest.fixture
    def basil(self, plant_manager, test_bed):
        return plant_manager.add_plant("Basil", bed_id=test_bed.id, nickname="Bas")

    @pytest.fixture
    def full_bed(self, plant_manager, test_bed):
        fill_bed(plant_manager, test_bed.id, "Chive", test_bed.capacity)
        return test_bed

    def test_add_plant(self, plant_manager, test_bed, db_session):
        plant = plant_manager.add_plant("Sage", bed_id=test_bed.id)
        assert db_session.get(Plant, plant.id).species == "Sage"

    def test_add_plant_defaults(self, basil):
        assert basil.water_every_days == 3
        assert basil.nickname == "Bas"

    def test_add_plant_to_active_bed(self, plant_manager, test_bed):
        """Known failure before the refactoring (stale ``greenhouse.beds``)."""
        plant = plant_manager.add_plant("Parsley")
        assert plant.bed_id == test_bed.id

    def test_bed_full(self, plant_manager, full_bed):
        with pytest.raises(BedFullError):
            plant_manager.add_plant("Dill", bed_id=full_bed.id)

    def test_unknown_bed(self, plant_manager):
        with pytest.raises(NotFoundError):
            plant_manager.add_plant("Dill", bed_id="missing")

    def test_rename(self, plant_manager, basil):
        plant_manager.rename(basil.id, "Basilisk")
        assert plant_manager.get_plant(basil.id).nickname == "Basilisk"

    def test_remove(self, plant_manager, basil, db_session):
        plant_manager.remove_plant(basil.id)
        assert db_session.get(Plant, basil.id) is None

    def test_list_plants_sorted(self, plant_manager, test_bed, test_plants):
        species = [p.species for p in plant_manager.list_plants(test_bed.id)]
        assert species == ["Chili", "Mint", "Thyme"]

    def test_lazy_bed_manager(self, db_session):
        manager = PlantManager(session=db_session)
        assert manager.bed_manager.greenhouse_manager._session is db_session


def test_get_plant(plant_manager, test_plant):
    assert plant_manager.get_plant(test_plant.id).nickname == "Tom"


def test_get_plant_missing(plant_manager):
    with pytest.raises(NotFoundError):
        plant_manager.get_plant("nope")


def test_plant_bed_relationship(test_plant, test_bed):
    assert test_plant.bed.name == test_bed.name


@pytest.mark.parametrize(
    "species,days",
    [("Cactus", 14), ("Fern", 2), ("Orchid", 7)],
)
def test_water_interval(create_test_plant, test_bed, species, days):
    plant = create_test_plant(test_bed.id, species, water_every_days=days)
    assert plant.water_every_days == days


def test_fill_bed_helper(plant_manager, test_bed):
    plants = fill_bed(plant_manager, test_bed.id, "Pea", 2)
    assert [p.nickname for p in plants] == ["Pea-0", "Pea-1"]


def test_seeded_bed_plants(plant_manager, seeded_bed):
    assert sorted(p.species for p in plant_manager.list_plants(seeded_bed.id)) == [
        "Lettuce",
        "Radish",
    ]


def test_plant_count_query(test_plants, db_session):
    assert db_session.query(Plant).count() == 3


def test_plant_manager_constructed_directly(db_session, bed_manager, test_bed):
    manager = PlantManager(bed_manager=bed_manager, session=db_session)
    plant = manager.add_plant("Leek", bed_id=test_bed.id)
    assert plant.bed_id == test_bed.id
