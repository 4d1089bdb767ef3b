from unittest.mock import MagicMock

import pytest

from verdant.core.care import CareManager
from verdant.core.forecast import ForecastManager
from verdant.errors import ForecastError
from verdant.integrations.weather import WeatherClient
from verdant.models import CareLog


def test_advise_water(forecast_manager, test_plant, mock_weather_client):
    entry = forecast_manager.advise(test_plant.id)
    assert entry.kind == "forecast"
    assert entry.note.startswith("water")
    mock_weather_client.forecast.assert_called_once_with("Leeds")


def test_advise_skip(forecast_manager, test_plant, mock_weather_client):
    mock_weather_client.forecast.return_value = {"rain_mm": 12.0}
    entry = forecast_manager.advise(test_plant.id)
    assert entry.note.startswith("skip")


def test_advise_threshold(forecast_manager, test_plant):
    entry = forecast_manager.advise(test_plant.id, threshold_mm=1.0)
    assert "skip" in entry.note


def test_advise_logged(forecast_manager, test_plant, db_session):
    forecast_manager.advise(test_plant.id)
    assert db_session.query(CareLog).filter_by(kind="forecast").count() == 1


def test_missing_api_key(monkeypatch, db_session):
    monkeypatch.delenv("VERDANT_WEATHER_KEY", raising=False)
    with pytest.raises(ForecastError):
        ForecastManager(session=db_session)


def test_api_key_from_env(monkeypatch, db_session, test_plant):
    monkeypatch.setenv("VERDANT_WEATHER_KEY", "k-123")
    monkeypatch.setattr(WeatherClient, "forecast", lambda self, loc: {"rain_mm": 0})
    manager = ForecastManager(session=db_session)
    assert manager.weather.api_key == "k-123"
    assert manager.advise(test_plant.id).note.startswith("water")


def test_lazy_care_manager(db_session, mock_weather_client):
    manager = ForecastManager(weather_client=mock_weather_client, session=db_session)
    assert isinstance(manager.care_manager, CareManager)


def test_forecast_manager_shares_care_manager(forecast_manager, care_manager):
    assert forecast_manager.care_manager is care_manager


def test_weather_client_requires_key():
    with pytest.raises(ValueError):
        WeatherClient("")


def test_patched_care_manager(forecast_manager, test_plant, monkeypatch):
    calls = []
    monkeypatch.setattr(
        forecast_manager.care_manager, "log_care", lambda *a, **k: calls.append(a) or MagicMock()
    )
    forecast_manager.advise(test_plant.id)
    assert calls == [(test_plant.id, "forecast")]
