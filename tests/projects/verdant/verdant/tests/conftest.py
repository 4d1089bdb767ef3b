"""Shared fixtures for verdant's tests."""

import logging
from unittest.mock import MagicMock

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from verdant.core.bed import BedManager
from verdant.core.care import CareManager
from verdant.core.forecast import ForecastManager
from verdant.core.greenhouse import GreenhouseManager
from verdant.core.plant import PlantManager
from verdant.database.session import DatabaseManager, SessionContext
from verdant.models import Base

logger = logging.getLogger(__name__)


@pytest.fixture
def db_engine():
    engine = create_engine(
        "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
    )
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def database_manager(db_engine):
    """Point the singleton at the in-memory engine for the duration of a test."""
    previous = DatabaseManager._instance
    db = DatabaseManager(engine=db_engine)
    DatabaseManager._instance = db
    yield db
    DatabaseManager._instance = previous


@pytest.fixture
def db_session(database_manager):
    session = database_manager.get_session()
    yield session
    session.close()
    database_manager.close_session()


@pytest.fixture
def session_context(database_manager):
    return SessionContext(database_manager)


# --- managers -------------------------------------------------------------------


@pytest.fixture
def greenhouse_manager(db_session):
    # no session needed: the manager picks up the thread's scoped session
    return GreenhouseManager()


@pytest.fixture
def bed_manager(db_session, greenhouse_manager):  # Inject db_session
    return BedManager(greenhouse_manager=greenhouse_manager, session=db_session)


@pytest.fixture
def plant_manager(db_session, bed_manager):
    return PlantManager(bed_manager=bed_manager, session=db_session)


@pytest.fixture
def care_manager(db_session, plant_manager):
    return CareManager(session=db_session, plant_manager=plant_manager)


@pytest.fixture
def mock_weather_client():
    client = MagicMock(name="WeatherClient")
    client.forecast.return_value = {"rain_mm": 1.5, "temp_c": 18.0}
    return client


@pytest.fixture
def forecast_manager(db_session, care_manager, mock_weather_client):
    return ForecastManager(
        weather_client=mock_weather_client, care_manager=care_manager, session=db_session
    )


# @pytest.fixture
# def plant_manager(db_session):
#     return PlantManager(session=db_session)


# --- factories ------------------------------------------------------------------


@pytest.fixture
def create_test_greenhouse(greenhouse_manager, db_session):
    def _create_greenhouse(name="Glasshouse", location="Kew", activate=True):
        gh = greenhouse_manager.create_greenhouse(name, location=location, activate=activate)
        return db_session.merge(gh)

    return _create_greenhouse


@pytest.fixture
def create_test_bed(bed_manager, db_session):
    def _create_bed(greenhouse_id, name="Bed A", capacity=10, activate=False):
        bed = bed_manager.create_bed(
            greenhouse_id, name, capacity=capacity, activate=activate
        )
        db_session.refresh(bed)
        return bed

    return _create_bed


@pytest.fixture
def create_test_plant(plant_manager, db_session):
    def _create_plant(bed_id, species="Basil", nickname=None, water_every_days=3):
        plant = plant_manager.add_plant(
            species, bed_id=bed_id, nickname=nickname, water_every_days=water_every_days
        )
        db_session.refresh(plant, attribute_names=["bed"])
        return plant

    return _create_plant


# --- objects --------------------------------------------------------------------


@pytest.fixture
def test_greenhouse(create_test_greenhouse, db_session):
    gh = create_test_greenhouse(name="Main House", location="Leeds")
    try:
        # make sure beds are loaded so the CLI tests can print them
        db_session.refresh(gh, attribute_names=["beds"])
    except Exception as exc:  # pragma: no cover
        logger.warning("could not refresh greenhouse: %s", exc)
    return gh


@pytest.fixture
def test_bed(test_greenhouse, create_test_bed):
    return create_test_bed(test_greenhouse.id, "North Bed", capacity=4, activate=True)


@pytest.fixture
def test_plant(test_bed, create_test_plant):
    return create_test_plant(test_bed.id, "Tomato", nickname="Tom")


@pytest.fixture
def test_plants(test_bed, plant_manager):
    return [
        plant_manager.add_plant(species, bed_id=test_bed.id)
        for species in ("Chili", "Mint", "Thyme")
    ]


@pytest.fixture
def test_bed(test_greenhouse, create_test_bed):  # noqa: F811  (the later one wins)
    """An active bed with room for four plants."""
    return create_test_bed(test_greenhouse.id, "North Bed", capacity=4, activate=True)
