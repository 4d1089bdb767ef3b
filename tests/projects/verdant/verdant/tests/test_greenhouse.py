import pytest
from sqlalchemy.exc import IntegrityError

from verdant.core.greenhouse import GreenhouseManager
from verdant.errors import NoActiveGreenhouseError, NotFoundError
from verdant.models import Greenhouse


def test_create_greenhouse(greenhouse_manager, db_session):
    gh = greenhouse_manager.create_greenhouse("Palm House", location="Kew")
    assert gh.id
    assert db_session.get(Greenhouse, gh.id).location == "Kew"


def test_create_greenhouse_inactive_by_default(greenhouse_manager):
    gh = greenhouse_manager.create_greenhouse("Cold Frame")
    assert gh.is_active is False
    assert greenhouse_manager.get_active_greenhouse() is None


def test_create_active_deactivates_others(greenhouse_manager, create_test_greenhouse):
    first = create_test_greenhouse(name="First")
    second = greenhouse_manager.create_greenhouse("Second", activate=True)
    assert second.is_active
    assert first.is_active is False


def test_list_greenhouses_sorted(greenhouse_manager, create_test_greenhouse):
    create_test_greenhouse(name="Zinnia House", activate=False)
    create_test_greenhouse("Aster House", None, False)
    names = [gh.name for gh in greenhouse_manager.list_greenhouses()]
    assert names == ["Aster House", "Zinnia House"]


def test_list_empty(greenhouse_manager):
    assert greenhouse_manager.list_greenhouses() == []


def test_active_greenhouse(greenhouse_manager, test_greenhouse):
    assert greenhouse_manager.get_active_greenhouse().id == test_greenhouse.id


def test_require_active_raises(greenhouse_manager):
    with pytest.raises(NoActiveGreenhouseError):
        greenhouse_manager.require_active_greenhouse()


def test_activate_switches(greenhouse_manager, test_greenhouse, create_test_greenhouse):
    other = create_test_greenhouse(name="Other", activate=False)
    greenhouse_manager.activate(other.id)
    assert greenhouse_manager.get_active_greenhouse().id == other.id
    assert test_greenhouse.is_active is False


def test_activate_unknown(greenhouse_manager):
    with pytest.raises(NotFoundError):
        greenhouse_manager.activate("nope")


def test_duplicate_name_integrity_error(greenhouse_manager, test_greenhouse, db_session):
    with pytest.raises(IntegrityError):
        greenhouse_manager.create_greenhouse(test_greenhouse.name)
    # the manager rolled back; the session is usable again
    assert db_session.query(Greenhouse).count() == 1


def test_duplicate_name_then_continue(greenhouse_manager):
    greenhouse_manager.create_greenhouse("Dup")
    try:
        greenhouse_manager.create_greenhouse("Dup")
    except IntegrityError:
        pass
    else:
        pytest.fail("expected IntegrityError")
    greenhouse_manager.create_greenhouse("Not Dup")
    assert len(greenhouse_manager.list_greenhouses()) == 2


def test_greenhouse_manager_without_session_uses_scoped(db_session):
    manager = GreenhouseManager()
    gh = manager.create_greenhouse("Scoped")
    assert db_session.get(Greenhouse, gh.id) is gh


def test_manager_session_attribute(db_session):
    manager = GreenhouseManager()
    manager._session = db_session
    manager.create_greenhouse("Assigned")
    assert db_session.query(Greenhouse).filter_by(name="Assigned").one()


def test_new_style_context(session_context):
    with session_context as session:
        manager = GreenhouseManager(session=session)
        manager.create_greenhouse("Context House", location="York")
    with session_context as session:
        assert session.query(Greenhouse).filter_by(name="Context House").count() == 1


@pytest.mark.parametrize("location", ["Kew", None, "Edinburgh"])
def test_location_roundtrip(greenhouse_manager, db_session, location):
    gh = greenhouse_manager.create_greenhouse(f"GH {location}", location=location)
    db_session.expire(gh)
    assert gh.location == location
