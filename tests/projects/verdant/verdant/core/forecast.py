"""Watering advice from the weather forecast."""

import os
from typing import Optional

from sqlalchemy.orm import Session

from verdant.core.base_manager import BaseManager
from verdant.core.care import CareManager
from verdant.errors import ForecastError
from verdant.integrations.weather import WeatherClient
from verdant.models import CareLog


class ForecastManager(BaseManager):
    def __init__(
        self,
        weather_client: Optional[WeatherClient] = None,
        care_manager: Optional[CareManager] = None,
        session: Optional[Session] = None,
    ) -> None:
        super().__init__(session=session)
        if weather_client is None:
            api_key = os.environ.get("VERDANT_WEATHER_KEY")
            if not api_key:
                raise ForecastError("VERDANT_WEATHER_KEY is not set")
            weather_client = WeatherClient(api_key)
        self.weather = weather_client
        self._care_manager = care_manager

    @property
    def care_manager(self) -> CareManager:
        return self._lazy_init_manager("_care_manager", "verdant.core.care.CareManager")

    def advise(self, plant_id: str, *, threshold_mm: float = 5.0) -> CareLog:
        plant = self.care_manager.plant_manager.get_plant(plant_id)
        location = plant.bed.greenhouse.location or plant.bed.greenhouse.name
        data = self.weather.forecast(location)
        rain = float(data.get("rain_mm", 0.0))
        if rain >= threshold_mm:
            note = f"skip watering: {rain:.1f} mm rain expected"
        else:
            note = f"water: only {rain:.1f} mm rain expected"
        return self.care_manager.log_care(plant_id, "forecast", note=note)
