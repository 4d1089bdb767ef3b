"""Fixtures for the bed/plant/care tests."""

import pytest


@pytest.fixture
def create_test_care_log(care_manager, db_session):
    def _create_care_log(plant_id, kind="water", amount_ml=200, note=None):
        entry = care_manager.log_care(plant_id, kind, amount_ml=amount_ml, note=note)
        db_session.refresh(entry, attribute_names=["plant"])
        return entry

    return _create_care_log


@pytest.fixture
def watered_plant(test_plant, create_test_care_log):
    """``test_plant`` with one watering already logged."""
    create_test_care_log(test_plant.id, "water", amount_ml=300)
    return test_plant


@pytest.fixture
def seeded_bed(test_greenhouse, bed_manager, plant_manager):
    bed = bed_manager.create_bed(test_greenhouse.id, "Seed Tray", capacity=6)
    for species in ("Lettuce", "Radish"):
        plant_manager.add_plant(species, bed_id=bed.id)
    yield bed
    for plant in plant_manager.list_plants(bed.id):
        plant_manager.remove_plant(plant.id)
